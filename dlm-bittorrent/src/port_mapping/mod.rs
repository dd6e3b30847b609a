//! Port mapping on the NAT gateway, so peers outside it can connect to us:
//! UPnP IGD (UPnP Forum IGD:1/IGD:2, the WANIPConnection service's
//! `AddPortMapping`, `DeletePortMapping` and `GetExternalIPAddress`),
//! NAT-PMP (RFC 6886) and PCP (RFC 6887), as libtorrent, qBittorrent and
//! rqbit do, on by default ([`TorrentConfig::port_mapping`]).
//!
//! # What is mapped
//! A swarm that listens maps its TCP port and, with uTP on, the UDP port of
//! the same number (BEP 29); a torrent using the DHT maps the DHT node's UDP
//! port, once per process however many torrents share the node. Only IPv4
//! sockets bound to all interfaces or to one non-loopback address are
//! mapped (a loopback listener cannot be reached from the gateway anyway).
//! The external port asked for is the internal one; a gateway that has it
//! taken gives another, which is what the log line and
//! [`Seeder::mapped_ports`](crate::seed::Seeder::mapped_ports) report.
//!
//! # Never in the way
//! Everything runs on a task of its own beside the swarm: no download waits
//! for a gateway or fails for want of one. Each network wait is bounded:
//! discovery by 3 s (an SSDP search and a NAT-PMP probe at once), one mapping request by
//! [`REQUEST_TIMEOUT`], a removal by [`REMOVE_TIMEOUT`]. No gateway, or a
//! refusal, is one log line (info the first time in a process, debug after),
//! and the mapping is tried again after [`RETRY_AFTER`].
//!
//! # Lifetime
//! UPnP mappings are leased for [`UPNP_LEASE`] (1 h), NAT-PMP/PCP ones for
//! [`NATPMP_LIFETIME`] (2 h), and renewed at half their lifetime granted. A
//! mapping is removed from the gateway when the swarm stops (at most
//! [`REMOVE_TIMEOUT`]), or, for a process-wide one, when the last swarm
//! using it stops; a swarm that is dropped without stopping asks for the
//! removal on a task it does not wait for. A mapping whose request was
//! in flight when the swarm stopped is left to expire with its lease.

mod gateway;
mod route;

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dlm_core::CancellationToken;
use tokio::sync::watch;

pub use gateway::{NATPMP_LIFETIME, UPNP_LEASE};

#[cfg(doc)]
use crate::TorrentConfig;
use crate::TorrentError;

/// Longest wait for one mapping or renewal request, retransmissions
/// included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a mapping's removal when a swarm stops.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// After no gateway answered, or one refused, the mapping is tried again
/// this much later.
pub const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// A transport protocol whose port is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP: the listening port for peers.
    Tcp,
    /// UDP: uTP (BEP 29) on the listening port's number, or the DHT (BEP 5).
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// The protocol the gateway granted a mapping through.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingProtocol {
    /// UPnP IGD, WANIPConnection:1 or :2 `AddPortMapping`/`AddAnyPortMapping`.
    UpnpIgd,
    /// NAT-PMP (RFC 6886).
    NatPmp,
    /// PCP `MAP` (RFC 6887 §11).
    Pcp,
}

impl fmt::Display for MappingProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UpnpIgd => "UPnP IGD",
            Self::NatPmp => "NAT-PMP",
            Self::Pcp => "PCP",
        })
    }
}

/// A port the gateway maps to us. Displays as
/// `TCP 10.77.0.2:6881 -> 198.51.100.1:6881 (UPnP IGD)`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappedPort {
    /// TCP or UDP.
    pub transport: Transport,
    /// Our address and port, as the gateway sees us.
    pub internal: SocketAddrV4,
    /// Where peers outside reach it: the gateway's external address
    /// (0.0.0.0 when the gateway did not tell it) and the external port.
    pub external: SocketAddrV4,
    /// How it was mapped.
    pub protocol: MappingProtocol,
    /// The lease granted (zero: permanent, until removed); renewed at half.
    pub lifetime: Duration,
}

impl fmt::Display for MappedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} ({})",
            self.transport, self.internal, self.external, self.protocol
        )
    }
}

/// One mapping kept on the gateway by its task, shared by every
/// [`PortMapping`] handle for the same transport and port.
#[derive(Debug)]
struct Lease {
    transport: Transport,
    port: u16,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    mapped: watch::Receiver<Option<MappedPort>>,
}

impl Drop for Lease {
    /// The last handle went without [`PortMapping::release`]: the task
    /// removes the mapping on its own, if the runtime lets it.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The process's mappings, by transport and port (weak: a mapping lives as
/// long as a handle to it).
static LEASES: Mutex<Vec<Weak<Lease>>> = Mutex::new(Vec::new());

/// A handle to a port mapping kept on the gateway in the background; see
/// the [module docs](self).
#[derive(Debug)]
pub(crate) struct PortMapping {
    lease: Arc<Lease>,
}

impl PortMapping {
    /// Keeps `bound` (a socket's local address) mapped for `transport` until
    /// the last handle for that port is released or dropped. Handles for a
    /// port already mapped share its mapping. `None`, and nothing done, for
    /// an IPv6 or loopback address or port 0. Must be called within a tokio
    /// runtime.
    pub(crate) fn start(transport: Transport, bound: SocketAddr) -> Option<Self> {
        let SocketAddr::V4(bound) = bound else {
            return None;
        };
        if bound.ip().is_loopback() || bound.port() == 0 {
            return None;
        }
        let mut leases = LEASES.lock().unwrap_or_else(PoisonError::into_inner);
        leases.retain(|w| w.strong_count() > 0);
        if let Some(lease) = leases
            .iter()
            .filter_map(Weak::upgrade)
            .find(|l| l.transport == transport && l.port == bound.port())
        {
            return Some(Self { lease });
        }
        let (tx, mapped) = watch::channel(None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep(transport, bound, tx, stop.clone()));
        let lease = Arc::new(Lease {
            transport,
            port: bound.port(),
            stop,
            task: Mutex::new(Some(task)),
            mapped,
        });
        leases.push(Arc::downgrade(&lease));
        Some(Self { lease })
    }

