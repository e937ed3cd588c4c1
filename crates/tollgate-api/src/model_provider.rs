//! `ModelProvider`: one upstream model API and the models it serves.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ResourceStatus, SecretKeyRef};

/// One upstream model API: where it is, how to authenticate to it, which models it serves and
/// what they cost.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "ModelProvider",
    namespaced,
    status = "ModelProviderStatus",
    shortname = "mp",
    category = "tollgate",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ModelProviderSpec {
    /// The API the upstream speaks.
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// Base URL of the upstream API, ending in its version, as the provider's own SDK takes
    /// it (`https://api.openai.com/v1`, `http://vllm:8000/v1`, `https://api.groq.com/openai/v1`,
    /// `https://api.anthropic.com/v1`, `https://generativelanguage.googleapis.com/v1beta`,
    /// `https://myresource.openai.azure.com/openai`): operation paths such as
    /// `/chat/completions` or `/messages` are appended to it. A bare origin
    /// (`http://127.0.0.1:9100`) means its `/v1` (`/v1beta` for Gemini, `/openai` for Azure).
    /// Defaults to the provider type's public endpoint where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The credential Tollgate presents upstream. The caller's own credential never reaches the
    /// upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ProviderAuth>,
    /// The models this provider serves, with their prices.
    #[serde(default)]
    pub models: Vec<ProviderModel>,
    /// Limits on how long Tollgate waits for this upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<ProviderTimeouts>,
    /// Settings of an `AzureOpenAI` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,
    /// Settings of a `Bedrock` provider (required for that type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,
    /// Settings of a `VertexAI` provider (required for that type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<VertexSettings>,
}

/// How Tollgate calls Amazon Bedrock's Converse API. Requests are signed with SigV4 using the
/// IAM credentials in `credentialsSecretRef`; without it, `spec.auth` must hold a Bedrock API
/// key, sent as a bearer token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BedrockSettings {
    /// The AWS region, such as `us-east-1`. The endpoint defaults to
    /// `https://bedrock-runtime.<region>.amazonaws.com`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: String,
    /// A Secret in the provider's namespace holding `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and, for temporary credentials, `AWS_SESSION_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

/// How Tollgate calls Vertex AI: Gemini models through `generateContent`, Anthropic (`claude-*`)
/// models through `rawPredict`, authorized by OAuth2 access tokens minted from a service
/// account key and refreshed before they expire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexSettings {
    /// The Google Cloud project id.
    #[schemars(length(min = 1))]
    pub project: String,
    /// The location, such as `us-central1`, or `global`. The endpoint defaults to
    /// `https://<location>-aiplatform.googleapis.com/v1` (`https://aiplatform.googleapis.com/v1`
    /// for `global`).
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"))]
    pub location: String,
    /// The Secret key holding the service account's JSON key file.
    pub service_account_secret_ref: SecretKeyRef,
}

/// A reference to a whole Secret in the referring resource's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
}

/// How Tollgate calls an Azure OpenAI resource: each model is a deployment, named as the
/// model (`models[].name`, or an AIRoute backend's `model`), at `api-version`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSettings {
    /// The `api-version` query parameter. Default `2024-10-21`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Authenticate with Microsoft Entra ID (client credentials) instead of an `api-key` in
    /// `spec.auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraSettings>,
}

/// A Microsoft Entra ID application granted access to the Azure OpenAI resource (role
/// "Cognitive Services OpenAI User"); Tollgate mints its tokens with the client-credentials
/// grant and replaces them before they expire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntraSettings {
    /// The directory (tenant) id.
    #[schemars(length(min = 1))]
    pub tenant_id: String,
    /// The application (client) id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The Secret key holding the application's client secret.
    pub client_secret_ref: SecretKeyRef,
    /// The Entra authority. Default `https://login.microsoftonline.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
}

/// The wire API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProviderType {
    /// OpenAI's API (`api.openai.com`).
    OpenAI,
    /// Any server that speaks OpenAI's API: vLLM, Ollama, Mistral, Groq, DeepSeek, Together...
    OpenAICompatible,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (generateContent).
    Gemini,
    /// Amazon Bedrock's Converse API.
    Bedrock,
    /// Azure OpenAI deployments.
    AzureOpenAI,
    /// Google Vertex AI (Gemini and Anthropic models).
    VertexAI,
}

/// How Tollgate authenticates to the upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderAuth {
    /// The Secret key holding the upstream API key.
    pub secret_ref: SecretKeyRef,
}

/// One model served by a provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderModel {
    /// The model's name as the upstream knows it (for example `gpt-4o-mini`).
    pub name: String,
    /// What the model costs; requests to a model without pricing are counted at zero cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<ModelPricing>,
}

/// Prices in US dollars per million tokens, as decimal strings so that money is never a float.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPricing {
    /// USD per million input (prompt) tokens, a decimal string such as `"0.15"`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub input_per_million_tokens: String,
    /// USD per million output (completion) tokens, a decimal string such as `"0.60"`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub output_per_million_tokens: String,
    /// USD per million cached input tokens; defaults to the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub cached_input_per_million_tokens: Option<String>,
}

/// Timeouts for calls to one upstream, as Gateway API durations (`500ms`, `10s`, `2m`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderTimeouts {
    /// Time allowed to open a connection (TCP and TLS). Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub connect: Option<String>,
    /// Time allowed from sending the request until the upstream's response headers arrive.
    /// Default `120s`. A request that exceeds it fails with 504.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub response_headers: Option<String>,
}

/// What Tollgate observed about this provider.
pub type ModelProviderStatus = ResourceStatus;
