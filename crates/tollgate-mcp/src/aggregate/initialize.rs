//! `initialize`: one answer for the caller from every upstream's.
//!
//! The proxy:
//! 1. picks the version with [`negotiate_version`] from the caller's `protocolVersion`;
//! 2. sends every upstream [`upstream_params`] (the caller's params with that version, so no
//!    upstream negotiates a revision the gateway does not speak), then
//!    `notifications/initialized` once it answered;
//! 3. merges the answers with [`merge`], seals [`Merged::session`] into the caller's
//!    `Mcp-Session-Id` and answers with [`Merged::result`].
//!
//! Capabilities are the union: `tools`, `prompts`, `resources`, `logging` and `completions`
//! are present when any upstream has them, and `listChanged` / `subscribe` are true when any
//! upstream's is. Other capabilities (`experimental`, and those of newer revisions such as
//! `tasks`) are left out: the gateway would not know how to route their methods.

use serde_json::{Map, Value, json};

use super::{UpstreamFailure, report_failures};
use crate::message::{ErrorObject, UPSTREAM_UNAVAILABLE};
use crate::session::{STATE_VERSION, SessionState, UpstreamSession};

/// Protocol revisions the gateway speaks, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2024-11-05"];
/// The newest of them, answered when the caller asks for one the gateway does not speak.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-06-18";
/// The gateway's `serverInfo.name`.
pub const SERVER_NAME: &str = "tollgate";

/// The version to answer: the caller's when supported, else the latest.
pub fn negotiate_version(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| SUPPORTED_PROTOCOL_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(LATEST_PROTOCOL_VERSION)
}

/// The caller's `protocolVersion` from its `initialize` params.
pub fn requested_version(params: Option<&Value>) -> Option<&str> {
    params?.get("protocolVersion")?.as_str()
}

/// The `initialize` params to send every upstream: the caller's (client info and
/// capabilities), with `protocolVersion` set to `negotiated`.
pub fn upstream_params(caller_params: Option<&Value>, negotiated: &str) -> Value {
    let mut params = match caller_params {
        Some(Value::Object(params)) => params.clone(),
        _ => Map::new(),
    };
    params.insert("protocolVersion".into(), Value::from(negotiated));
    params.entry("capabilities").or_insert_with(|| json!({}));
    params
        .entry("clientInfo")
        .or_insert_with(|| json!({"name": "tollgate", "version": "0"}));
    Value::Object(params)
}

/// An upstream's answer to `initialize`.
#[derive(Clone, Debug, PartialEq)]
pub struct Initialized {
    /// The server's prefix.
    pub server: String,
    /// The `Mcp-Session-Id` it answered with, if any.
    pub session_id: Option<String>,
    /// Its `initialize` result.
    pub result: Value,
}

/// The merged answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The caller's `initialize` result.
    pub result: Value,
    /// The state to seal into the caller's `Mcp-Session-Id`.
    pub session: SessionState,
    /// Upstreams left out of the session, also reported in `result._meta`.
    pub failures: Vec<UpstreamFailure>,
}

