//! Finding the gateway that maps ports, and talking to it: UPnP IGD
//! (WANIPConnection:1/2 `AddPortMapping`, `DeletePortMapping`,
//! `GetExternalIPAddress`, through `igd-next`) or NAT-PMP/PCP (RFC 6886,
//! RFC 6887, through `crab_nat`).
//!
//! # Discovery
//! Both are looked for at once, each bounded by [`DISCOVERY_TIMEOUT`]: an
//! SSDP `M-SEARCH` for an InternetGatewayDevice on 239.255.255.250:1900,
//! and a NAT-PMP external-address request (RFC 6886 §3.2) to the default
//! gateway of the routing table ([`super::route`]). A UPnP IGD that answers
//! is used; else a gateway that answers NAT-PMP, or PCP's `UNSUPP_VERSION`
//! (a PCP-only server, RFC 6887 §9), is asked for mappings with PCP first
//! and NAT-PMP as the fallback (as RFC 6886 §1.1 recommends). One gateway
//! serves every mapping of the process: what discovery found is kept until
//! a request to it fails; that nothing answered is kept for
//! [`super::RETRY_AFTER`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crab_nat::{InternetProtocol, PortMappingOptions, PortMappingType, TimeoutConfig};
use igd_next::aio::Gateway as Igd;
use igd_next::aio::tokio::Tokio;
use igd_next::{AddAnyPortError, AddPortError, PortMappingProtocol};

use super::{MappedPort, MappingProtocol, Transport};
use crate::TorrentError;

