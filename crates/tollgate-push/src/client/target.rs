//! The controller's URL, checked once: `https://HOST[:PORT]`, the host also being the name
//! its certificate must carry.

use http::Uri;
use rustls_pki_types::ServerName;

use crate::PushError;

/// Where the controller is.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The host to connect to, without brackets around an IPv6 address.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The name the server's certificate is checked against.
    pub(crate) server_name: ServerName<'static>,
    /// `https://host:port`, the start of every request URI.
    pub(crate) base: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, PushError> {
        let invalid = |reason| PushError::Url {
            url: url.to_string(),
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a URL such as https://controller:9443"))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid("the scheme must be https"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("give only https://HOST:PORT, without a path"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| invalid("the host is not a valid DNS name or IP address"))?;
        Ok(Self {
            host,
            port,
            server_name,
            base: format!("https://{authority}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_refuses_the_rest() {
        let target = Target::parse("https://tollgate-controller.tollgate:9443").unwrap();
        assert_eq!(
            (target.host.as_str(), target.port),
            ("tollgate-controller.tollgate", 9443)
        );
        assert_eq!(target.base, "https://tollgate-controller.tollgate:9443");
        let target = Target::parse("https://[::1]/").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 443));
        for bad in [
            "http://controller:9443",
            "https://controller:9443/v1",
            "controller:9443",
            "",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