/// Merges the upstreams' answers (in configuration order). Upstreams that failed, or whose
/// answer is unusable, are left out of the session. When there were upstreams and none
/// succeeded, the caller gets [`UPSTREAM_UNAVAILABLE`].
pub fn merge(
    negotiated: &str,
    gateway_version: &str,
    key_id: &str,
    now_unix: u64,
    answers: Vec<Result<Initialized, UpstreamFailure>>,
) -> Result<Merged, ErrorObject> {
    let any = !answers.is_empty();
    let mut failures = Vec::new();
    let mut usable = Vec::new();
    for answer in answers {
        match answer.and_then(check) {
            Ok(ok) => usable.push(ok),
            Err(failure) => failures.push(failure),
        }
    }
    if any && usable.is_empty() {
        let list: Vec<Value> = failures
            .iter()
            .map(|f| json!({"server": f.server, "error": f.error}))
            .collect();
        return Err(ErrorObject::new(
            UPSTREAM_UNAVAILABLE,
            "no upstream MCP server could be initialized",
        )
        .with_data(json!({ "failures": list })));
    }

    let mut result = Map::new();
    result.insert("protocolVersion".into(), Value::from(negotiated));
    result.insert(
        "capabilities".into(),
        merge_capabilities(usable.iter().map(|(i, _)| &i.result)),
    );
    result.insert(
        "serverInfo".into(),
        json!({"name": SERVER_NAME, "version": gateway_version}),
    );
    let instructions: Vec<String> = usable
        .iter()
        .filter_map(|(i, _)| {
            let text = i.result.get("instructions")?.as_str()?.trim();
            (!text.is_empty()).then(|| format!("## {}\n\n{text}", i.server))
        })
        .collect();
    if !instructions.is_empty() {
        result.insert(
            "instructions".into(),
            Value::from(instructions.join("\n\n")),
        );
    }
    report_failures(&mut result, &failures);

    let session = SessionState {
        version: STATE_VERSION,
        key_id: key_id.to_owned(),
        upstreams: usable
            .into_iter()
            .map(|(i, protocol_version)| {
                (
                    i.server,
                    UpstreamSession {
                        session_id: i.session_id,
                        protocol_version,
                    },
                )
            })
            .collect(),
        protocol_version: negotiated.to_owned(),
        issued_at_unix: now_unix,
    };
    Ok(Merged {
        result: Value::Object(result),
        session,
        failures,
    })
}

/// An upstream answer with its protocol version, or why it is unusable.
fn check(answer: Initialized) -> Result<(Initialized, String), UpstreamFailure> {
    let fail = |why: String| Err(UpstreamFailure::new(answer.server.clone(), why));
    if !answer.result.is_object() {
        return fail("initialize result is not an object".into());
    }
    let Some(version) = answer.result.get("protocolVersion").and_then(Value::as_str) else {
        return fail("initialize result has no protocolVersion".into());
    };
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
        return fail(format!("unsupported protocol version {version:?}"));
    }
    let version = version.to_owned();
    Ok((answer, version))
}