/// Longest wait for a gateway to answer discovery (the SSDP search and the
/// NAT-PMP probe run at once).
pub(crate) const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The lease asked of a UPnP IGD for each mapping (the IGD may shorten it;
/// one that grants only permanent leases gets 0, and its mappings are
/// removed when we stop).
pub const UPNP_LEASE: Duration = Duration::from_secs(3600);

/// The lifetime asked of a NAT-PMP/PCP gateway for each mapping: RFC 6886
/// §3.3's recommended two hours.
pub const NATPMP_LIFETIME: Duration = Duration::from_secs(7200);

/// How NAT-PMP/PCP requests are retransmitted (RFC 6886 §3.1 starts at
/// 250 ms and doubles; capped here at 3 tries, about 1.75 s).
const PMP_TIMEOUTS: TimeoutConfig = TimeoutConfig {
    initial_timeout: Duration::from_millis(250),
    max_retries: 2,
    max_retry_timeout: Some(Duration::from_secs(1)),
};

/// The description UPnP mappings carry (shown in routers' tables).
const DESCRIPTION: &str = crate::CLIENT_NAME;

/// A gateway that answered discovery.
#[derive(Clone, Debug)]
pub(crate) enum Gateway {
    /// A UPnP Internet Gateway Device, and our address as it sees us.
    Igd { igd: Igd<Tokio>, local: Ipv4Addr },
    /// A NAT-PMP or PCP server (the default gateway), our address towards
    /// it, and its external address when it told us (NAT-PMP only).
    Pmp {
        addr: Ipv4Addr,
        local: Ipv4Addr,
        external: Option<Ipv4Addr>,
    },
}

/// What the last discovery found, and when.
struct Found {
    at: Instant,
    gateway: Option<Gateway>,
}

/// The process's gateway; the lock is held through a discovery, so
/// concurrent mappings wait for one search instead of each sending theirs.
static FOUND: tokio::sync::Mutex<Option<Found>> = tokio::sync::Mutex::const_new(None);

/// Whether "no gateway" was logged at info level already (once a process).
static TOLD_NONE: AtomicBool = AtomicBool::new(false);

fn error(message: impl Into<String>) -> TorrentError {
    TorrentError::PortMapping(message.into())
}

/// The gateway to map ports on: the one found before, else a new
/// discovery (at most every [`super::RETRY_AFTER`] while none answers).
///
/// # Cancel safety
/// Cancel safe: a cancelled discovery leaves nothing behind.
pub(crate) async fn discover() -> Option<Gateway> {
    let mut found = FOUND.lock().await;
    if let Some(f) = found.as_ref()
        && (f.gateway.is_some() || f.at.elapsed() < super::RETRY_AFTER)
    {
        return f.gateway.clone();
    }
    let gateway = probe().await;
    match &gateway {
        Some(g) => tracing::debug!(gateway = %g.describe(), "port mapping gateway found"),
        None if !TOLD_NONE.swap(true, Ordering::Relaxed) => tracing::info!(
            "no UPnP IGD or NAT-PMP/PCP gateway answered within {} s: ports are not mapped",
            DISCOVERY_TIMEOUT.as_secs()
        ),
        None => tracing::debug!("still no port mapping gateway"),
    }
    *found = Some(Found {
        at: Instant::now(),
        gateway: gateway.clone(),
    });
    gateway
}

/// Forgets the gateway found (a request to it failed): the next
/// [`discover`] searches again.
pub(crate) async fn forget() {
    *FOUND.lock().await = None;
}

/// Looks for a UPnP IGD and a NAT-PMP/PCP server at once.
async fn probe() -> Option<Gateway> {
    let igd = async {
        let mut options = igd_next::SearchOptions::default();
        options.timeout = Some(DISCOVERY_TIMEOUT);
        options.single_search_timeout = Some(DISCOVERY_TIMEOUT);
        options.gateway_ip_version = igd_next::GatewayIpVersion::V4;
        let found = tokio::time::timeout(
            DISCOVERY_TIMEOUT,
            igd_next::aio::tokio::search_gateway(options),
        )
        .await;
        let igd = match found {
            Ok(Ok(igd)) => igd,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no UPnP IGD");
                return None;
            }
            Err(_) => {
                tracing::debug!("no UPnP IGD answered");
                return None;
            }
        };
        let IpAddr::V4(at) = igd.addr.ip() else {
            return None;
        };
        let local = local_address_towards(at).await?;
        Some(Gateway::Igd { igd, local })
    };
    let pmp = async {
        let addr = super::route::default_gateway()?;
        let asked = tokio::time::timeout(
            DISCOVERY_TIMEOUT,
            crab_nat::natpmp::external_address(addr.into(), Some(PMP_TIMEOUTS)),
        )
        .await;
        let external = match asked {
            Ok(Ok(ip)) => Some(ip),
            // A PCP-only server answers a NAT-PMP request with UNSUPP_VERSION
            // (RFC 6887 §9): it is there.
            Ok(Err(crab_nat::natpmp::Failure::UnsupportedVersion(_))) => None,
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "no NAT-PMP/PCP gateway");
                return None;
            }
            Err(_) => {
                tracing::debug!(%addr, "no NAT-PMP/PCP answer");
                return None;
            }
        };
        let local = local_address_towards(addr).await?;
        Some(Gateway::Pmp {
            addr,
            local,
            external,
        })
    };
    let (igd, pmp) = tokio::join!(igd, pmp);
    igd.or(pmp)
}

/// Our IPv4 address on the route to `gateway` (a connected UDP socket's
/// local address; nothing is sent).
async fn local_address_towards(gateway: Ipv4Addr) -> Option<Ipv4Addr> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .ok()?;
    socket.connect((gateway, 9)).await.ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

