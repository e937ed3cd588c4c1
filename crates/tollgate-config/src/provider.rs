//! Upstream providers: where they are, how to authenticate, what their models cost.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::{ObjectRef, Secret};

/// Index of a provider in [`crate::GatewayConfig::providers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProviderId(pub usize);

/// One upstream, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    /// The ModelProvider resource this came from.
    pub name: ObjectRef,
    /// The wire API it speaks.
    pub kind: ProviderKind,
    /// Base URL of the API (`https://api.openai.com/v1`) without a trailing slash; operation
    /// paths such as `/chat/completions` are appended to it.
    pub endpoint: String,
    /// The key Tollgate presents upstream.
    pub api_key: Option<Secret>,
    /// Prices of the models it serves, by upstream model name.
    pub models: BTreeMap<String, Pricing>,
    /// How long to wait for it.
    pub timeouts: Timeouts,
    /// The `api-version` of an Azure OpenAI provider (`None` for every other kind).
    pub api_version: Option<String>,
    /// The cloud account a Bedrock, Vertex AI or (with Entra ID) Azure OpenAI provider is
    /// called through (`None` otherwise).
    pub account: Option<CloudAccount>,
}

/// Where a cloud provider's models live and the identity Tollgate calls them as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CloudAccount {
    /// Amazon Bedrock.
    Aws(AwsAccount),
    /// Google Vertex AI.
    Gcp(GcpAccount),
    /// Azure OpenAI called with Microsoft Entra ID tokens instead of an `api-key`.
    Azure(EntraApplication),
}

/// A Microsoft Entra ID application whose client-credentials tokens authorize Azure OpenAI
/// calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntraApplication {
    /// Where tokens are minted (`https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`).
    pub token_uri: String,
    /// The application (client) id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Secret,
    /// The scope asked for (`https://cognitiveservices.azure.com/.default`).
    pub scope: String,
}

/// A Bedrock region and, when requests are SigV4-signed, the IAM credentials that sign them
/// (without them, [`Provider::api_key`] is a Bedrock API key sent as a bearer token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwsAccount {
    /// The region, such as `us-east-1`: part of every signature.
    pub region: String,
    /// The IAM credentials, if requests are signed.
    pub credentials: Option<AwsCredentials>,
}

/// IAM credentials for SigV4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwsCredentials {
    /// The access key id (not secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// A Vertex AI project and location, and the service account whose OAuth2 access tokens
/// authorize the calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GcpAccount {
    /// The project id.
    pub project: String,
    /// The location, such as `us-central1` or `global`.
    pub location: String,
    /// The service account's key.
    pub service_account: ServiceAccountKey,
}

/// The fields of a Google service account key file that minting an access token needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccountKey {
    /// The account's e-mail address: the token's issuer.
    pub client_email: String,
    /// The id of the key, sent as the assertion's `kid`.
    pub private_key_id: Option<String>,
    /// The RSA private key, PEM.
    pub private_key: Secret,
    /// Where access tokens are minted (`https://oauth2.googleapis.com/token`).
    pub token_uri: String,
}

/// The wire APIs the proxy can call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderKind {
    /// OpenAI itself.
    OpenAI,
    /// A server speaking OpenAI's API.
    OpenAICompatible,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API.
    Gemini,
    /// Azure OpenAI: OpenAI's API, one deployment per model, `api-key` auth.
    AzureOpenAI,
    /// Amazon Bedrock's Converse API, SigV4-signed.
    Bedrock,
    /// Google Vertex AI: Gemini and Anthropic models, OAuth2 access tokens.
    VertexAI,
}

impl ProviderKind {
    /// The name used in metrics and traces (`gen_ai.provider.name`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAI => "openai",
            ProviderKind::OpenAICompatible => "openai_compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gcp.gemini",
            ProviderKind::AzureOpenAI => "azure.ai.openai",
            ProviderKind::Bedrock => "aws.bedrock",
            ProviderKind::VertexAI => "gcp.vertex_ai",
        }
    }
}

/// Limits on waiting for an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Opening a connection, TCP and TLS.
    #[serde(with = "crate::durations::millis")]
    pub connect: Duration,
    /// From sending the request until the response headers arrive.
    #[serde(with = "crate::durations::millis")]
    pub response_headers: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            response_headers: Duration::from_secs(120),
        }
    }
}

/// A model's prices in USD per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Per million input tokens not served from cache.
    #[serde(with = "rust_decimal::serde::str")]
    pub input_per_million: Decimal,
    /// Per million input tokens served from the provider's prompt cache.
    #[serde(with = "rust_decimal::serde::str")]
    pub cached_input_per_million: Decimal,
    /// Per million output tokens.
    #[serde(with = "rust_decimal::serde::str")]
    pub output_per_million: Decimal,
}

impl Pricing {
    /// The cost in USD of a request's tokens. `input_tokens` includes `cached_tokens`, as
    /// providers report it.
    pub fn cost(&self, input_tokens: u64, cached_tokens: u64, output_tokens: u64) -> Decimal {
        let cached = cached_tokens.min(input_tokens);
        let million = Decimal::from(1_000_000u32);
        (Decimal::from(input_tokens - cached) * self.input_per_million
            + Decimal::from(cached) * self.cached_input_per_million
            + Decimal::from(output_tokens) * self.output_per_million)
            / million
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn cost_is_exact_decimal_arithmetic() {
        let pricing = Pricing {
            input_per_million: Decimal::from_str("0.15").unwrap(),
            cached_input_per_million: Decimal::from_str("0.075").unwrap(),
            output_per_million: Decimal::from_str("0.60").unwrap(),
        };
        // 1000 fresh input at 0.15/M + 0 cached + 500 output at 0.60/M = 0.00015 + 0.0003
        assert_eq!(
            pricing.cost(1000, 0, 500),
            Decimal::from_str("0.00045").unwrap()
        );
        // cached tokens are part of the input count and priced at the cached rate
        assert_eq!(
            pricing.cost(1000, 400, 0),
            Decimal::from_str("0.00012").unwrap()
        );
        // a provider reporting more cached than input tokens cannot make cost negative
        assert_eq!(
            pricing.cost(10, 20, 0),
            Decimal::from_str("0.00000075").unwrap()
        );
    }
}
