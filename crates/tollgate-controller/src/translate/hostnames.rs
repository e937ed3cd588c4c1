//! Which host names a route serves through the listeners it attaches to, the Gateway API way:
//! a listener with a host name admits only the route names that fall under it (or, for a
//! route without names, stands for the route's names itself); a route whose names share none
//! with a listener does not attach to it.

use tollgate_config::host_matches;

/// The names a route with `route` names (none: every host) serves through a listener for
/// `listener` (`None`: every host). `None` when they share no name; an empty list means
/// every host.
pub(super) fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(listener) = listener else {
        return Some(route.to_vec());
    };
    if route.is_empty() {
        return Some(vec![listener.to_owned()]);
    }
    let mut shared: Vec<String> = Vec::new();
    for name in route {
        let Some(common) = common_name(listener, name) else {
            continue;
        };
        if !shared.iter().any(|n| n == common) {
            shared.push(common.to_owned());
        }
    }
    (!shared.is_empty()).then_some(shared)
}

/// The names served through several listeners: every host when any of them serves every
/// host, else all their names once each, sorted.
pub(super) fn union(per_listener: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for names in per_listener {
        if names.is_empty() {
            return Vec::new();
        }
        all.extend(names);
    }
    all.sort();
    all.dedup();
    all
}

/// The narrower of two names when one covers the other.
fn common_name<'a>(listener: &'a str, route: &'a str) -> Option<&'a str> {
    match (listener.strip_prefix('*'), route.strip_prefix('*')) {
        _ if listener.eq_ignore_ascii_case(route) => Some(route),
        (Some(_), None) => host_matches(listener, route).then_some(route),
        (None, Some(_)) => host_matches(route, listener).then_some(listener),
        (Some(l), Some(r)) => {
            if l.len() > r.len() && host_matches(route, &l[1..]) {
                Some(listener)
            } else if r.len() > l.len() && host_matches(listener, &r[1..]) {
                Some(route)
            } else {
                None
            }
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_listener_without_name_keeps_the_route_names_and_the_other_way_round() {
        assert_eq!(
            intersect(None, &names(&["a.example.com"])),
            Some(names(&["a.example.com"]))
        );
        assert_eq!(intersect(None, &[]), Some(vec![]));
        assert_eq!(
            intersect(Some("*.example.com"), &[]),
            Some(names(&["*.example.com"]))
        );
    }

    #[test]
    fn names_intersect_as_the_gateway_api_describes() {
        let route = names(&["test.example.com", "test.example.net", "*.example.com"]);
        assert_eq!(
            intersect(Some("*.example.com"), &route),
            Some(names(&["test.example.com", "*.example.com"]))
        );
        assert_eq!(
            intersect(Some("test.example.com"), &route),
            Some(names(&["test.example.com"]))
        );
        assert_eq!(
            intersect(Some("foo.test.example.com"), &names(&["*.example.com"])),
            Some(names(&["foo.test.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.test.example.com"), &names(&["*.example.com"])),
            Some(names(&["*.test.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.com"), &names(&["*.example.com"])),
            Some(names(&["*.example.com"]))
        );
        assert_eq!(
            intersect(Some("example.com"), &names(&["*.example.com"])),
            None
        );
        assert_eq!(
            intersect(Some("*.example.com"), &names(&["example.net"])),
            None
        );
    }

    #[test]
    fn the_union_serves_every_host_when_any_listener_does() {
        assert_eq!(
            union([names(&["b"]), names(&["c", "a"])]),
            names(&["a", "b", "c"])
        );
        assert_eq!(union([names(&["a"]), vec![]]), Vec::<String>::new());
    }
}
