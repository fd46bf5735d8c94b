//! Who is calling: the client address, user agent and request id recorded with every event.

use std::net::IpAddr;
use std::sync::Arc;

use authlog_application::ports::Metadata;
use poem::http::{header, HeaderName};
use poem::{FromRequest, Request, RequestBody};

use crate::state::AppState;

/// The header that carries the request id, in and out ([`crate::frame`] sets it on the request
/// when the client sent none). A `HeaderName` made at compile time: looked up by a string, a
/// name is parsed and checked again on every request.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Longest user agent recorded; the rest is cut (a header can be kilobytes of junk).
const MAX_USER_AGENT: usize = 256;

/// Where the request came from, for the events it causes.
pub struct Origin(pub Metadata);

impl<'a> FromRequest<'a> for Origin {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let user_agent = req
            .header(header::USER_AGENT)
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        let trusted = req
            .data::<Arc<AppState>>()
            .map_or(&[][..], |state| state.trusted_proxies.as_slice());
        let forwarded = req.header(FORWARDED_FOR);
        Ok(Self(Metadata {
            client_addr: peer.map(|peer| client_address(peer, forwarded, trusted).to_string()),
            user_agent,
            request_id: req.header(REQUEST_ID).map(str::to_owned),
        }))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy (entries further
/// left were written by whoever sent the request and prove nothing).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    let mut nearest = peer;
    for hop in chain.rsplit(',').map(str::trim) {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        nearest = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("1.2.3.4"), &[ip("10.0.0.1")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let chain = "6.6.6.6, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client_address(ip("10.0.0.1"), Some(chain), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_garbled_forwarded_header_stops_at_the_last_good_hop() {
        let trusted = [ip("10.0.0.1")];
        assert_eq!(
            client_address(ip("10.0.0.1"), Some("nonsense"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), None, &trusted),
            ip("10.0.0.1")
        );
    }
}