impl Gateway {
    /// "UPnP IGD at 10.0.0.1:5000" or "NAT-PMP/PCP at 10.0.0.1".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Igd { igd, .. } => format!("UPnP IGD at {}", igd.addr),
            Self::Pmp { addr, .. } => format!("NAT-PMP/PCP at {addr}"),
        }
    }

    /// Our address as the gateway sees us.
    pub(crate) fn local(&self) -> Ipv4Addr {
        match self {
            Self::Igd { local, .. } | Self::Pmp { local, .. } => *local,
        }
    }

    /// Maps `internal` on the gateway for `transport`: the same external
    /// port when the gateway grants it, else whichever it gives.
    ///
    /// # Errors
    /// [`TorrentError::PortMapping`] when the gateway refuses or does not
    /// answer (each request is bounded by the crates' own timeouts; the
    /// caller bounds the whole).
    pub(crate) async fn map(
        &self,
        transport: Transport,
        internal: SocketAddrV4,
    ) -> Result<Active, TorrentError> {
        match self {
            Self::Igd { igd, .. } => {
                let (external_port, lease) = add_igd(igd, transport, internal).await?;
                let external_ip = match igd.get_external_ip().await {
                    Ok(IpAddr::V4(ip)) => ip,
                    Ok(IpAddr::V6(_)) | Err(_) => Ipv4Addr::UNSPECIFIED,
                };
                Ok(Active::Igd {
                    igd: igd.clone(),
                    mapped: MappedPort {
                        transport,
                        internal,
                        external: SocketAddrV4::new(external_ip, external_port),
                        protocol: MappingProtocol::UpnpIgd,
                        lifetime: lease,
                    },
                })
            }
            Self::Pmp {
                addr,
                local,
                external,
            } => {
                let port =
                    NonZeroU16::new(internal.port()).ok_or_else(|| error("cannot map port 0"))?;
                let options = PortMappingOptions {
                    external_port: Some(port),
                    lifetime_seconds: Some(NATPMP_LIFETIME.as_secs() as u32),
                    timeout_config: Some(PMP_TIMEOUTS),
                };
                let mapping = crab_nat::PortMapping::new(
                    (*addr).into(),
                    IpAddr::V4(*local),
                    pmp_protocol(transport),
                    port,
                    options,
                )
                .await
                .map_err(|e| error(format!("{} refused the mapping: {e}", self.describe())))?;
                let mut active = Active::Pmp {
                    mapping,
                    internal,
                    external_ip: external.unwrap_or(Ipv4Addr::UNSPECIFIED),
                };
                active.refresh_external();
                Ok(active)
            }
        }
    }
}

/// `AddPortMapping` (WANIPConnection §2.4.16) with the same external port,
/// else `AddAnyPortMapping` (IGD:2) or random ports (IGD:1); a gateway
/// that takes only permanent leases (error 725) gets lease 0. Returns the
/// external port and the lease granted (zero: permanent).
async fn add_igd(
    igd: &Igd<Tokio>,
    transport: Transport,
    internal: SocketAddrV4,
) -> Result<(u16, Duration), TorrentError> {
    let protocol = igd_protocol(transport);
    let local = SocketAddr::V4(internal);
    let refused = |e: &dyn std::fmt::Display| error(format!("UPnP IGD at {}: {e}", igd.addr));
    let mut lease = UPNP_LEASE;
    for _ in 0..2 {
        let secs = lease.as_secs() as u32;
        match igd
            .add_port(protocol, internal.port(), local, secs, DESCRIPTION)
            .await
        {
            Ok(()) => return Ok((internal.port(), lease)),
            Err(AddPortError::OnlyPermanentLeasesSupported) if !lease.is_zero() => {
                lease = Duration::ZERO;
            }
            Err(AddPortError::PortInUse | AddPortError::SamePortValuesRequired) => break,
            Err(e) => return Err(refused(&e)),
        }
    }
    match igd
        .add_any_port(protocol, local, lease.as_secs() as u32, DESCRIPTION)
        .await
    {
        Ok(port) => Ok((port, lease)),
        Err(AddAnyPortError::OnlyPermanentLeasesSupported) if !lease.is_zero() => igd
            .add_any_port(protocol, local, 0, DESCRIPTION)
            .await
            .map(|port| (port, Duration::ZERO))
            .map_err(|e| refused(&e)),
        Err(e) => Err(refused(&e)),
    }
}

fn igd_protocol(t: Transport) -> PortMappingProtocol {
    match t {
        Transport::Tcp => PortMappingProtocol::TCP,
        Transport::Udp => PortMappingProtocol::UDP,
    }
}

fn pmp_protocol(t: Transport) -> InternetProtocol {
    match t {
        Transport::Tcp => InternetProtocol::Tcp,
        Transport::Udp => InternetProtocol::Udp,
    }
}

