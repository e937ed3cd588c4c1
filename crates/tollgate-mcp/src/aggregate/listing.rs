//! `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` across
//! upstreams.
//!
//! # Pagination
//!
//! A caller's page is one page from every upstream that still has one, asked in parallel:
//! the first page (no cursor) asks every upstream of the session for its first page; the
//! `nextCursor` the caller gets lists the upstreams that answered with a `nextCursor` of their
//! own, with that cursor. So a client that never follows `nextCursor` (many do not) still sees
//! every upstream's first page, and one slow or broken upstream does not hide the others.
//!
//! The caller's cursor is opaque: `base64url(json({"k": <list kind>, "p": [[<server
//! prefix>, <upstream cursor>], …]}))`. It carries server prefixes rather than indexes, so a
//! configuration change between two pages cannot shift it onto the wrong server. It is not
//! sealed: a caller can only make the gateway pass some cursor of its choice to an upstream it
//! could list anyway, and the policy filters whatever comes back. A cursor that does not
//! decode, belongs to another kind of list, or names a server that is not part of the session
//! is refused with [`INVALID_PARAMS`], as MCP asks for invalid cursors.
//!
//! # Items
//!
//! Tools and prompts get `<prefix>__<name>`, resources their `uri` and templates their
//! `uriTemplate` prefixed (see [`crate::names`]). A tool's MCP Apps UI link
//! (`_meta.ui.resourceUri`, and the older `_meta["ui/resourceUri"]`) is prefixed too, so the
//! host's `resources/read` of it is routed back. Tools the caller may not use are left out
//! silently. Tools whose prefixed name is too long, and items without a name or URI, are left
//! out and listed in [`Merged::omitted`] for the proxy to log (not told to the caller).
//! A failed upstream's items are missing, and it is reported (see [`crate::aggregate`]); it
//! is not asked again on later pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{UpstreamFailure, report_failures};
use crate::message::{ErrorObject, INVALID_PARAMS};
use crate::names::{prefix_name, prefix_tool_name, prefix_uri};

/// The four aggregated listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
}

impl ListKind {
    /// The kind a method lists, if it is a listing.
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            _ => None,
        }
    }

    /// The method.
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The member of the result that holds the items.
    pub fn items_key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The member of an item that identifies it and gets the prefix.
    fn id_key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::ResourceTemplates => "uriTemplate",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    k: ListKind,
    p: Vec<(String, String)>,
}

/// One upstream to ask for a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// The server's prefix.
    pub server: String,
    /// The cursor to send it (`None`: its first page).
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The params of the list request to send this upstream.
    pub fn params(&self) -> Value {
        let mut params = Map::new();
        if let Some(cursor) = &self.cursor {
            params.insert("cursor".into(), Value::from(cursor.as_str()));
        }
        Value::Object(params)
    }
}

/// The caller's cursor from the list request's params; [`INVALID_PARAMS`] when it is not a
/// string.
pub fn cursor_param(params: Option<&Value>) -> Result<Option<&str>, ErrorObject> {
    match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(cursor)) => Ok(Some(cursor)),
        Some(_) => Err(ErrorObject::new(INVALID_PARAMS, "cursor must be a string")),
    }
}

/// Which upstreams to ask, with which cursors, for the caller's `cursor`. `servers` are the
/// prefixes of the session's upstreams, in configuration order.
pub fn plan(
    kind: ListKind,
    cursor: Option<&str>,
    servers: &[&str],
) -> Result<Vec<PageRequest>, ErrorObject> {
    let Some(cursor) = cursor else {
        return Ok(servers
            .iter()
            .map(|server| PageRequest {
                server: (*server).to_owned(),
                cursor: None,
            })
            .collect());
    };
    let invalid = |why: &str| ErrorObject::new(INVALID_PARAMS, format!("invalid cursor: {why}"));
    let decoded: Cursor = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("not a cursor of this gateway"))?;
    if decoded.k != kind {
        return Err(invalid(&format!(
            "it belongs to {}, not {}",
            decoded.k.method(),
            kind.method()
        )));
    }
    if decoded.p.is_empty() {
        return Err(invalid("it is empty"));
    }
    decoded
        .p
        .into_iter()
        .map(|(server, cursor)| {
            if servers.contains(&server.as_str()) {
                Ok(PageRequest {
                    server,
                    cursor: Some(cursor),
                })
            } else {
                Err(invalid(&format!(
                    "server {server:?} is not part of this session"
                )))
            }
        })
        .collect()
}

/// An upstream's answer to a page request.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamPage {
    /// The server's prefix.
    pub server: String,
    /// Its list result, or why there is none.
    pub result: Result<Value, String>,
}

