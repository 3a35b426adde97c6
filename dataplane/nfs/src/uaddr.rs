//! Universal addresses of TCP endpoints (RFC 5665 sections 5.2.3.3 and 5.2.3.4), as an
//! NFSv4.0 client gives its callback address in SETCLIENTID's `cb_client4` (RFC 7530
//! section 3.3.3: `r_netid` "tcp" or "tcp6", `r_addr` the universal address), and which
//! of those the server agrees to connect to.
//!
//! - "tcp": `h1.h2.h3.h4.p1.p2`, "tcp6": an IPv6 address in its text form (RFC 4291
//!   section 2.2, no zone) followed by `.p1.p2`; the port is `p1 * 256 + p2`. Every
//!   number is decimal, 0-255, without sign, spaces or leading zeros; port 0 is no port.
//!   Anything else (other netids, trailing dots, hostnames, non-ASCII) is refused: the
//!   parser accepts exactly the RFC's form, nothing a lenient resolver would.
//! - [`dialable`]: the server connects only to unicast addresses (not unspecified,
//!   multicast or the IPv4 broadcast address), and to a loopback address only for a
//!   client that is itself connected over loopback (a remote client cannot point the
//!   server at its own local services).
//!
//! Pure functions, no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest universal address accepted (an IPv6 text form with an embedded IPv4
/// address and a port fits in 54 bytes).
pub(crate) const MAX_UADDR: usize = 64;

/// Why a callback address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UaddrError {
    #[error("network id is neither \"tcp\" nor \"tcp6\"")]
    Netid,
    #[error("not a universal address of the network id")]
    Syntax,
    #[error("port 0")]
    Port,
    #[error("the server does not connect to this address")]
    NotDialable,
}

/// One decimal number 0-255 of a universal address (no leading zeros).
fn octet(s: &str) -> Result<u8, UaddrError> {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    if s.is_empty() || s.len() > 3 || !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(UaddrError::Syntax);
    }
    s.parse::<u8>().map_err(|_| UaddrError::Syntax)
}

