//! **route**, the innermost stage: picks a backend of the chosen rule, rewrites the request
//! for it (upstream model, the provider's credential in place of the caller's), calls the
//! provider and streams its response back frame by frame while usage is read from it.

use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::{Provider, Snapshot};
use tollgate_llm::openai::{InspectedRequest, Rewrite};
use tower::Service;

use super::StageFuture;
use super::authorize::RuleIndex;
use super::endpoints::Operation;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, Target};
use crate::upstream::{UpstreamClients, is_timeout, strip_hop_by_hop};

/// Caller headers never sent upstream: the caller's credentials and cookies; framing that
/// Tollgate sets itself; and `accept-encoding`, because usage can only be read from a response
/// that is not compressed.
const CALLER_ONLY: [header::HeaderName; 6] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::ACCEPT_ENCODING,
    header::HeaderName::from_static("x-api-key"),
];

/// The route stage's service; it ends the stack, so it is a service, not a layer.
#[derive(Clone)]
pub(crate) struct Route {
    clients: Arc<UpstreamClients>,
}

impl Route {
    /// Calls providers through `clients`.
    pub(crate) fn new(clients: Arc<UpstreamClients>) -> Self {
        Self { clients }
    }
}

impl Service<Request<InspectedRequest>> for Route {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<InspectedRequest>) -> Self::Future {
        let clients = self.clients.clone();
        Box::pin(async move {
            let (parts, inspected) = request.into_parts();
            let missing = |what: &str| ProxyError::Internal(format!("no {what} in request"));
            let snapshot = parts
                .extensions
                .get::<Arc<Snapshot>>()
                .ok_or_else(|| missing("snapshot"))?
                .clone();
            let exchange = parts
                .extensions
                .get::<SharedExchange>()
                .ok_or_else(|| missing("exchange"))?
                .clone();
            let RuleIndex(index) = *parts
                .extensions
                .get::<RuleIndex>()
                .ok_or_else(|| missing("rule"))?;
            let operation = *parts
                .extensions
                .get::<Operation>()
                .ok_or_else(|| missing("operation"))?;

            let config = &snapshot.config;
            let rule = config.routes.rule(index);
            let backend = rule.pick_backend(rand::random());
            let provider = config.provider(backend.provider);
            let upstream_model = backend.model.as_deref().unwrap_or(&inspected.model);
            let model_label = if rule.models.contains(&inspected.model) {
                inspected.model.clone()
            } else {
                "*".to_string()
            };
            let _ = exchange.target.set(Target {
                route: rule.route.to_string(),
                rule: rule.name.clone(),
                model_label,
                provider: provider.name.to_string(),
                upstream_model: upstream_model.to_string(),
                pricing: provider
                    .models
                    .get(upstream_model)
                    .copied()
                    .unwrap_or_default(),
            });

            let asks_stream = operation == Operation::Chat && inspected.stream;
            let hide_usage = asks_stream && !inspected.include_usage;
            let body = inspected.rewrite(&Rewrite {
                model: Some(upstream_model),
                include_usage: asks_stream,
            });
            let mut upstream_request = Request::post(format!(
                "{}{}",
                provider.endpoint,
                operation.upstream_path()
            ))
            .body(Full::new(body))
            .map_err(|e| ProxyError::Internal(format!("cannot build the upstream request: {e}")))?;
            forward_headers(&parts.headers, upstream_request.headers_mut(), provider)?;

            let client = clients.get(provider.timeouts.connect);
            let timeout = provider.timeouts.response_headers;
            let response =
                match tokio::time::timeout(timeout, client.request(upstream_request)).await {
                    Err(_) => return Err(timeout_error(provider, timeout)),
                    Ok(Err(error)) if is_timeout(&error) => {
                        return Err(timeout_error(provider, provider.timeouts.connect));
                    }
                    Ok(Err(error)) => {
                        let reason =
                            std::iter::successors(Some(&error as &dyn std::error::Error), |e| {
                                e.source()
                            })
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(": ");
                        return Err(ProxyError::UpstreamUnreachable {
                            provider: provider.name.to_string(),
                            reason,
                        });
                    }
                    Ok(Ok(response)) => response,
                };
            let (mut head, incoming) = response.into_parts();
            if matches!(head.status.as_u16(), 401 | 403) {
                return Err(ProxyError::UpstreamAuth {
                    provider: provider.name.to_string(),
                    status: head.status.as_u16(),
                });
            }
            strip_hop_by_hop(&mut head.headers);
            head.headers.remove(header::SET_COOKIE);
            let streaming = head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if streaming && hide_usage {
                head.headers.remove(header::CONTENT_LENGTH);
            }
            Ok(Response::from_parts(
                head,
                ProxyBody::upstream(incoming, exchange, streaming, hide_usage && streaming),
            ))
        })
    }
}

fn timeout_error(provider: &Provider, timeout: std::time::Duration) -> ProxyError {
    ProxyError::UpstreamTimeout {
        provider: provider.name.to_string(),
        seconds: timeout.as_secs_f64(),
    }
}

/// Copies the caller's headers that are safe to pass on, and sets the provider's credential.
fn forward_headers(
    from: &http::HeaderMap,
    to: &mut http::HeaderMap,
    provider: &Provider,
) -> Result<(), ProxyError> {
    to.reserve(from.len() + 2);
    for (name, value) in from {
        if !CALLER_ONLY.contains(name) {
            to.append(name.clone(), value.clone());
        }
    }
    strip_hop_by_hop(to);
    to.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(key) = &provider.api_key {
        let mut value =
            HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                ProxyError::Internal(format!(
                    "the key of provider {} is not a valid header value",
                    provider.name
                ))
            })?;
        value.set_sensitive(true);
        to.insert(header::AUTHORIZATION, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{ObjectRef, ProviderKind, Secret, Timeouts};

    fn provider(api_key: Option<&str>) -> Provider {
        Provider {
            name: ObjectRef::new("default", "openai"),
            kind: ProviderKind::OpenAI,
            endpoint: "http://127.0.0.1:9100/v1".into(),
            api_key: api_key.map(Secret::new),
            models: Default::default(),
            timeouts: Timeouts::default(),
        }
    }

    #[test]
    fn caller_credentials_never_go_upstream() {
        let mut from = http::HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer tg-alice-secret"),
            ("x-api-key", "tg-alice-secret"),
            ("cookie", "session=1"),
            ("accept-encoding", "gzip, br"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("content-length", "10"),
            ("content-type", "text/plain"),
            ("x-request-id", "abc"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ] {
            from.append(name, HeaderValue::from_static(value));
        }
        let mut to = http::HeaderMap::new();
        forward_headers(&from, &mut to, &provider(Some("sk-upstream"))).unwrap();
        let mut names: Vec<&str> = to.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "authorization",
                "content-type",
                "traceparent",
                "x-request-id"
            ]
        );
        assert_eq!(to[header::AUTHORIZATION], "Bearer sk-upstream");
        assert!(to[header::AUTHORIZATION].is_sensitive());
        assert_eq!(to[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_provider_without_a_key_gets_no_authorization() {
        let mut from = http::HeaderMap::new();
        from.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tg-alice-secret"),
        );
        let mut to = http::HeaderMap::new();
        forward_headers(&from, &mut to, &provider(None)).unwrap();
        assert!(to.get(header::AUTHORIZATION).is_none());
    }
}
