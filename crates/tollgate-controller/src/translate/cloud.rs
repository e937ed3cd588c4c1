//! The cloud accounts of Bedrock, Vertex AI and (with Entra ID) Azure OpenAI providers: region,
//! project or application, and the credentials read from their Secrets, validated so that a bad key is reported here rather
//! than failing every request.

use serde::Deserialize;
use tollgate_api::{BedrockSettings, EntraSettings, ModelProviderSpec, VertexSettings};
use tollgate_config::{
    AwsAccount, AwsCredentials, CloudAccount, EntraApplication, GcpAccount, ObjectRef,
    ProviderKind, Secret, ServiceAccountKey,
};

use super::secrets::{SecretError, SecretIndex};
use crate::Diagnostic;

const KIND: &str = "ModelProvider";
/// The Secret keys of Bedrock's IAM credentials, named as AWS's environment variables so the
/// same Secret can feed `envFrom`.
const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// The account of a `kind` provider: `Ok(None)` for kinds without one, `Err` (reported in
/// `diagnostics`) when it is missing or invalid.
pub(super) fn account(
    spec: &ModelProviderSpec,
    kind: ProviderKind,
    name: &ObjectRef,
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Option<CloudAccount>, ()> {
    let error = |field: &str, reason: &'static str, message: String| {
        Diagnostic::error(KIND, &name.namespace, &name.name, field, reason, message)
    };
    for (field, set, owner) in [
        (
            "spec.bedrock",
            spec.bedrock.is_some(),
            ProviderKind::Bedrock,
        ),
        ("spec.vertex", spec.vertex.is_some(), ProviderKind::VertexAI),
    ] {
        if set && kind != owner {
            diagnostics.push(
                error(
                    field,
                    "IgnoredField",
                    format!("{field} applies only to {owner:?} providers"),
                )
                .warning(),
            );
        }
    }
    let result = match kind {
        ProviderKind::Bedrock => match &spec.bedrock {
            Some(settings) => aws(settings, spec, name, secrets).map(CloudAccount::Aws),
            None => Err(Box::new(error(
                "spec.bedrock",
                "MissingSettings",
                "a Bedrock provider needs spec.bedrock.region".into(),
            ))),
        },
        ProviderKind::VertexAI => match &spec.vertex {
            Some(settings) => {
                if spec.auth.is_some() {
                    diagnostics.push(
                        error(
                            "spec.auth",
                            "IgnoredField",
                            "a VertexAI provider authenticates with spec.vertex.serviceAccountSecretRef; spec.auth is ignored".into(),
                        )
                        .warning(),
                    );
                }
                gcp(settings, name, secrets).map(CloudAccount::Gcp)
            }
            None => Err(Box::new(error(
                "spec.vertex",
                "MissingSettings",
                "a VertexAI provider needs spec.vertex (project, location, serviceAccountSecretRef)"
                    .into(),
            ))),
        },
        ProviderKind::AzureOpenAI => {
            match spec.azure.as_ref().and_then(|azure| azure.entra.as_ref()) {
                None => return Ok(None),
                Some(_) if spec.auth.is_some() => Err(refusal(
                    name,
                    "spec.auth",
                    "ConflictingCredentials",
                    "set either spec.azure.entra (Microsoft Entra ID) or spec.auth (an api-key), not both".into(),
                )),
                Some(entra) => azure(entra, name, secrets).map(CloudAccount::Azure),
            }
        }
        _ => return Ok(None),
    };
    result
        .map(Some)
        .map_err(|diagnostic| diagnostics.push(*diagnostic))
}

