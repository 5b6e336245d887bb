//! The client's address: the socket's peer, or behind trusted proxies (the configured reverse
//! proxies and load balancers) the client their `X-Forwarded-For` vouches for.

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use changegate_app::sessions::{self as acct, IpNet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Parses the trusted proxies (the reverse proxies, load balancers, whose `X-Forwarded-For`
/// header names the client: CIDRs or single addresses); the error names the entry that is
/// neither a CIDR nor an address.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| acct::parse_cidr(e).ok_or_else(|| e.clone()))
        .collect()
}

/// The client's address. The socket's peer, unless that is a trusted proxy: then the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy (the left part of the header is the
/// client's to write, so it is believed only as far as trusted proxies vouch for it). Unspecified
/// (which no allow-list admits) when there is no connect info or a trusted proxy sent a header
/// that is not a list of addresses. `trusted`: the configured trusted proxies.
pub fn peer_ip(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    let Some(socket) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    client_ip(socket.0.ip(), &parts.headers, trusted)
}

fn client_ip(socket: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let socket = socket.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&socket) {
        return socket;
    }
    let mut hops = vec![];
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        for hop in value.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip.to_canonical()),
                Err(_) => return IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            }
        }
    }
    // Every hop trusted: the request came from inside; the first hop is its origin.
    let first = hops.first().copied().unwrap_or(socket);
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_as_far_as_they_vouch() {
        let lb = parse_trusted_proxies(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        // No proxy trusted: the header is ignored (a client cannot name its own address).
        assert_eq!(
            client_ip(ip("198.51.100.9"), &forwarded(&["203.0.113.7"]), &[]),
            ip("198.51.100.9")
        );
        // From a client that is not a trusted proxy: ignored too.
        assert_eq!(
            client_ip(ip("198.51.100.9"), &forwarded(&["203.0.113.7"]), &lb),
            ip("198.51.100.9")
        );
        // Through the load balancer: the client it names.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["203.0.113.7"]), &lb),
            ip("203.0.113.7")
        );
        // A client that wrote its own header: the right-most untrusted hop is the real one.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &forwarded(&["203.0.113.7, 198.51.100.9"]),
                &lb
            ),
            ip("198.51.100.9")
        );
        // Two trusted proxies in a row, and the header split over two lines.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &forwarded(&["203.0.113.7", "198.51.100.9, 192.0.2.1"]),
                &lb
            ),
            ip("198.51.100.9")
        );
        // IPv4-mapped IPv6 sockets count as their IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:10.1.2.3"), &forwarded(&["203.0.113.7"]), &lb),
            ip("203.0.113.7")
        );
        // A trusted proxy without the header: the proxy itself is the client.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &lb),
            ip("10.1.2.3")
        );
        // A malformed header from a trusted proxy: unspecified, which no allow-list admits.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["203.0.113.7, unknown"]), &lb),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
        // A bad entry is named.
        assert_eq!(
            parse_trusted_proxies(&["10.0.0.0/8".into(), "lb.internal".into()]),
            Err("lb.internal".into())
        );
    }
}