/// An item left out of a merged page for a reason the caller is not told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Omitted {
    /// The server's prefix.
    pub server: String,
    /// The item's name or URI as the upstream gave it (empty when it had none).
    pub name: String,
    /// Why it was left out.
    pub reason: String,
}

/// The caller's page.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The list result to answer with.
    pub result: Value,
    /// Upstreams that failed (also in `result._meta`).
    pub failures: Vec<UpstreamFailure>,
    /// Items left out, for the log.
    pub omitted: Vec<Omitted>,
}

/// Merges the upstreams' pages (in the order of [`plan`]) into the caller's page.
///
/// `permits(server, tool)` says whether the caller may use an (unprefixed) tool; it is asked
/// for tools only. Prefixed tool names longer than `max_tool_name_len` are left out.
pub fn merge(
    kind: ListKind,
    pages: Vec<UpstreamPage>,
    permits: impl Fn(&str, &str) -> bool,
    max_tool_name_len: usize,
) -> Merged {
    let mut items = Vec::new();
    let mut next = Vec::new();
    let mut failures = Vec::new();
    let mut omitted = Vec::new();
    for page in pages {
        let result = match page.result {
            Ok(Value::Object(result)) => result,
            Ok(_) => {
                failures.push(UpstreamFailure::new(
                    page.server,
                    "list result is not an object",
                ));
                continue;
            }
            Err(error) => {
                failures.push(UpstreamFailure::new(page.server, error));
                continue;
            }
        };
        let Some(Value::Array(list)) = result.get(kind.items_key()) else {
            failures.push(UpstreamFailure::new(
                page.server,
                format!("list result has no {:?} array", kind.items_key()),
            ));
            continue;
        };
        for item in list {
            match prefix_item(kind, &page.server, item, &permits, max_tool_name_len) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err((name, reason)) => omitted.push(Omitted {
                    server: page.server.clone(),
                    name,
                    reason,
                }),
            }
        }
        if let Some(cursor) = result.get("nextCursor").and_then(Value::as_str) {
            next.push((page.server, cursor.to_owned()));
        }
    }
    let mut result = Map::new();
    result.insert(kind.items_key().into(), Value::Array(items));
    if !next.is_empty() {
        let cursor = Cursor { k: kind, p: next };
        // Serializing strings cannot fail.
        let json = serde_json::to_vec(&cursor).unwrap_or_default();
        result.insert(
            "nextCursor".into(),
            Value::from(URL_SAFE_NO_PAD.encode(json)),
        );
    }
    report_failures(&mut result, &failures);
    Merged {
        result: Value::Object(result),
        failures,
        omitted,
    }
}

/// The item as the caller sees it: `Ok(None)` when the policy hides it, `Err` when it is
/// left out for another reason.
fn prefix_item(
    kind: ListKind,
    server: &str,
    item: &Value,
    permits: &impl Fn(&str, &str) -> bool,
    max_tool_name_len: usize,
) -> Result<Option<Value>, (String, String)> {
    let id_key = kind.id_key();
    let Some(Value::String(id)) = item.get(id_key) else {
        return Err((String::new(), format!("item without a string {id_key:?}")));
    };
    if id.is_empty() {
        return Err((String::new(), format!("item with an empty {id_key:?}")));
    }
    let prefixed = match kind {
        ListKind::Tools => {
            if !permits(server, id) {
                return Ok(None);
            }
            prefix_tool_name(server, id, max_tool_name_len)
                .map_err(|e| (id.clone(), e.to_string()))?
        }
        ListKind::Prompts => prefix_name(server, id),
        ListKind::Resources | ListKind::ResourceTemplates => prefix_uri(server, id),
    };
    let mut item = item.clone();
    item[id_key] = Value::String(prefixed);
    if kind == ListKind::Tools {
        prefix_ui_links(server, &mut item);
    }
    Ok(Some(item))
}

