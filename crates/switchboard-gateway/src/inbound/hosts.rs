//! Which `Host` and `Origin` a request may carry: the DNS-rebinding guard and the browser
//! origin allow-list, one check for every route (MCP, REST, but the probes `/healthz` and `/readyz`).
//!
//! - `Host`: `[gateway] allowed_hosts`; without it, loopback names only (`localhost`,
//!   `127.0.0.1`, `::1`, any port) while the gateway listens on loopback — a web page that
//!   points its own name at 127.0.0.1 cannot reach the gateway — and any host otherwise
//!   (then `[gateway.auth]` is what protects it).
//! - `Origin`: absent passes (programs, not browsers); present, it must match
//!   `[gateway] allowed_origins`, else 403 (MCP's transport rules). Without it, loopback
//!   origins (`http(s)://localhost`, `127.0.0.1`, `[::1]`, any port) while the gateway
//!   listens on loopback, and none otherwise.
//!   Browsers at an allowed origin also need CORS: [`cors`] answers their preflight
//!   requests (before authentication: a preflight carries no credential) and lets them read
//!   the answers and the `Mcp-Session-Id` and `WWW-Authenticate` headers.

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{Authority, Uri};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use switchboard::config::{HostPattern, OriginPattern};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// What a refused request is told (no header values: they are the caller's, and may be
/// long or crafted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostRefusal {
    #[error("the Host header is not one this gateway answers to ([gateway] allowed_hosts)")]
    Host,
    #[error("requests from this browser origin are not allowed ([gateway] allowed_origins)")]
    Origin,
}

/// The two allow-lists.
#[derive(Debug, Clone)]
pub struct HostCheck {
    /// `None`: any host.
    hosts: Option<Vec<HostPattern>>,
    origins: Vec<OriginPattern>,
}

impl HostCheck {
    /// `allowed_hosts` as configured, else the default for `local` (see the module docs).
    pub fn new(
        allowed_hosts: Option<&[HostPattern]>,
        allowed_origins: &[OriginPattern],
        local: SocketAddr,
    ) -> HostCheck {
        let loopback = || {
            ["localhost", "127.0.0.1", "::1"]
                .map(|host| HostPattern {
                    host: host.to_string(),
                    port: None,
                })
                .to_vec()
        };
        let hosts = match allowed_hosts {
            Some(hosts) => Some(hosts.to_vec()),
            None if local.ip().is_loopback() => Some(loopback()),
            None => None,
        };
        // A page served from this machine's own loopback names may call a loopback gateway
        // (a rebinding page's origin is its own name, never these).
        let origins = match allowed_origins {
            [] if local.ip().is_loopback() => ["http", "https"]
                .iter()
                .flat_map(|scheme| {
                    ["localhost", "127.0.0.1", "::1"].map(|host| OriginPattern::Tuple {
                        scheme: scheme.to_string(),
                        host: host.to_string(),
                        port: None,
                    })
                })
                .collect(),
            origins => origins.to_vec(),
        };
        HostCheck { hosts, origins }
    }

    /// Checks a request's `Host` (or, in HTTP/2, its URI's authority) and `Origin`.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HostRefusal> {
        if let Some(hosts) = &self.hosts {
            let authority = match headers.get(http::header::HOST) {
                Some(value) => value
                    .to_str()
                    .ok()
                    .and_then(|v| Authority::try_from(v).ok()),
                None => uri.authority().cloned(),
            };
            let allowed = authority.is_some_and(|a| {
                let host = bare_host(a.host());
                hosts.iter().any(|p| p.matches(&host, a.port_u16()))
            });
            if !allowed {
                return Err(HostRefusal::Host);
            }
        }
        let origins = headers.get_all(http::header::ORIGIN);
        for origin in origins {
            let allowed = origin
                .to_str()
                .ok()
                .is_some_and(|o| origin_allowed(&self.origins, o));
            if !allowed {
                return Err(HostRefusal::Origin);
            }
        }
        Ok(())
    }
}

/// CORS for the browser origins of `allowed_origins` (`None` when there are none).
pub fn cors(allowed_origins: &[OriginPattern]) -> Option<CorsLayer> {
    if allowed_origins.is_empty() {
        return None;
    }
    let origins = allowed_origins.to_vec();
    let allowed = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        origin.to_str().is_ok_and(|o| origin_allowed(&origins, o))
    });
    let exposed = ["mcp-session-id", "mcp-protocol-version", "www-authenticate"];
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            // Whatever the preflight asks for (MCP's headers include `Mcp-Param-*` names,
            // and `*` would not cover `Authorization`); the origin is what is checked.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(exposed.map(HeaderName::from_static))
            .max_age(Duration::from_secs(600)),
    )
}

