//! Server prefixes on tool, prompt and resource names, and their removal.
//!
//! Every upstream server has a prefix. The caller sees:
//!
//! - tools and prompts as `<prefix>__<name>` (the separator [`SEPARATOR`] is a double
//!   underscore: it keeps names inside `[A-Za-z0-9_-]`, which OpenAI-style function names and
//!   Claude tool names require);
//! - resource URIs and URI templates with the prefix in front of their scheme, joined by `+`
//!   as in `git+ssh`: `test://static/1` becomes `<prefix>+test://static/1`. URI schemes may
//!   not contain `_`, so an `_` of the prefix is written `.` there (`my_srv+test://…`
//!   becomes `my.srv+test://…`); a prefix never contains `.`, so this is reversible;
//! - a URI without a scheme (not a valid MCP resource URI, but some servers use relative
//!   names such as `notes/today.md`) gets the prefix as its scheme: `<prefix>:notes/today.md`.
//!   A scheme without `+` therefore always means "no scheme upstream". This also covers URI
//!   templates that start with an expression (`{+path}` becomes `<prefix>:{+path}`, and its
//!   expansion `<prefix>:file:///a` maps back to `file:///a`).
//!
//! Prefixes are `[a-z][a-z0-9-]*` with single `_` between such runs: lowercase, starting with
//! a letter (a URI scheme must), no `__`, not ending in `_`, at most [`MAX_PREFIX_LEN`]
//! characters. Because a prefix has no `__` and does not end in `_`, the first `__` of a
//! prefixed name is always the separator, and the upstream name may itself contain `__`.
//!
//! Tool names longer than a limit (64 by default, [`MAX_TOOL_NAME_LEN`]) once prefixed are
//! refused by [`prefix_tool_name`]: the aggregated listing leaves such a tool out and reports
//! it (a shorter prefix fixes it). Shortening the name with a hash would need the upstream's
//! listing to map it back on every call. Prompt names and URIs have no length limit.

/// What joins a server prefix and a tool or prompt name.
pub const SEPARATOR: &str = "__";
/// The longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 32;
/// The default longest prefixed tool name (OpenAI function names stop at 64 characters).
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// Why a prefix or a prefixed name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The prefix breaks the prefix rules.
    #[error("invalid server prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The prefixed tool name is longer than the limit.
    #[error("tool name {name:?} is {len} characters long once prefixed, over the limit of {max}")]
    TooLong {
        /// The prefixed name.
        name: String,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The upstream name is empty.
    #[error("empty name")]
    Empty,
}

/// Checks a server prefix against the rules in the module documentation.
pub fn validate_prefix(prefix: &str) -> Result<(), NameError> {
    let fail = |reason| {
        Err(NameError::InvalidPrefix {
            prefix: prefix.to_owned(),
            reason,
        })
    };
    if prefix.is_empty() {
        return fail("it is empty");
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return fail("it is longer than 32 characters");
    }
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase()) {
        return fail("it must start with a lowercase letter");
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return fail("only a-z, 0-9, '-' and '_' are allowed");
    }
    if prefix.contains(SEPARATOR) {
        return fail("it must not contain \"__\"");
    }
    if prefix.ends_with('_') {
        return fail("it must not end with '_'");
    }
    Ok(())
}

/// `<prefix>__<name>`, for prompts (and tools, when no length limit applies).
pub fn prefix_name(prefix: &str, name: &str) -> String {
    format!("{prefix}{SEPARATOR}{name}")
}

/// `<prefix>__<name>` for a tool, refused when longer than `max_len` characters.
pub fn prefix_tool_name(prefix: &str, name: &str, max_len: usize) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let prefixed = prefix_name(prefix, name);
    let len = prefixed.chars().count();
    if len > max_len {
        return Err(NameError::TooLong {
            name: prefixed,
            len,
            max: max_len,
        });
    }
    Ok(prefixed)
}

/// Splits a caller's tool or prompt name into (server prefix, upstream name). `None` when it
/// has no separator, the part before it is not a valid prefix, or the name after it is empty.
pub fn split_name(name: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = name.split_once(SEPARATOR)?;
    (validate_prefix(prefix).is_ok() && !rest.is_empty()).then_some((prefix, rest))
}

/// The prefix as it appears in a URI scheme (`_` written `.`).
fn scheme_form(prefix: &str) -> String {
    prefix.replace('_', ".")
}

/// The length of the URI's scheme (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
/// followed by `:`), if it has one.
fn scheme_len(uri: &str) -> Option<usize> {
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(colon)
}

