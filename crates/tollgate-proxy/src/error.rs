//! Every way a request can fail, and the one place failures become responses.

use http::{HeaderValue, Response, StatusCode, header};
use tollgate_llm::{Dialect, ErrorKind};

use crate::body::ProxyBody;

/// Why a request was not served. Each variant says where the fault lies (the caller, the
/// upstream, or Tollgate) and maps to one status and error code; the variant names are stable
/// because they become metric labels.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The caller sent no credential.
    #[error("no API key provided; send `Authorization: Bearer <your Tollgate key>`")]
    MissingCredential,
    /// The caller's credential is not a known key.
    #[error("invalid API key; check the Tollgate key you are using")]
    InvalidCredential,
    /// The caller's JWT was refused.
    #[error("invalid token: {0}")]
    InvalidToken(#[source] tollgate_jwt::JwtError),
    /// The caller's credential has expired.
    #[error("this API key expired; ask for a new one")]
    ExpiredCredential,
    /// The caller may not use what it asked for.
    #[error("{0}")]
    AccessDenied(String),
    /// The request body exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request body could not be read from the caller.
    #[error("could not read the request body: {0}")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request body is not a request Tollgate can serve.
    #[error("{0}")]
    InvalidRequest(#[from] tollgate_llm::RequestError),
    /// No route serves the requested model.
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    /// No endpoint at this path and method.
    #[error("unknown endpoint {method} {path}")]
    UnknownEndpoint {
        /// The request method.
        method: http::Method,
        /// The request path.
        path: String,
    },
    /// The upstream could not be reached.
    #[error("provider {provider} is unreachable: {reason}")]
    UpstreamUnreachable {
        /// The provider's name.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// The upstream did not answer in time.
    #[error("provider {provider} did not respond within {seconds:.1}s")]
    UpstreamTimeout {
        /// The provider's name.
        provider: String,
        /// The timeout that expired.
        seconds: f64,
    },
    /// The upstream refused Tollgate's own credential: a configuration problem, not the caller's.
    #[error(
        "provider {provider} rejected the gateway's credential (status {status}); ask the gateway operator to check the ModelProvider's secret"
    )]
    UpstreamAuth {
        /// The provider's name.
        provider: String,
        /// The upstream's status.
        status: u16,
    },
    /// Tollgate could not obtain the credential a provider needs (a Vertex AI access token, a
    /// SigV4 signature): the operator's configuration or the token service is at fault.
    #[error("cannot obtain a credential for provider {provider}: {reason}")]
    UpstreamCredential {
        /// The provider's name.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// The request cannot be written in the provider's wire format.
    #[error("provider {provider} ({format}) cannot serve this request: {error}")]
    Untranslatable {
        /// The provider's name.
        provider: String,
        /// The provider's wire format.
        format: &'static str,
        /// What cannot be translated.
        error: tollgate_llm::chat::TranslateError,
    },
    /// The provider does not offer the operation asked for.
    #[error(
        "provider {provider} does not serve {operation}; route them to an OpenAI-style provider"
    )]
    UnsupportedOperation {
        /// The provider's name.
        provider: String,
        /// The operation.
        operation: &'static str,
    },
    /// The upstream refused the request, in a dialect other than the caller's: its message
    /// passed on, its status kept where the caller's dialect has it.
    #[error("provider {provider} refused the request (status {status}): {message}")]
    UpstreamRejected {
        /// The provider's name.
        provider: String,
        /// The upstream's status.
        status: u16,
        /// The upstream's message.
        message: String,
        /// The upstream's `retry-after`, in seconds.
        retry_after: Option<u64>,
    },
    /// The upstream's answer could not be read in its own wire format.
    #[error("provider {provider} sent an answer that cannot be read: {reason}")]
    UpstreamMalformed {
        /// The provider's name.
        provider: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The rule has no backend that can take a request.
    #[error("route {route} has no backend available right now; try again shortly")]
    NoBackend {
        /// The AIRoute.
        route: String,
    },
    /// A hard budget or rate limit has no room for the request.
    #[error("{message}")]
    LimitReached {
        /// `budget_exceeded` or `rate_limit_exceeded`.
        code: &'static str,
        /// Which limit, how far it is spent, and when to retry.
        message: String,
        /// Seconds until the request would fit; `None` when it never can.
        retry_after: Option<u64>,
    },
    /// The budget store cannot be reached and a policy that applies fails closed.
    #[error(
        "budgets cannot be checked right now (policy {policy} fails closed while its store is unreachable); try again shortly"
    )]
    BudgetStoreUnavailable {
        /// The policy that refused.
        policy: String,
    },
    /// A Service rule has no backend that may take requests: none of its backendRefs
    /// resolved, or all have weight 0 (the Gateway API asks for a 500).
    #[error("route {route} has no valid backend; ask its owner to check its backendRefs")]
    NoServiceBackend {
        /// The HTTPRoute.
        route: String,
    },
    /// A Service backend could not be reached.
    #[error("backend {backend} is unreachable: {reason}")]
    ServiceUnreachable {
        /// The Service and port.
        backend: String,
        /// What failed.
        reason: String,
    },
    /// A Service backend did not answer in time.
    #[error("backend {backend} did not respond within {seconds:.1}s")]
    ServiceTimeout {
        /// The Service and port.
        backend: String,
        /// The timeout that expired.
        seconds: f64,
    },
    /// Tollgate failed to build something it should always be able to build.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    /// The dialect-independent kind, which fixes the status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::MissingCredential
            | ProxyError::InvalidCredential
            | ProxyError::ExpiredCredential
            | ProxyError::InvalidToken(_) => ErrorKind::Authentication,
            ProxyError::AccessDenied(_) => ErrorKind::Permission,
            ProxyError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            ProxyError::BodyRead(_)
            | ProxyError::InvalidRequest(_)
            | ProxyError::Untranslatable { .. }
            | ProxyError::UnsupportedOperation { .. } => ErrorKind::InvalidRequest,
            ProxyError::UpstreamRejected { status, .. } => match status {
                404 => ErrorKind::NotFound,
                413 => ErrorKind::TooLarge,
                429 => ErrorKind::RateLimit,
                400..=499 => ErrorKind::InvalidRequest,
                503 => ErrorKind::Unavailable,
                504 => ErrorKind::Timeout,
                _ => ErrorKind::Upstream,
            },
            ProxyError::UpstreamMalformed { .. } => ErrorKind::Upstream,
            ProxyError::ModelNotFound(_) | ProxyError::UnknownEndpoint { .. } => {
                ErrorKind::NotFound
            }
            ProxyError::UpstreamUnreachable { .. }
            | ProxyError::UpstreamAuth { .. }
            | ProxyError::UpstreamCredential { .. } => ErrorKind::Upstream,
            ProxyError::UpstreamTimeout { .. } | ProxyError::ServiceTimeout { .. } => {
                ErrorKind::Timeout
            }
            ProxyError::ServiceUnreachable { .. } => ErrorKind::Upstream,
            ProxyError::NoServiceBackend { .. } => ErrorKind::Internal,
            ProxyError::NoBackend { .. } | ProxyError::BudgetStoreUnavailable { .. } => {
                ErrorKind::Unavailable
            }
            ProxyError::LimitReached { .. } => ErrorKind::RateLimit,
            ProxyError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable machine-readable code callers see in `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::MissingCredential => "missing_api_key",
            ProxyError::InvalidCredential => "invalid_api_key",
            ProxyError::ExpiredCredential => "expired_api_key",
            ProxyError::InvalidToken(error) => error.code(),
            ProxyError::AccessDenied(_) => "model_access_denied",
            ProxyError::BodyTooLarge { .. } => "request_too_large",
            ProxyError::BodyRead(_) => "invalid_body",
            ProxyError::InvalidRequest(_) => "invalid_request",
            ProxyError::ModelNotFound(_) => "model_not_found",
            ProxyError::UnknownEndpoint { .. } => "unknown_endpoint",
            ProxyError::UpstreamUnreachable { .. } => "upstream_unreachable",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::UpstreamAuth { .. } => "upstream_auth_failed",
            ProxyError::UpstreamCredential { .. } => "upstream_credential_unavailable",
            ProxyError::Untranslatable {
                error: tollgate_llm::chat::TranslateError::Unsupported { .. },
                ..
            } => "unsupported_parameter",
            ProxyError::Untranslatable { .. } => "invalid_request",
            ProxyError::UnsupportedOperation { .. } => "unsupported_operation",
            ProxyError::UpstreamRejected { .. } => "upstream_error",
            ProxyError::UpstreamMalformed { .. } => "upstream_malformed",
            ProxyError::NoBackend { .. } => "no_backend_available",
            ProxyError::LimitReached { code, .. } => code,
            ProxyError::BudgetStoreUnavailable { .. } => "budget_store_unavailable",
            ProxyError::NoServiceBackend { .. } => "no_valid_backend",
            ProxyError::ServiceUnreachable { .. } => "backend_unreachable",
            ProxyError::ServiceTimeout { .. } => "backend_timeout",
            ProxyError::Internal(_) => "internal_error",
        }
    }

    /// The error as a response in the caller's dialect.
    pub fn into_response(self, dialect: Dialect) -> Response<ProxyBody> {
        let kind = self.kind();
        let body = dialect.error_body(kind, self.code(), &self.to_string());
        let mut response = Response::new(ProxyBody::full(body));
        *response.status_mut() =
            StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let retry_after = match &self {
            ProxyError::LimitReached { retry_after, .. } => *retry_after,
            ProxyError::BudgetStoreUnavailable { .. } => Some(1),
            ProxyError::UpstreamRejected { retry_after, .. } => *retry_after,
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if kind == ErrorKind::Authentication {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