fn flag(capability: Option<&Value>, name: &str) -> bool {
    capability
        .and_then(|c| c.get(name))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The union of the upstreams' `capabilities`.
fn merge_capabilities<'a>(results: impl Iterator<Item = &'a Value>) -> Value {
    let mut merged = Map::new();
    for result in results {
        let Some(Value::Object(caps)) = result.get("capabilities") else {
            continue;
        };
        for (name, flags) in [
            ("tools", &["listChanged"][..]),
            ("prompts", &["listChanged"][..]),
            ("resources", &["subscribe", "listChanged"][..]),
            ("logging", &[][..]),
            ("completions", &[][..]),
        ] {
            let Some(theirs) = caps.get(name).filter(|c| c.is_object()) else {
                continue;
            };
            let ours = merged
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            for flag_name in flags {
                if flag(Some(theirs), flag_name)
                    && let Value::Object(ours) = ours
                {
                    ours.insert((*flag_name).into(), Value::Bool(true));
                }
            }
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::META_UPSTREAM_ERRORS;

    fn answer(
        server: &str,
        session: Option<&str>,
        result: Value,
    ) -> Result<Initialized, UpstreamFailure> {
        Ok(Initialized {
            server: server.into(),
            session_id: session.map(Into::into),
            result,
        })
    }

    #[test]
    fn negotiates_the_callers_version_when_supported() {
        assert_eq!(negotiate_version(Some("2025-03-26")), "2025-03-26");
        assert_eq!(negotiate_version(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate_version(Some("2025-06-18")), "2025-06-18");
        assert_eq!(
            negotiate_version(Some("2025-11-25")),
            LATEST_PROTOCOL_VERSION
        );
        assert_eq!(negotiate_version(Some("garbage")), LATEST_PROTOCOL_VERSION);
        assert_eq!(negotiate_version(None), LATEST_PROTOCOL_VERSION);
        assert_eq!(
            requested_version(Some(&json!({"protocolVersion": "2025-03-26"}))),
            Some("2025-03-26")
        );
    }

    #[test]
    fn upstream_params_carry_the_negotiated_version() {
        let caller = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "claude", "version": "1"}
        });
        assert_eq!(
            upstream_params(Some(&caller), "2025-06-18"),
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"sampling": {}},
                "clientInfo": {"name": "claude", "version": "1"}
            })
        );
        let bare = upstream_params(None, "2025-03-26");
        assert_eq!(bare["protocolVersion"], "2025-03-26");
        assert!(bare["capabilities"].is_object() && bare["clientInfo"].is_object());
    }

    #[test]
    fn merges_capabilities_instructions_and_sessions() {
        let merged = merge(
            "2025-06-18",
            "0.1.0",
            "ns/key",
            42,
            vec![
                answer(
                    "github",
                    Some("gh-session"),
                    json!({
                        "protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {"listChanged": false}, "logging": {}},
                        "serverInfo": {"name": "github-mcp", "version": "2"},
                        "instructions": "Use search_issues before create_issue."
                    }),
                ),
                answer(
                    "fs",
                    None,
                    json!({
                        "protocolVersion": "2025-03-26",
                        "capabilities": {
                            "tools": {"listChanged": true},
                            "resources": {"subscribe": true},
                            "prompts": {},
                            "experimental": {"x": {}}
                        },
                        "serverInfo": {"name": "fs", "version": "1"},
                        "instructions": "  "
                    }),
                ),
                answer(
                    "old",
                    None,
                    json!({
                        "protocolVersion": "2024-11-05",
                        "capabilities": {"resources": {"listChanged": true}, "completions": {}},
                        "serverInfo": {"name": "old", "version": "1"},
                        "instructions": "Old server."
                    }),
                ),
            ],
        )
        .expect("merged");
        assert_eq!(
            merged.result,
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {
                    "tools": {"listChanged": true},
                    "logging": {},
                    "resources": {"subscribe": true, "listChanged": true},
                    "prompts": {},
                    "completions": {}
                },
                "serverInfo": {"name": "tollgate", "version": "0.1.0"},
                "instructions": "## github\n\nUse search_issues before create_issue.\n\n## old\n\nOld server."
            })
        );
        assert!(merged.failures.is_empty());
        let s = &merged.session;
        assert_eq!((s.key_id.as_str(), s.issued_at_unix), ("ns/key", 42));
        assert_eq!(s.protocol_version, "2025-06-18");
        assert_eq!(
            s.upstreams["github"],
            UpstreamSession {
                session_id: Some("gh-session".into()),
                protocol_version: "2025-06-18".into()
            }
        );
        assert_eq!(s.upstreams["fs"].session_id, None);
        assert_eq!(s.upstreams["old"].protocol_version, "2024-11-05");
    }

    #[test]
    fn failed_and_unusable_upstreams_are_left_out_and_reported() {
        let merged = merge(
            "2025-06-18",
            "1",
            "k",
            0,
            vec![
                answer(
                    "good",
                    Some("s"),
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}),
                ),
                Err(UpstreamFailure::new("down", "connection refused")),
                answer(
                    "newer",
                    None,
                    json!({"protocolVersion": "2099-01-01", "capabilities": {}}),
                ),
                answer("odd", None, json!(["not", "an", "object"])),
            ],
        )
        .expect("merged");
        assert_eq!(
            merged.session.upstreams.keys().collect::<Vec<_>>(),
            vec!["good"]
        );
        let servers: Vec<_> = merged.failures.iter().map(|f| f.server.as_str()).collect();
        assert_eq!(servers, vec!["down", "newer", "odd"]);
        let reported = &merged.result["_meta"][META_UPSTREAM_ERRORS];
        assert_eq!(
            reported[0],
            json!({"server": "down", "error": "connection refused"})
        );
        assert_eq!(reported.as_array().map(Vec::len), Some(3));
        assert_eq!(merged.result["capabilities"], json!({"tools": {}}));
    }

    #[test]
    fn all_upstreams_failing_is_an_error_but_none_configured_is_not() {
        let e = merge(
            "2025-06-18",
            "1",
            "k",
            0,
            vec![Err(UpstreamFailure::new("a", "timeout"))],
        )
        .expect_err("none usable");
        assert_eq!(e.code, UPSTREAM_UNAVAILABLE);
        assert_eq!(
            e.data,
            Some(json!({"failures": [{"server": "a", "error": "timeout"}]}))
        );
        let empty = merge("2025-03-26", "1", "k", 0, vec![]).expect("empty aggregate");
        assert_eq!(empty.result["capabilities"], json!({}));
        assert!(empty.session.upstreams.is_empty());
    }
}