/// The IPv4 address `h1.h2.h3.h4`.
fn ipv4(s: &str) -> Result<Ipv4Addr, UaddrError> {
    let parts: Vec<&str> = s.split('.').collect();
    let [a, b, c, d] = parts[..] else {
        return Err(UaddrError::Syntax);
    };
    Ok(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

/// The IPv6 address in text form (hexadecimal groups, `::`, an embedded IPv4 address).
fn ipv6(s: &str) -> Result<Ipv6Addr, UaddrError> {
    let allowed = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    if !s.bytes().all(allowed) || !s.contains(':') {
        return Err(UaddrError::Syntax);
    }
    s.parse::<Ipv6Addr>().map_err(|_| UaddrError::Syntax)
}

/// The socket address of a universal address `uaddr` of network id `netid`.
pub(crate) fn parse(netid: &[u8], uaddr: &[u8]) -> Result<SocketAddr, UaddrError> {
    let v6 = match netid {
        b"tcp" => false,
        b"tcp6" => true,
        _ => return Err(UaddrError::Netid),
    };
    if uaddr.len() > MAX_UADDR {
        return Err(UaddrError::Syntax);
    }
    let s = std::str::from_utf8(uaddr).map_err(|_| UaddrError::Syntax)?;
    let mut tail = s.rsplitn(3, '.');
    let (p2, p1, host) = match (tail.next(), tail.next(), tail.next()) {
        (Some(p2), Some(p1), Some(host)) => (p2, p1, host),
        _ => return Err(UaddrError::Syntax),
    };
    let port = u16::from(octet(p1)?) << 8 | u16::from(octet(p2)?);
    let ip = if v6 {
        IpAddr::V6(ipv6(host)?)
    } else {
        IpAddr::V4(ipv4(host)?)
    };
    if port == 0 {
        return Err(UaddrError::Port);
    }
    Ok(SocketAddr::new(ip, port))
}

/// Whether the server may connect to `target` for a client connected from `peer` (see
/// the module header).
pub(crate) fn dialable(target: &SocketAddr, peer: IpAddr) -> Result<(), UaddrError> {
    let ip = target.ip().to_canonical();
    let refused = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if refused || (ip.is_loopback() && !peer.to_canonical().is_loopback()) {
        return Err(UaddrError::NotDialable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(netid: &str, s: &str) -> SocketAddr {
        parse(netid.as_bytes(), s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(netid: &str, s: &str) -> UaddrError {
        match parse(netid.as_bytes(), s.as_bytes()) {
            Ok(a) => panic!("{s:?} parsed as {a}"),
            Err(e) => e,
        }
    }

    #[test]
    fn good_addresses() {
        assert_eq!(
            ok("tcp", "127.0.0.1.4.1"),
            "127.0.0.1:1025".parse().unwrap()
        );
        assert_eq!(ok("tcp", "10.1.2.3.0.1"), "10.1.2.3:1".parse().unwrap());
        assert_eq!(
            ok("tcp", "255.254.0.9.255.255"),
            "255.254.0.9:65535".parse().unwrap()
        );
        assert_eq!(ok("tcp6", "::1.3.232"), "[::1]:1000".parse().unwrap());
        assert_eq!(
            ok("tcp6", "fe80::1:abcd.0.80"),
            "[fe80::1:abcd]:80".parse().unwrap()
        );
        assert_eq!(
            ok("tcp6", "2001:db8:0:0:0:0:0:7.8.1"),
            "[2001:db8::7]:2049".parse().unwrap()
        );
        assert_eq!(
            ok("tcp6", "::ffff:192.0.2.1.8.1"),
            "[::ffff:192.0.2.1]:2049".parse().unwrap()
        );
    }

    #[test]
    fn bad_addresses() {
        for s in [
            "",
            ".",
            "127.0.0.1",
            "127.0.0.1.4",
            "127.0.0.1.4.1.",
            ".127.0.0.1.4.1",
            "127.0.0.1..4.1",
            "127.0.0.1.4.256",
            "127.0.0.1.256.1",
            "127.0.0.256.4.1",
            "127.0.1.4.1",
            "127.0.0.0.1.4.1",
            "127.0.0.01.4.1",
            "127.0.0.1.04.1",
            "127.0.0.1.+4.1",
            "127.0.0.1.-4.1",
            "127.0.0.1. 4.1",
            " 127.0.0.1.4.1",
            "127.0.0.1.4.1\n",
            "127.0.0.1.4.1\0",
            "0x7f.0.0.1.4.1",
            "localhost.4.1",
            "example.com.4.1",
            "127.0.0.1:2049",
            "::1.4.1",
            "1.2.3.4.5.6.7",
        ] {
            assert_eq!(err("tcp", s), UaddrError::Syntax, "{s:?}");
        }
        for s in [
            "::1",
            "::1.4",
            "[::1].4.1",
            "::1%eth0.4.1",
            "fe80::1%1.4.1",
            ":::1.4.1",
            "1::2::3.4.1",
            "12345::1.4.1",
            "127.0.0.1.4.1",
            "::1.4.256",
            "::1.04.1",
            "g::1.4.1",
            "::1 .4.1",
        ] {
            assert_eq!(err("tcp6", s), UaddrError::Syntax, "{s:?}");
        }
        assert_eq!(err("tcp", "127.0.0.1.0.0"), UaddrError::Port);
        assert_eq!(err("tcp6", "::1.0.0"), UaddrError::Port);
    }

    #[test]
    fn hostile_strings() {
        assert_eq!(err("udp", "127.0.0.1.4.1"), UaddrError::Netid);
        assert_eq!(err("TCP", "127.0.0.1.4.1"), UaddrError::Netid);
        assert_eq!(err("tcp\0", "127.0.0.1.4.1"), UaddrError::Netid);
        assert_eq!(err("rdma", "127.0.0.1.4.1"), UaddrError::Netid);
        assert_eq!(err("", ""), UaddrError::Netid);
        let long = format!("{}1.2.3.4.4.1", "0".repeat(MAX_UADDR));
        assert_eq!(err("tcp", &long), UaddrError::Syntax);
        let many = ".".repeat(MAX_UADDR);
        assert_eq!(err("tcp", &many), UaddrError::Syntax);
        assert_eq!(err("tcp6", &many), UaddrError::Syntax);
        assert_eq!(err("tcp", "١٢٧.0.0.1.4.1"), UaddrError::Syntax);
        assert_eq!(
            parse(b"tcp", b"127.0.0.1.4.\xff"),
            Err(UaddrError::Syntax),
            "not UTF-8"
        );
        assert_eq!(
            err("tcp", "99999999999999999999.0.0.1.4.1"),
            UaddrError::Syntax
        );
        assert_eq!(
            err("tcp", "127.0.0.1.4.99999999999999999999"),
            UaddrError::Syntax
        );
    }

    #[test]
    fn only_unicast_and_loopback_for_local_clients() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped_local: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(dialable(&a("192.0.2.7:900"), remote), Ok(()));
        assert_eq!(dialable(&a("198.51.100.1:900"), remote), Ok(()));
        assert_eq!(dialable(&a("127.0.0.1:900"), local), Ok(()));
        assert_eq!(dialable(&a("127.0.0.1:900"), mapped_local), Ok(()));
        assert_eq!(dialable(&a("[::1]:900"), local), Ok(()));
        for bad in [
            "127.0.0.1:900",
            "127.1.2.3:900",
            "[::1]:900",
            "[::ffff:127.0.0.1]:900",
            "0.0.0.0:900",
            "[::]:900",
            "224.0.0.1:900",
            "255.255.255.255:900",
            "[ff02::1]:900",
        ] {
            assert_eq!(
                dialable(&a(bad), remote),
                Err(UaddrError::NotDialable),
                "{bad}"
            );
        }
        assert_eq!(
            dialable(&a("0.0.0.0:900"), local),
            Err(UaddrError::NotDialable)
        );
    }
}