/// Whether an `Origin` header's value matches one of `origins`.
fn origin_allowed(origins: &[OriginPattern], origin: &str) -> bool {
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") {
        return origins.contains(&OriginPattern::Null);
    }
    let Ok(uri) = Uri::try_from(origin) else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    let host = bare_host(authority.host());
    origins
        .iter()
        .any(|p| p.matches(&scheme, &host, authority.port_u16()))
}

/// A host lowercase, IPv6 without brackets (as the patterns hold them).
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn check(hosts: Option<&[HostPattern]>, local: &str) -> HostCheck {
        let origins = [
            OriginPattern::Tuple {
                scheme: "https".into(),
                host: "app.example.com".into(),
                port: Some(443),
            },
            OriginPattern::Null,
        ];
        HostCheck::new(hosts, &origins, local.parse().unwrap())
    }

    #[test]
    fn loopback_listeners_answer_loopback_names_only() {
        let check = check(None, "127.0.0.1:8080");
        let uri = Uri::from_static("/mcp");
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert_eq!(
                check.check(&uri, &headers(&[("host", host)])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example.com:8080",
            "localhost.evil.com",
            "127.0.0.2:8080",
        ] {
            let refused = check.check(&uri, &headers(&[("host", host)]));
            assert_eq!(refused, Err(HostRefusal::Host), "{host}");
        }
        assert_eq!(check.check(&uri, &headers(&[])), Err(HostRefusal::Host));
    }

    #[test]
    fn configured_hosts_replace_the_default_and_other_listeners_take_any() {
        let uri = Uri::from_static("/mcp");
        let hosts = [HostPattern {
            host: "mcp.example.com".into(),
            port: None,
        }];
        let configured = check(Some(&hosts), "0.0.0.0:8080");
        let ok = configured.check(&uri, &headers(&[("host", "MCP.example.com:443")]));
        assert_eq!(ok, Ok(()));
        let refused = configured.check(&uri, &headers(&[("host", "localhost")]));
        assert_eq!(refused, Err(HostRefusal::Host));
        let open = check(None, "0.0.0.0:8080");
        assert_eq!(open.check(&uri, &headers(&[("host", "anything")])), Ok(()));
    }

    #[test]
    fn origins_must_be_listed_when_present() {
        let check = check(None, "0.0.0.0:8080");
        let uri = Uri::from_static("/mcp");
        for origin in [
            "https://app.example.com",
            "https://app.example.com:443",
            "null",
        ] {
            let ok = check.check(&uri, &headers(&[("origin", origin)]));
            assert_eq!(ok, Ok(()), "{origin}");
        }
        for origin in [
            "https://evil.example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "not an origin",
        ] {
            let refused = check.check(&uri, &headers(&[("origin", origin)]));
            assert_eq!(refused, Err(HostRefusal::Origin), "{origin}");
        }
        // Two Origin headers: each must pass.
        let two = headers(&[
            ("origin", "https://app.example.com"),
            ("origin", "https://evil.example.com"),
        ]);
        assert_eq!(check.check(&uri, &two), Err(HostRefusal::Origin));
        assert_eq!(check.check(&uri, &headers(&[])), Ok(()));
    }

    #[test]
    fn a_loopback_gateway_without_allowed_origins_takes_loopback_pages_only() {
        let uri = Uri::from_static("/mcp");
        let local = HostCheck::new(None, &[], "127.0.0.1:8080".parse().unwrap());
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]",
        ] {
            let ok = local.check(
                &uri,
                &headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]),
            );
            assert_eq!(ok, Ok(()), "{origin}");
        }
        let rebound = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.test")]);
        assert_eq!(local.check(&uri, &rebound), Err(HostRefusal::Origin));
        // Listening beyond loopback, an unlisted origin is refused, loopback ones too.
        let open = HostCheck::new(None, &[], "0.0.0.0:8080".parse().unwrap());
        let page = headers(&[("origin", "http://localhost:3000")]);
        assert_eq!(open.check(&uri, &page), Err(HostRefusal::Origin));
    }
}
