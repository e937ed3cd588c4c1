//! The pure core of Tollgate's MCP gateway: one endpoint (such as `/mcp`) that is a single
//! virtual MCP server aggregating several upstream MCP servers.
//!
//! Nothing here does I/O: bytes and values in, bytes and values out. The proxy does the HTTP
//! (Streamable HTTP towards the caller; Streamable HTTP or HTTP+SSE towards upstreams) and
//! calls these functions:
//!
//! 1. [`message::parse`] the POST body (size limit, no batches).
//! 2. For anything but `initialize`, [`session::open`] the caller's `Mcp-Session-Id` (bound to
//!    the caller's key id, maximum age, key rotation); on failure answer HTTP 404 with
//!    [`session::SessionError::to_error`].
//! 3. Requests: [`route::route_request`] says whether to answer locally, fan out a listing
//!    ([`aggregate::listing`]), broadcast, or forward to one upstream with names and URIs
//!    unprefixed, or which JSON-RPC error to answer with (unknown tool, not permitted by the
//!    [`policy`], unavailable upstream, unknown method). `initialize` merges the upstreams'
//!    answers with [`aggregate::initialize`] and seals the session with [`session::seal`].
//! 4. Notifications and responses from the caller: [`route::route_notification`],
//!    [`route::route_response`].
//! 5. Everything an upstream sends back: [`rewrite::from_upstream`] (prefixes URIs, namespaces
//!    the ids of upstream-originated requests per upstream, see [`ids`]).
//!
//! Name and URI prefixing is described in [`names`], tool policy in [`policy`], the session
//! token in [`session`], and the error codes in [`message`].
//!
//! ```
//! use tollgate_mcp::message::{self, Message, NOT_PERMITTED};
//! use tollgate_mcp::policy::{Identity, ToolPolicy, ToolRules};
//! use tollgate_mcp::route::{Route, Server, route_request};
//! use tollgate_mcp::session::{self, SessionKey};
//! use tollgate_mcp::aggregate::initialize::{self, Initialized};
//!
//! let caller = Identity { key_id: "team-a/key-1".into(), team: Some("team-a".into()), user: None };
//! let github = ToolPolicy::new(
//!     ToolRules { allow: vec![], deny: vec!["delete_*".into()] },
//!     vec![],
//!     vec![],
//! )?;
//! let lookup = |prefix: &str| match prefix {
//!     "github" => Server::Available(&github),
//!     _ => Server::Unknown,
//! };
//!
//! // initialize: merge what the upstreams answered and seal the session.
//! let version = initialize::negotiate_version(Some("2025-06-18"));
//! let merged = initialize::merge(version, "0.1.0", &caller.key_id, 1_700_000_000, vec![Ok(
//!     Initialized {
//!         server: "github".into(),
//!         session_id: Some("upstream-session".into()),
//!         result: serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}),
//!     },
//! )])?;
//! let key = SessionKey::new(&[7; 32])?;
//! let session_id = session::seal(&merged.session, &key)?;
//!
//! // A later request, on any replica.
//! let state = session::open(&session_id, &[key], &caller.key_id, 1_700_000_060, 86_400)?;
//! assert_eq!(state.upstreams["github"].session_id.as_deref(), Some("upstream-session"));
//! let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__delete_repo"}}"#;
//! let Ok(Message::Request(request)) = message::parse(body, 4 << 20) else { unreachable!() };
//! let refused = route_request(&request, &caller, lookup).unwrap_err();
//! assert_eq!(refused.code, NOT_PERMITTED);
//! let reply = Message::Error(refused.into_response(Some(request.id)));
//! # let _ = reply;
//!
//! let body = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"github__get_issue"}}"#;
//! let Ok(Message::Request(request)) = message::parse(body, 4 << 20) else { unreachable!() };
//! assert_eq!(
//!     route_request(&request, &caller, lookup)?,
//!     Route::Upstream { server: "github".into(), params: serde_json::json!({"name": "get_issue"}) },
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aggregate;
pub mod globs;
pub mod ids;
pub mod message;
pub mod names;
pub mod policy;
pub mod rewrite;
pub mod route;
pub mod session;