/// Prefixes a tool's MCP Apps UI resource link.
pub(crate) fn prefix_ui_links(server: &str, tool: &mut Value) {
    let Some(Value::Object(meta)) = tool.get_mut("_meta") else {
        return;
    };
    if let Some(Value::String(uri)) = meta.get_mut("ui/resourceUri") {
        *uri = prefix_uri(server, uri);
    }
    if let Some(Value::String(uri)) = meta.get_mut("ui").and_then(|ui| ui.get_mut("resourceUri")) {
        *uri = prefix_uri(server, uri);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::META_UPSTREAM_ERRORS;
    use crate::names::MAX_TOOL_NAME_LEN;
    use serde_json::json;

    fn tools(names: &[&str], next: Option<&str>) -> Result<Value, String> {
        let tools: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
            .collect();
        let mut result = json!({ "tools": tools });
        if let Some(next) = next {
            result["nextCursor"] = json!(next);
        }
        Ok(result)
    }

    fn page(server: &str, result: Result<Value, String>) -> UpstreamPage {
        UpstreamPage {
            server: server.into(),
            result,
        }
    }

    fn names(result: &Value, kind: ListKind) -> Vec<String> {
        result[kind.items_key()]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i[kind.id_key()].as_str().expect("id").to_owned())
            .collect()
    }

    fn allow_all(_: &str, _: &str) -> bool {
        true
    }

    #[test]
    fn methods_and_kinds() {
        for kind in [
            ListKind::Tools,
            ListKind::Prompts,
            ListKind::Resources,
            ListKind::ResourceTemplates,
        ] {
            assert_eq!(ListKind::from_method(kind.method()), Some(kind));
        }
        assert_eq!(ListKind::from_method("tools/call"), None);
    }

    #[test]
    fn paginates_across_three_upstreams_where_one_fails() {
        let servers = ["alpha", "beta", "gamma"];
        // Page 1: every upstream, from the start.
        let first = plan(ListKind::Tools, None, &servers).expect("plan");
        assert_eq!(
            first,
            vec![
                PageRequest {
                    server: "alpha".into(),
                    cursor: None
                },
                PageRequest {
                    server: "beta".into(),
                    cursor: None
                },
                PageRequest {
                    server: "gamma".into(),
                    cursor: None
                },
            ]
        );
        assert_eq!(first[0].params(), json!({}));
        let merged = merge(
            ListKind::Tools,
            vec![
                page("alpha", tools(&["a1", "a2"], Some("alpha-p2"))),
                page("beta", Err("HTTP 502 from upstream".into())),
                page("gamma", tools(&["g1"], Some("gamma-p2"))),
            ],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            names(&merged.result, ListKind::Tools),
            vec!["alpha__a1", "alpha__a2", "gamma__g1"]
        );
        assert_eq!(
            merged.failures,
            vec![UpstreamFailure::new("beta", "HTTP 502 from upstream")]
        );
        assert_eq!(
            merged.result["_meta"][META_UPSTREAM_ERRORS],
            json!([{"server": "beta", "error": "HTTP 502 from upstream"}])
        );
        let cursor = merged.result["nextCursor"].as_str().expect("more pages");

        // Page 2: only the upstreams that had more, with their own cursors.
        let second = plan(ListKind::Tools, Some(cursor), &servers).expect("plan");
        assert_eq!(
            second,
            vec![
                PageRequest {
                    server: "alpha".into(),
                    cursor: Some("alpha-p2".into())
                },
                PageRequest {
                    server: "gamma".into(),
                    cursor: Some("gamma-p2".into())
                },
            ]
        );
        assert_eq!(second[0].params(), json!({"cursor": "alpha-p2"}));
        let merged = merge(
            ListKind::Tools,
            vec![
                page("alpha", tools(&["a3"], None)),
                page("gamma", tools(&["g2"], Some("gamma-p3"))),
            ],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            names(&merged.result, ListKind::Tools),
            vec!["alpha__a3", "gamma__g2"]
        );
        assert!(merged.result.get("_meta").is_none());
        let cursor = merged.result["nextCursor"].as_str().expect("more pages");

        // Page 3: gamma alone, then the end.
        let third = plan(ListKind::Tools, Some(cursor), &servers).expect("plan");
        assert_eq!(
            third,
            vec![PageRequest {
                server: "gamma".into(),
                cursor: Some("gamma-p3".into())
            }]
        );
        let merged = merge(
            ListKind::Tools,
            vec![page("gamma", tools(&["g3"], None))],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(names(&merged.result, ListKind::Tools), vec!["gamma__g3"]);
        assert!(merged.result.get("nextCursor").is_none());
    }

    #[test]
    fn refuses_foreign_cursors() {
        let servers = ["alpha"];
        let merged = merge(
            ListKind::Tools,
            vec![page("alpha", tools(&["a"], Some("next")))],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        let cursor = merged.result["nextCursor"].as_str().expect("cursor");
        let e = plan(ListKind::Prompts, Some(cursor), &servers).expect_err("other kind");
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("tools/list"), "{}", e.message);
        let e = plan(ListKind::Tools, Some(cursor), &["beta"]).expect_err("not in session");
        assert!(e.message.contains("\"alpha\""), "{}", e.message);
        for bad in ["", "!!", "e30", "bm90IGpzb24"] {
            let e = plan(ListKind::Tools, Some(bad), &servers).expect_err(bad);
            assert_eq!(e.code, INVALID_PARAMS);
        }
        let empty = URL_SAFE_NO_PAD.encode(br#"{"k":"tools","p":[]}"#);
        assert!(plan(ListKind::Tools, Some(&empty), &servers).is_err());
    }

    #[test]
    fn reads_the_cursor_param() {
        assert_eq!(cursor_param(None), Ok(None));
        assert_eq!(cursor_param(Some(&json!({}))), Ok(None));
        assert_eq!(cursor_param(Some(&json!({"cursor": null}))), Ok(None));
        assert_eq!(cursor_param(Some(&json!({"cursor": "c"}))), Ok(Some("c")));
        assert_eq!(
            cursor_param(Some(&json!({"cursor": 5}))).map_err(|e| e.code),
            Err(INVALID_PARAMS)
        );
    }

    #[test]
    fn tools_are_filtered_by_policy_and_length() {
        let long = "x".repeat(61);
        let merged = merge(
            ListKind::Tools,
            vec![
                page("gh", tools(&["get_issue", "delete_repo", &long], None)),
                page(
                    "fs",
                    Ok(json!({"tools": [{"description": "no name"}, {"name": "read"}]})),
                ),
            ],
            |server, tool| !(server == "gh" && tool == "delete_repo"),
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            names(&merged.result, ListKind::Tools),
            vec!["gh__get_issue", "fs__read"]
        );
        let omitted: Vec<_> = merged
            .omitted
            .iter()
            .map(|o| (o.server.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(omitted, vec![("gh", long.as_str()), ("fs", "")]);
        assert!(merged.omitted[0].reason.contains("over the limit of 64"));
        assert!(merged.failures.is_empty(), "hidden tools are not failures");
    }

    #[test]
    fn other_fields_are_kept_and_ui_links_prefixed() {
        let merged = merge(
            ListKind::Tools,
            vec![page(
                "charts",
                Ok(json!({"tools": [{
                    "name": "bar",
                    "title": "Bar chart",
                    "inputSchema": {"type": "object"},
                    "annotations": {"readOnlyHint": true},
                    "futureField": [1, 2],
                    "_meta": {"ui": {"resourceUri": "ui://charts/bar"}, "ui/resourceUri": "ui://charts/bar"}
                }]})),
            )],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            merged.result["tools"][0],
            json!({
                "name": "charts__bar",
                "title": "Bar chart",
                "inputSchema": {"type": "object"},
                "annotations": {"readOnlyHint": true},
                "futureField": [1, 2],
                "_meta": {
                    "ui": {"resourceUri": "charts+ui://charts/bar"},
                    "ui/resourceUri": "charts+ui://charts/bar"
                }
            })
        );
    }

    #[test]
    fn prompts_resources_and_templates_are_prefixed() {
        let merged = merge(
            ListKind::Prompts,
            vec![page(
                "gh",
                Ok(json!({"prompts": [{"name": "triage", "arguments": []}]})),
            )],
            |_, _| false, // the tool policy does not apply to prompts
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(names(&merged.result, ListKind::Prompts), vec!["gh__triage"]);
        let merged = merge(
            ListKind::Resources,
            vec![page(
                "my_fs",
                Ok(
                    json!({"resources": [{"uri": "file:///a.txt", "name": "a.txt"}, {"uri": "notes/b"}]}),
                ),
            )],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            names(&merged.result, ListKind::Resources),
            vec!["my.fs+file:///a.txt", "my.fs:notes/b"]
        );
        assert_eq!(merged.result["resources"][0]["name"], "a.txt");
        let merged = merge(
            ListKind::ResourceTemplates,
            vec![page(
                "gh",
                Ok(
                    json!({"resourceTemplates": [{"uriTemplate": "repo://{owner}/{repo}", "name": "repo"}]}),
                ),
            )],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        assert_eq!(
            names(&merged.result, ListKind::ResourceTemplates),
            vec!["gh+repo://{owner}/{repo}"]
        );
    }

    #[test]
    fn malformed_upstream_results_are_failures() {
        let merged = merge(
            ListKind::Resources,
            vec![
                page("a", Ok(json!([]))),
                page("b", Ok(json!({"tools": []}))),
                page("c", Ok(json!({"resources": [], "nextCursor": 5}))),
            ],
            allow_all,
            MAX_TOOL_NAME_LEN,
        );
        let failed: Vec<_> = merged.failures.iter().map(|f| f.server.as_str()).collect();
        assert_eq!(failed, vec!["a", "b"]);
        assert_eq!(merged.result["resources"], json!([]));
        assert!(
            merged.result.get("nextCursor").is_none(),
            "a non-string cursor ends c"
        );
    }
}
