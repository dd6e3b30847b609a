//! The default IPv4 gateway, from the kernel's routing table: where
//! NAT-PMP (RFC 6886 §3) and PCP (RFC 6887 §8) requests go.
//!
//! Linux only (`/proc/net/route`); elsewhere there is no default gateway
//! and only UPnP IGD, found by multicast, maps ports. Read here rather than
//! through a crate (`netdev`, `default-net`): those read every interface
//! through netlink with a dozen dependencies, for one line of one file.

use std::net::Ipv4Addr;

/// The kernel's IPv4 routing table.
const ROUTE_TABLE: &str = "/proc/net/route";

/// Largest routing table read, in bytes (about 130 bytes a route).
const MAX_ROUTE_TABLE_BYTES: u64 = 256 << 10;

/// `RTF_UP` (`linux/route.h`): the route is usable.
const RTF_UP: u32 = 0x1;
/// `RTF_GATEWAY`: the route goes through a gateway.
const RTF_GATEWAY: u32 = 0x2;

/// The gateway of the default IPv4 route with the lowest metric, if any.
/// `None` off Linux, when the table cannot be read, or has no default
/// route through a gateway.
pub(crate) fn default_gateway() -> Option<Ipv4Addr> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(ROUTE_TABLE)
        .ok()?
        .take(MAX_ROUTE_TABLE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    parse_default_gateway(&text)
}

/// The default route's gateway in the text of `/proc/net/route`: a header
/// line, then one route a line, whitespace-separated `Iface Destination
/// Gateway Flags RefCnt Use Metric Mask …`, addresses as the 8 hex digits
/// of the in-memory (network order) `u32` printed in host order. The
/// default route has destination and mask 0 and flags `RTF_UP |
/// RTF_GATEWAY`; with several, the lowest metric wins. Lines that do not
/// parse are skipped.
pub(crate) fn parse_default_gateway(text: &str) -> Option<Ipv4Addr> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, gateway, flags, metric, mask) = (
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                hex(f.get(3)?)?,
                f.get(6)?,
                hex(f.get(7)?)?,
            );
            let metric: u32 = metric.parse().ok()?;
            let up = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
            (dest == 0 && mask == 0 && up && gateway != 0)
                .then(|| (metric, Ipv4Addr::from(gateway.to_ne_bytes())))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gateway)| gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    #[test]
    fn the_default_route_with_the_lowest_metric() {
        // As a Linux (little-endian) host prints 10.77.9.1 and 192.168.1.254.
        let (a, b) = if cfg!(target_endian = "little") {
            ("01094D0A", "FE01A8C0")
        } else {
            ("0A4D0901", "C0A801FE")
        };
        let table = format!(
            "{HEADER}\
             wlan0\t00000000\t{b}\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
             eth0\t00000000\t{a}\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             eth0\t00094D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        );
        assert_eq!(
            parse_default_gateway(&table),
            Some(Ipv4Addr::new(10, 77, 9, 1))
        );
    }

    #[test]
    fn no_default_route_no_gateway() {
        assert_eq!(parse_default_gateway(""), None);
        assert_eq!(parse_default_gateway(HEADER), None);
        // A link route (no RTF_GATEWAY), a down default route, a subnet route.
        let table = format!(
            "{HEADER}\
             eth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n\
             eth1\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n\
             eth2\t0000A8C0\t0101A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        );
        assert_eq!(parse_default_gateway(&table), None);
    }

    #[test]
    fn garbage_is_skipped() {
        let table = format!("{HEADER}eth0 zz\n\u{0}\nx 00000000 0101A8C0 0003 0 0 -1 00000000\n");
        assert_eq!(parse_default_gateway(&table), None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panicking(text in ".{0,400}") {
            let _ = parse_default_gateway(&text);
        }
    }
}