/// The public endpoint of a cloud provider, from its region or location.
pub(super) fn default_endpoint(spec: &ModelProviderSpec, kind: ProviderKind) -> Option<String> {
    match kind {
        ProviderKind::Bedrock => spec
            .bedrock
            .as_ref()
            .map(|b| format!("https://bedrock-runtime.{}.amazonaws.com", b.region)),
        ProviderKind::VertexAI => spec.vertex.as_ref().map(|v| match v.location.as_str() {
            "global" => "https://aiplatform.googleapis.com/v1".to_string(),
            location => format!("https://{location}-aiplatform.googleapis.com/v1"),
        }),
        _ => None,
    }
}

fn aws(
    settings: &BedrockSettings,
    spec: &ModelProviderSpec,
    name: &ObjectRef,
    secrets: &SecretIndex<'_>,
) -> Result<AwsAccount, Box<Diagnostic>> {
    let error = |field: &str, reason, message| refusal(name, field, reason, message);
    if !is_region(&settings.region) {
        return Err(error(
            "spec.bedrock.region",
            "InvalidRegion",
            format!(
                "{:?} is not an AWS region such as us-east-1",
                settings.region
            ),
        ));
    }
    let credentials = match (&settings.credentials_secret_ref, &spec.auth) {
        (Some(_), Some(_)) => {
            return Err(error(
                "spec.auth",
                "ConflictingCredentials",
                "set either spec.bedrock.credentialsSecretRef (SigV4) or spec.auth (a Bedrock API key), not both".into(),
            ));
        }
        (None, None) => {
            return Err(error(
                "spec.bedrock.credentialsSecretRef",
                "MissingCredentials",
                "a Bedrock provider needs IAM credentials (spec.bedrock.credentialsSecretRef) or a Bedrock API key (spec.auth)".into(),
            ));
        }
        (None, Some(_)) => None,
        (Some(reference), None) => {
            let read = |key: &str| {
                secrets
                    .value(&name.namespace, &reference.name, key)
                    .map(|value| value.trim().to_string())
            };
            let failed = |key: &str, e: SecretError| {
                error(
                    "spec.bedrock.credentialsSecretRef",
                    e.reason(),
                    e.message(&name.namespace, &reference.name, key),
                )
            };
            let access_key_id = read(ACCESS_KEY_ID).map_err(|e| failed(ACCESS_KEY_ID, e))?;
            let secret_access_key =
                read(SECRET_ACCESS_KEY).map_err(|e| failed(SECRET_ACCESS_KEY, e))?;
            let session_token = match read(SESSION_TOKEN) {
                Ok(token) => Some(token),
                Err(SecretError::KeyNotFound) => None,
                Err(e) => return Err(failed(SESSION_TOKEN, e)),
            };
            let printable = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
            if !printable(&access_key_id)
                || !printable(&secret_access_key)
                || session_token.as_deref().is_some_and(|t| !printable(t))
            {
                return Err(error(
                    "spec.bedrock.credentialsSecretRef",
                    "InvalidSecret",
                    format!(
                        "the AWS credentials in Secret {}/{} are empty or hold characters a header cannot carry",
                        name.namespace, reference.name
                    ),
                ));
            }
            Some(AwsCredentials {
                access_key_id,
                secret_access_key: Secret::new(secret_access_key),
                session_token: session_token.map(Secret::new),
            })
        }
    };
    Ok(AwsAccount {
        region: settings.region.clone(),
        credentials,
    })
}

/// An error on `field` of provider `name`.
fn refusal(
    name: &ObjectRef,
    field: &str,
    reason: &'static str,
    message: String,
) -> Box<Diagnostic> {
    Box::new(Diagnostic::error(
        KIND,
        &name.namespace,
        &name.name,
        field,
        reason,
        message,
    ))
}

/// Entra ID's public authority.
const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of Azure OpenAI (Cognitive Services) tokens.
const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

