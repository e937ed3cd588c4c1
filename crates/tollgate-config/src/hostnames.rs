//! Host names the Gateway API way: a rule serves exact names (`api.example.com`) and wildcard
//! names (`*.example.com`, any name below `example.com` but not `example.com` itself); a rule
//! with no host names serves every host. Names are compared without regard to ASCII case.

/// How well a request's host matched a rule's host names, for precedence between routes: the
/// Gateway API prefers the longest matching exact name, then the longest matching name.
/// Greater is more specific; a rule with no host names ranks lowest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostRank {
    /// Length of the matching exact name; 0 when a wildcard (or nothing) matched.
    exact: usize,
    /// Length of the matching name, wildcard included.
    any: usize,
}

/// The host a request names: its `Host` header or URI authority without port, userinfo or
/// trailing dot (`API.example.com.:8443` → `API.example.com`). IPv6 literals keep their
/// brackets.
pub fn request_host(authority: &str) -> &str {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority
            .split_once(':')
            .map_or(authority, |(host, _)| host)
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Whether `host` is served by the name `pattern` (exact or `*.` wildcard).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            host.len() > suffix.len()
                && host
                    .get(host.len() - suffix.len()..)
                    .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// How `host` matches a rule's `hostnames`: `None` when the rule does not serve it.
pub fn host_rank(hostnames: &[String], host: &str) -> Option<HostRank> {
    if hostnames.is_empty() {
        return Some(HostRank::default());
    }
    hostnames
        .iter()
        .filter(|pattern| host_matches(pattern, host))
        .map(|pattern| HostRank {
            exact: if pattern.starts_with('*') {
                0
            } else {
                pattern.len()
            },
            any: pattern.len(),
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_read_without_port_and_trailing_dot() {
        assert_eq!(request_host("API.example.com.:8443"), "API.example.com");
        assert_eq!(request_host("example.com"), "example.com");
        assert_eq!(request_host("[::1]:8080"), "[::1]");
        assert_eq!(request_host("user@host:1"), "host");
        assert_eq!(request_host(""), "");
    }

    #[test]
    fn wildcards_match_names_below_their_suffix_only() {
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.b.EXAMPLE.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "aexample.com"));
        assert!(!host_matches("*.example.com", "a.example.net"));
        assert!(host_matches("api.example.com", "API.Example.com"));
        assert!(!host_matches("api.example.com", "web.example.com"));
    }

    #[test]
    fn exact_names_rank_above_wildcards_and_longer_above_shorter() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let exact = host_rank(&names(&["a.example.com"]), "a.example.com").unwrap();
        let wide = host_rank(&names(&["*.com"]), "a.example.com").unwrap();
        let narrow = host_rank(&names(&["*.example.com", "*.com"]), "a.example.com").unwrap();
        let any = host_rank(&[], "a.example.com").unwrap();
        assert!(exact > narrow && narrow > wide && wide > any);
        assert_eq!(host_rank(&names(&["b.example.com"]), "a.example.com"), None);
    }
}