    /// The mapping as it stands (`None` until the gateway granted it, and
    /// after it was lost or removed).
    pub(crate) fn watch(&self) -> watch::Receiver<Option<MappedPort>> {
        self.lease.mapped.clone()
    }

    /// Lets go of the mapping; the last handle removes it from the gateway
    /// and waits for that, at most [`REMOVE_TIMEOUT`] (plus a little for
    /// the task to end).
    ///
    /// # Cancel safety
    /// Cancel safe: the removal goes on without the caller.
    pub(crate) async fn release(self) {
        let task = {
            let mut leases = LEASES.lock().unwrap_or_else(PoisonError::into_inner);
            if Arc::strong_count(&self.lease) > 1 {
                // Dropped under the lock, so two releases never both see
                // the other's handle and both skip the removal.
                drop(self);
                return;
            }
            leases.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), &*self.lease));
            self.lease.stop.cancel();
            self.lease
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        };
        if let Some(task) = task {
            let _ = tokio::time::timeout(REMOVE_TIMEOUT + Duration::from_millis(500), task).await;
        }
    }
}

/// Waits `d`; `true` when `stop` came first.
async fn stopped_within(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// Maps `bound` on the gateway once one answers, renews it, maps it again
/// when a renewal fails, and removes it when `stop` is cancelled.
async fn keep(
    transport: Transport,
    bound: SocketAddrV4,
    tx: watch::Sender<Option<MappedPort>>,
    stop: CancellationToken,
) {
    loop {
        let made = tokio::select! {
            () = stop.cancelled() => return,
            m = map_once(transport, bound) => m,
        };
        let mut active = match made {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%transport, port = bound.port(), error = %e, "port not mapped");
                if stopped_within(RETRY_AFTER, &stop).await {
                    return;
                }
                continue;
            }
        };
        let mut mapped = active.mapped();
        tracing::info!("port mapped: {mapped}");
        tx.send_replace(Some(mapped.clone()));
        loop {
            if stopped_within(active.renew_in(), &stop).await {
                match tokio::time::timeout(REMOVE_TIMEOUT, active.remove()).await {
                    Ok(Ok(())) => tracing::debug!("port mapping removed: {mapped}"),
                    Ok(Err(e)) => tracing::debug!(error = %e, "port mapping not removed: {mapped}"),
                    Err(_) => tracing::debug!("port mapping removal timed out: {mapped}"),
                }
                tx.send_replace(None);
                return;
            }
            let renewed = tokio::select! {
                () = stop.cancelled() => continue, // removed at the top of the loop
                r = tokio::time::timeout(REQUEST_TIMEOUT, active.renew()) => r,
            };
            match renewed {
                Ok(Ok(())) => {
                    let now = active.mapped();
                    if now.external != mapped.external {
                        tracing::info!("port mapped: {now}");
                        tx.send_replace(Some(now.clone()));
                    }
                    mapped = now;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "port mapping lost: {mapped}; mapping again");
                    break;
                }
                Err(_) => {
                    tracing::debug!("port mapping renewal timed out: {mapped}; mapping again");
                    break;
                }
            }
        }
        tx.send_replace(None);
        gateway::forget().await;
    }
}

/// One try: the gateway (found before or now), then the mapping request.
async fn map_once(
    transport: Transport,
    bound: SocketAddrV4,
) -> Result<gateway::Active, TorrentError> {
    let Some(gw) = gateway::discover().await else {
        return Err(TorrentError::PortMapping("no gateway answered".into()));
    };
    let ip = if bound.ip().is_unspecified() {
        gw.local()
    } else {
        *bound.ip()
    };
    let internal = SocketAddrV4::new(ip, bound.port());
    match tokio::time::timeout(REQUEST_TIMEOUT, gw.map(transport, internal)).await {
        Ok(Ok(active)) => Ok(active),
        Ok(Err(e)) => {
            gateway::forget().await;
            Err(e)
        }
        Err(_) => {
            gateway::forget().await;
            Err(TorrentError::PortMapping(format!(
                "{} did not answer within {} s",
                gw.describe(),
                REQUEST_TIMEOUT.as_secs()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_reads_as_documented() {
        let m = MappedPort {
            transport: Transport::Tcp,
            internal: "10.77.0.2:6881".parse().unwrap(),
            external: "198.51.100.1:6881".parse().unwrap(),
            protocol: MappingProtocol::UpnpIgd,
            lifetime: UPNP_LEASE,
        };
        assert_eq!(
            format!("port mapped: {m}"),
            "port mapped: TCP 10.77.0.2:6881 -> 198.51.100.1:6881 (UPnP IGD)"
        );
        let udp = MappedPort {
            transport: Transport::Udp,
            protocol: MappingProtocol::Pcp,
            ..m
        };
        assert_eq!(
            udp.to_string(),
            "UDP 10.77.0.2:6881 -> 198.51.100.1:6881 (PCP)"
        );
    }

    #[tokio::test]
    async fn loopback_ipv6_and_port_zero_are_never_mapped() {
        for addr in ["127.0.0.1:6881", "[::]:6881", "[::1]:6881", "0.0.0.0:0"] {
            assert!(
                PortMapping::start(Transport::Tcp, addr.parse().unwrap()).is_none(),
                "{addr}"
            );
        }
    }
}