fn azure(
    settings: &EntraSettings,
    name: &ObjectRef,
    secrets: &SecretIndex<'_>,
) -> Result<EntraApplication, Box<Diagnostic>> {
    let field = "spec.azure.entra";
    let error = |field: &str, reason, message| refusal(name, field, reason, message);
    let plain = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !plain(&settings.tenant_id) || !plain(&settings.client_id) {
        return Err(error(
            field,
            "InvalidEntraSettings",
            "tenantId and clientId must be ids such as 00000000-0000-0000-0000-000000000000 or contoso.onmicrosoft.com".into(),
        ));
    }
    let authority = settings
        .authority_host
        .as_deref()
        .unwrap_or(ENTRA_AUTHORITY)
        .trim_end_matches('/');
    match url::Url::parse(authority) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
        _ => {
            return Err(error(
                "spec.azure.entra.authorityHost",
                "InvalidEntraSettings",
                format!("{authority:?} is not an http(s) URL"),
            ));
        }
    }
    let reference = &settings.client_secret_ref;
    let secret = secrets
        .value(&name.namespace, &reference.name, &reference.key)
        .map_err(|e| {
            error(
                "spec.azure.entra.clientSecretRef",
                e.reason(),
                e.message(&name.namespace, &reference.name, &reference.key),
            )
        })?;
    Ok(EntraApplication {
        token_uri: format!("{authority}/{}/oauth2/v2.0/token", settings.tenant_id),
        client_id: settings.client_id.clone(),
        client_secret: Secret::new(secret.trim()),
        scope: COGNITIVE_SERVICES_SCOPE.to_string(),
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lowercase words joined by dashes, ending in
/// a number (it becomes part of a host name and of every signature).
fn is_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && rest.len() >= 2
        && rest[..rest.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && rest
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The fields of a service account key file that Tollgate reads.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Google's token endpoint, for key files that do not name one.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

fn gcp(
    settings: &VertexSettings,
    name: &ObjectRef,
    secrets: &SecretIndex<'_>,
) -> Result<GcpAccount, Box<Diagnostic>> {
    let field = "spec.vertex.serviceAccountSecretRef";
    let error = |field: &str, reason, message| refusal(name, field, reason, message);
    if settings.project.is_empty()
        || !settings
            .project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
    {
        return Err(error(
            "spec.vertex.project",
            "InvalidProject",
            format!("{:?} is not a Google Cloud project id", settings.project),
        ));
    }
    if settings.location.is_empty()
        || !settings
            .location
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(error(
            "spec.vertex.location",
            "InvalidLocation",
            format!(
                "{:?} is not a location such as us-central1 or global",
                settings.location
            ),
        ));
    }
    let reference = &settings.service_account_secret_ref;
    let text = secrets
        .value(&name.namespace, &reference.name, &reference.key)
        .map_err(|e| {
            error(
                field,
                e.reason(),
                e.message(&name.namespace, &reference.name, &reference.key),
            )
        })?;
    let invalid = |why: String| {
        error(
            field,
            "InvalidServiceAccountKey",
            format!(
                "key {:?} of Secret {}/{} is not a service account key file: {why}",
                reference.key, name.namespace, reference.name
            ),
        )
    };
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.kind != "service_account" {
        return Err(invalid(format!(
            "its type is {:?}, not \"service_account\"",
            file.kind
        )));
    }
    jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.as_bytes())
        .map_err(|e| invalid(format!("private_key is not an RSA key in PEM: {e}")))?;
    let token_uri = file
        .token_uri
        .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
    match url::Url::parse(&token_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
        _ => {
            return Err(invalid(format!(
                "token_uri {token_uri:?} is not an http(s) URL"
            )));
        }
    }
    Ok(GcpAccount {
        project: settings.project.clone(),
        location: settings.location.clone(),
        service_account: ServiceAccountKey {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            private_key: Secret::new(file.private_key),
            token_uri,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_look_like_aws_regions() {
        for region in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(region), "{region}");
        }
        for region in [
            "",
            "us",
            "us-east",
            "US-EAST-1",
            "us-east-1.evil.com",
            "us--1",
            "us-east-x",
        ] {
            assert!(!is_region(region), "{region}");
        }
    }
}
