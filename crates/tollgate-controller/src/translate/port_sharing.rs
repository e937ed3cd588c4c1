//! Which listeners of one Gateway may share a port, the Gateway API way: listeners on one port
//! are distinct when they speak the same protocol and have different host names (no host name
//! counts as one more name). Listeners that are not distinct are all refused; none wins.

/// What decides whether a listener can share its port.
pub(super) struct PortUse<'l> {
    /// The listener's name.
    pub(super) name: &'l str,
    /// The TCP port.
    pub(super) port: u16,
    /// `HTTP` or `HTTPS`.
    pub(super) protocol: &'l str,
    /// The host name, lower-cased; `None` when unset.
    pub(super) hostname: Option<&'l str>,
}

/// Why a listener cannot be served on its port.
#[derive(Debug, PartialEq)]
pub(super) enum Conflict {
    /// Another listener on the port speaks another protocol.
    Protocol {
        /// That listener's name.
        other: String,
        /// Its protocol.
        protocol: String,
    },
    /// Another listener on the port speaks the same protocol for the same host name.
    Hostname {
        /// That listener's name.
        other: String,
    },
}

impl Conflict {
    /// The stable reason, as the Gateway API's `Conflicted` condition names it.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Conflict::Protocol { .. } => "ProtocolConflict",
            Conflict::Hostname { .. } => "HostnameConflict",
        }
    }

    /// What is wrong and how to fix it.
    pub(super) fn message(&self, listener: &PortUse<'_>) -> String {
        let port = listener.port;
        match self {
            Conflict::Protocol { other, protocol } => format!(
                "port {port} is also used by listener {other:?} with protocol {protocol}; \
                 listeners sharing a port must speak the same protocol"
            ),
            Conflict::Hostname { other } => {
                let host = listener
                    .hostname
                    .map_or_else(|| "no hostname".to_string(), |h| format!("hostname {h:?}"));
                format!(
                    "listener {other:?} also serves {} on port {port} with {host}; \
                     listeners sharing a port need different hostnames",
                    listener.protocol
                )
            }
        }
    }
}

/// For each listener, in order, why it conflicts with another one; `None` when it is distinct
/// from every other listener on its port. A protocol conflict is reported before a host name
/// conflict.
pub(super) fn conflicts(listeners: &[PortUse<'_>]) -> Vec<Option<Conflict>> {
    listeners
        .iter()
        .enumerate()
        .map(|(index, this)| {
            let others = || {
                listeners
                    .iter()
                    .enumerate()
                    .filter(move |(i, other)| *i != index && other.port == this.port)
                    .map(|(_, other)| other)
            };
            if let Some(other) = others().find(|o| o.protocol != this.protocol) {
                return Some(Conflict::Protocol {
                    other: other.name.to_string(),
                    protocol: other.protocol.to_string(),
                });
            }
            others()
                .find(|o| o.hostname == this.hostname)
                .map(|other| Conflict::Hostname {
                    other: other.name.to_string(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(
        specs: &[(&'static str, u16, &'static str, Option<&'static str>)],
    ) -> Vec<PortUse<'static>> {
        specs
            .iter()
            .map(|&(name, port, protocol, hostname)| PortUse {
                name,
                port,
                protocol,
                hostname,
            })
            .collect()
    }

    fn reasons(
        specs: &[(&'static str, u16, &'static str, Option<&'static str>)],
    ) -> Vec<Option<&'static str>> {
        conflicts(&uses(specs))
            .iter()
            .map(|c| c.as_ref().map(Conflict::reason))
            .collect()
    }

    #[test]
    fn listeners_on_different_ports_never_conflict() {
        let found = reasons(&[
            ("a", 8080, "HTTP", None),
            ("b", 8443, "HTTPS", None),
            ("c", 9000, "HTTP", None),
        ]);
        assert_eq!(found, [None, None, None]);
    }

    #[test]
    fn same_protocol_with_different_hostnames_is_distinct() {
        let found = reasons(&[
            ("default", 8443, "HTTPS", None),
            ("a", 8443, "HTTPS", Some("a.example.com")),
            ("wild", 8443, "HTTPS", Some("*.example.com")),
        ]);
        assert_eq!(found, [None, None, None]);
    }

    #[test]
    fn every_listener_on_a_port_with_two_protocols_conflicts() {
        let found = reasons(&[
            ("http", 8080, "HTTP", None),
            ("a", 8080, "HTTP", Some("a.example.com")),
            ("https", 8080, "HTTPS", Some("b.example.com")),
            ("other", 8081, "HTTP", None),
        ]);
        let protocol = Some("ProtocolConflict");
        assert_eq!(found, [protocol, protocol, protocol, None]);
    }

    #[test]
    fn the_same_hostname_twice_conflicts_but_spares_the_others() {
        let found = reasons(&[
            ("a", 8080, "HTTP", Some("a.example.com")),
            ("a-again", 8080, "HTTP", Some("a.example.com")),
            ("any", 8080, "HTTP", None),
            ("any-again", 8080, "HTTP", None),
            ("b", 8080, "HTTP", Some("b.example.com")),
        ]);
        let hostname = Some("HostnameConflict");
        assert_eq!(found, [hostname, hostname, hostname, hostname, None]);
    }

    #[test]
    fn messages_name_the_other_listener_and_the_fix() {
        let listeners = uses(&[
            ("http", 8080, "HTTP", None),
            ("https", 8080, "HTTPS", None),
            ("a", 9000, "HTTP", Some("a.example.com")),
            ("b", 9000, "HTTP", Some("a.example.com")),
        ]);
        let found = conflicts(&listeners);
        let message = |i: usize| found[i].as_ref().map(|c| c.message(&listeners[i]));
        assert_eq!(
            message(0).as_deref(),
            Some(
                "port 8080 is also used by listener \"https\" with protocol HTTPS; \
                 listeners sharing a port must speak the same protocol"
            )
        );
        assert_eq!(
            message(2).as_deref(),
            Some(
                "listener \"b\" also serves HTTP on port 9000 with hostname \"a.example.com\"; \
                 listeners sharing a port need different hostnames"
            )
        );
    }
}
