//! `Bans`: the peers the swarm never connects to, or accepts, again.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// Peers banned for sending data that failed its piece hash, by IP address
/// (as libtorrent bans them): a peer reconnecting from another port, or
/// listening on several, stays banned. Our own listening address, found
/// when a tracker lists us, is refused by exact address only, so other
/// clients on the same host stay reachable. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) count as their IPv4 address.
#[derive(Debug, Default)]
pub(crate) struct Bans {
    ips: HashSet<IpAddr>,
    ourselves: HashSet<SocketAddr>,
}

impl Bans {
    /// Bans every port of `addr`'s IP address.
    pub(crate) fn ban(&mut self, addr: SocketAddr) {
        self.ips.insert(addr.ip().to_canonical());
    }

    /// Refuses `addr` exactly: it is us.
    pub(crate) fn ourselves(&mut self, addr: SocketAddr) {
        self.ourselves.insert(addr);
    }

    /// Whether `addr` is banned or is us.
    pub(crate) fn contains(&self, addr: &SocketAddr) -> bool {
        self.ips.contains(&addr.ip().to_canonical()) || self.ourselves.contains(addr)
    }

    /// Whether `addr` shares its IP address with a peer banned for bad data.
    pub(crate) fn covers_ip(&self, addr: &SocketAddr) -> bool {
        self.ips.contains(&addr.ip().to_canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_banned_peer_stays_banned_on_another_port_and_as_mapped_ipv6() {
        let mut b = Bans::default();
        b.ban(a("10.0.0.7:6881"));
        assert!(b.contains(&a("10.0.0.7:6881")));
        assert!(
            b.contains(&a("10.0.0.7:51234")),
            "reconnecting from another port"
        );
        assert!(
            b.contains(&a("[::ffff:10.0.0.7]:6881")),
            "as IPv4-mapped IPv6"
        );
        assert!(!b.contains(&a("10.0.0.8:6881")));
        b.ban(a("[2001:db8::1]:1"));
        assert!(b.contains(&a("[2001:db8::1]:2")));
    }

    #[test]
    fn ourselves_is_refused_by_exact_address_only() {
        let mut b = Bans::default();
        b.ourselves(a("127.0.0.1:6881"));
        assert!(b.contains(&a("127.0.0.1:6881")));
        assert!(
            !b.contains(&a("127.0.0.1:6882")),
            "another client on this host"
        );
        assert!(!b.covers_ip(&a("127.0.0.1:6881")));
    }
}