/// Puts the server prefix in front of a resource URI or URI template (see the module docs).
pub fn prefix_uri(prefix: &str, uri: &str) -> String {
    let scheme = scheme_form(prefix);
    match scheme_len(uri) {
        Some(_) => format!("{scheme}+{uri}"),
        None => format!("{scheme}:{uri}"),
    }
}

/// Splits a caller's resource URI into (server prefix, upstream URI), or `None` when it
/// carries no valid prefix.
pub fn split_uri(uri: &str) -> Option<(String, &str)> {
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let (prefix, upstream) = match scheme.split_once('+') {
        Some((prefix, _)) => (prefix, &uri[prefix.len() + 1..]),
        None => (scheme, &uri[colon + 1..]),
    };
    let prefix = prefix.replace('.', "_");
    validate_prefix(&prefix).ok()?;
    (!upstream.is_empty()).then_some((prefix, upstream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        for good in [
            "gh",
            "github",
            "my-srv",
            "my_srv",
            "a1",
            "a_b_c",
            "x-",
            "s3-files_v2",
        ] {
            assert_eq!(validate_prefix(good), Ok(()), "{good}");
        }
        for bad in [
            "", "Gh", "1gh", "-gh", "_gh", "g__h", "gh_", "g.h", "g/h", "g h", "gh+", "ü",
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
        assert!(validate_prefix(&"a".repeat(32)).is_ok());
        assert!(validate_prefix(&"a".repeat(33)).is_err());
    }

    #[test]
    fn names_round_trip() {
        for (prefix, name) in [
            ("gh", "create_issue"),
            ("my_srv", "x"),
            ("fs", "read__file"),
            ("fs", "_leading"),
            ("fs", "__double_leading"),
            ("a-b", "dotted.name/with-slash"),
        ] {
            let prefixed = prefix_name(prefix, name);
            assert_eq!(split_name(&prefixed), Some((prefix, name)), "{prefixed}");
        }
    }

    #[test]
    fn names_without_a_valid_prefix_do_not_split() {
        for name in ["plain", "gh__", "__x", "Gh__x", "g.h__x", "_gh__x", "1a__x"] {
            assert_eq!(split_name(name), None, "{name}");
        }
        // A name that does start with a valid prefix splits at the first separator.
        assert_eq!(split_name("gh___x"), Some(("gh", "_x")));
    }

    #[test]
    fn tool_names_over_the_limit_are_refused() {
        let name = "t".repeat(60);
        assert_eq!(
            prefix_tool_name("ab", &name, 64),
            Ok(format!("ab__{name}")),
            "exactly 64"
        );
        assert_eq!(
            prefix_tool_name("abc", &name, 64),
            Err(NameError::TooLong {
                name: format!("abc__{name}"),
                len: 65,
                max: 64
            })
        );
        assert!(prefix_tool_name("abc", &name, 128).is_ok());
        assert_eq!(prefix_tool_name("abc", "", 64), Err(NameError::Empty));
    }

    #[test]
    fn uris_round_trip() {
        for (prefix, uri, expected) in [
            ("srv", "test://static/1", "srv+test://static/1"),
            ("my_srv", "file:///etc/hosts", "my.srv+file:///etc/hosts"),
            ("gh", "git+ssh://host/repo", "gh+git+ssh://host/repo"),
            ("gh", "urn:isbn:123", "gh+urn:isbn:123"),
            ("gh", "notes/today.md", "gh:notes/today.md"),
            ("gh", "/abs/path", "gh:/abs/path"),
            ("gh", "//host/path", "gh://host/path"),
            ("gh", "test://static/{id}", "gh+test://static/{id}"),
            ("gh", "{+path}", "gh:{+path}"),
            ("a-b", "ui://widget", "a-b+ui://widget"),
        ] {
            let prefixed = prefix_uri(prefix, uri);
            assert_eq!(prefixed, expected);
            assert_eq!(
                split_uri(&prefixed),
                Some((prefix.to_owned(), uri)),
                "{prefixed}"
            );
        }
    }

    #[test]
    fn expanded_scheme_less_templates_map_back() {
        // `gh:{+path}` expanded by the client with path = "file:///a".
        assert_eq!(
            split_uri("gh:file:///a"),
            Some(("gh".to_owned(), "file:///a"))
        );
    }

    #[test]
    fn uris_without_a_valid_prefix_do_not_split() {
        for uri in [
            "no-colon",
            "Test+x://y",
            "1a+x://y",
            "a__b+x://y",
            "a/b:c",
            "srv+",
            "srv:",
            "",
        ] {
            assert_eq!(split_uri(uri), None, "{uri}");
        }
        // An underscore written as such in the scheme is accepted too.
        assert_eq!(
            split_uri("my_srv+test://x"),
            Some(("my_srv".to_owned(), "test://x"))
        );
    }
}