/// A mapping the gateway holds for us.
#[derive(Debug)]
pub(crate) enum Active {
    /// Made with `AddPortMapping`; renewed by adding it again.
    Igd { igd: Igd<Tokio>, mapped: MappedPort },
    /// Made with PCP `MAP` or NAT-PMP; renewed with the same request.
    Pmp {
        mapping: crab_nat::PortMapping,
        internal: SocketAddrV4,
        /// The gateway's external address from discovery (NAT-PMP).
        external_ip: Ipv4Addr,
    },
}

impl Active {
    /// What is mapped where.
    pub(crate) fn mapped(&self) -> MappedPort {
        match self {
            Self::Igd { mapped, .. } => mapped.clone(),
            Self::Pmp {
                mapping,
                internal,
                external_ip,
            } => MappedPort {
                transport: match mapping.protocol() {
                    InternetProtocol::Tcp => Transport::Tcp,
                    InternetProtocol::Udp => Transport::Udp,
                },
                internal: *internal,
                external: SocketAddrV4::new(*external_ip, mapping.external_port().get()),
                protocol: match mapping.mapping_type() {
                    PortMappingType::NatPmp => MappingProtocol::NatPmp,
                    PortMappingType::Pcp { .. } => MappingProtocol::Pcp,
                },
                lifetime: Duration::from_secs(u64::from(mapping.lifetime())),
            },
        }
    }

    /// PCP tells the external address in each answer (RFC 6887 §11.1).
    fn refresh_external(&mut self) {
        if let Self::Pmp {
            mapping,
            external_ip,
            ..
        } = self
            && let PortMappingType::Pcp {
                external_ip: IpAddr::V4(ip),
                ..
            } = mapping.mapping_type()
        {
            *external_ip = ip;
        }
    }

    /// When to renew: at half the lifetime granted (RFC 6886 §3.3), half
    /// of [`UPNP_LEASE`] for a permanent UPnP lease (so a rebooted router
    /// gets it back), never sooner than 30 s.
    pub(crate) fn renew_in(&self) -> Duration {
        let lifetime = match self {
            Self::Igd { mapped, .. } if mapped.lifetime.is_zero() => UPNP_LEASE,
            _ => self.mapped().lifetime,
        };
        (lifetime / 2).max(Duration::from_secs(30))
    }

    /// Asks the gateway for the same mapping again.
    ///
    /// # Errors
    /// [`TorrentError::PortMapping`] when the gateway refuses or does not answer.
    pub(crate) async fn renew(&mut self) -> Result<(), TorrentError> {
        match self {
            Self::Igd { igd, mapped } => igd
                .add_port(
                    igd_protocol(mapped.transport),
                    mapped.external.port(),
                    SocketAddr::V4(mapped.internal),
                    mapped.lifetime.as_secs() as u32,
                    DESCRIPTION,
                )
                .await
                .map_err(|e| error(format!("renewing on UPnP IGD at {}: {e}", igd.addr))),
            Self::Pmp { mapping, .. } => {
                mapping
                    .renew()
                    .await
                    .map_err(|e| error(format!("renewing on {}: {e}", mapping_gateway(mapping))))?;
                self.refresh_external();
                Ok(())
            }
        }
    }

    /// Deletes the mapping on the gateway (`DeletePortMapping`; PCP/NAT-PMP
    /// with lifetime 0, RFC 6886 §3.4, RFC 6887 §15).
    ///
    /// # Errors
    /// [`TorrentError::PortMapping`] when the gateway refuses or does not answer.
    pub(crate) async fn remove(self) -> Result<(), TorrentError> {
        match self {
            Self::Igd { igd, mapped } => igd
                .remove_port(igd_protocol(mapped.transport), mapped.external.port())
                .await
                .map_err(|e| error(format!("UPnP IGD at {}: {e}", igd.addr))),
            Self::Pmp { mapping, .. } => {
                let gateway = mapping_gateway(&mapping);
                mapping
                    .try_drop()
                    .await
                    .map_err(|(e, _)| error(format!("{gateway}: {e}")))
            }
        }
    }
}

fn mapping_gateway(m: &crab_nat::PortMapping) -> String {
    format!("NAT-PMP/PCP at {}", IpAddr::from(m.gateway()))
}
