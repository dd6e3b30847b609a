//! Local Service Discovery (BEP 14): peers on the same LAN find each other
//! by multicasting `BT-SEARCH` messages (an HTTP-like request naming
//! info-hashes and a port) to 239.192.152.143:6771.
//!
//! One receiving socket per process is shared by every torrent (the port is
//! fixed by BEP 14); each torrent announces itself when it starts and every
//! [`ANNOUNCE_EVERY`] after, on the default interface and on loopback, and
//! hears of the peers that announce the same info-hash. Our own messages
//! are recognised by their `cookie` and ignored.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use dlm_core::CancellationToken;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::{InfoHash, TorrentError};

/// The multicast group of BEP 14 (IPv4).
pub const LSD_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
/// The UDP port of BEP 14.
pub const LSD_PORT: u16 = 6771;
/// A torrent announces itself this often (BEP 14: at most once a minute).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Longest message read, in bytes (one datagram on an Ethernet LAN).
pub const MAX_LSD_MESSAGE: usize = 1500;
/// Most info-hashes taken from one message: with a [`MAX_LSD_COOKIE`]-byte
/// cookie, [`LsdAnnounce::encode`] of that many still fits in
/// [`MAX_LSD_MESSAGE`] bytes, so every message taken in can be sent on.
pub const MAX_LSD_INFOHASHES: usize = 24;
/// Longest `cookie` value kept, in bytes (cut at a character boundary).
pub const MAX_LSD_COOKIE: usize = 64;

/// Peers heard of, queued per torrent (more are dropped until it catches up).
const QUEUE: usize = 64;

/// A `BT-SEARCH` message (BEP 14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdAnnounce {
    /// `Port`: the sender's BitTorrent listening port.
    pub port: u16,
    /// `Infohash`: the torrents it has (one header each).
    pub info_hashes: Vec<InfoHash>,
    /// `cookie`: the sender's own tag, to recognise its echoes.
    pub cookie: Option<String>,
}

impl LsdAnnounce {
    /// Parses a datagram: `BT-SEARCH * HTTP/1.1`, then `Name: value` lines
    /// (names case-insensitive), up to an empty line. `None` when it is not
    /// a `BT-SEARCH`, longer than [`MAX_LSD_MESSAGE`], or names no valid
    /// port or info-hash; at most [`MAX_LSD_INFOHASHES`] are kept.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        if datagram.len() > MAX_LSD_MESSAGE {
            return None;
        }
        let text = std::str::from_utf8(datagram).ok()?;
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        if !lines.next()?.starts_with("BT-SEARCH * HTTP/1.") {
            return None;
        }
        let mut m = Self {
            port: 0,
            info_hashes: Vec::new(),
            cookie: None,
        };
        for line in lines {
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "port" => m.port = value.parse().unwrap_or(0),
                "infohash" if m.info_hashes.len() < MAX_LSD_INFOHASHES => {
                    let mut ih = [0u8; 20];
                    if value.len() == 40 && hex::decode_to_slice(value, &mut ih).is_ok() {
                        m.info_hashes.push(InfoHash(ih));
                    }
                }
                "cookie" => m.cookie = Some(cookie_prefix(value).to_owned()),
                _ => {}
            }
        }
        (m.port != 0 && !m.info_hashes.is_empty()).then_some(m)
    }

    /// The datagram (BEP 14's layout, ending with an empty line).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {LSD_GROUP}:{LSD_PORT}\r\nPort: {}\r\n",
            self.port
        );
        for ih in &self.info_hashes {
            s.push_str(&format!("Infohash: {}\r\n", ih.to_hex()));
        }
        if let Some(c) = &self.cookie {
            s.push_str(&format!("cookie: {c}\r\n"));
        }
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }
}

/// The longest prefix of `value` of at most [`MAX_LSD_COOKIE`] bytes that
/// ends on a character boundary, without trailing white space (which the
/// parser would trim from the re-encoded line).
fn cookie_prefix(value: &str) -> &str {
    let mut end = value.len().min(MAX_LSD_COOKIE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].trim_end()
}

/// Torrents listening for LSD peers: info-hash → (registration id, queue).
type Listeners = HashMap<InfoHash, Vec<(u64, mpsc::Sender<SocketAddr>)>>;

/// The process's LSD service.
#[derive(Debug)]
pub(crate) struct Lsd {
    cookie: String,
    listeners: Mutex<Listeners>,
    next_id: AtomicU64,
    /// Sends on the default interface and on loopback.
    senders: Vec<UdpSocket>,
    stop: CancellationToken,
}

static RUNNING: Mutex<Option<Weak<Lsd>>> = Mutex::new(None);

/// A torrent's place in the LSD service: it announces until this is dropped.
#[derive(Debug)]
pub(crate) struct LsdRegistration {
    lsd: Arc<Lsd>,
    info_hash: InfoHash,
    id: u64,
    stop: CancellationToken,
}

impl Drop for LsdRegistration {
    fn drop(&mut self) {
        self.stop.cancel();
        let mut l = self.lsd.listeners();
        if let Some(v) = l.get_mut(&self.info_hash) {
            v.retain(|(id, _)| *id != self.id);
            if v.is_empty() {
                l.remove(&self.info_hash);
            }
        }
    }
}

impl Drop for Lsd {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lsd_error(e: impl std::fmt::Display) -> TorrentError {
    TorrentError::Lsd(e.to_string())
}

/// The receiving socket: port 6771 shared with other clients on this host
/// (`SO_REUSEADDR`/`SO_REUSEPORT`), in the group on the default interface
/// and on loopback.
fn receiver() -> Result<UdpSocket, TorrentError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(lsd_error)?;
    s.set_reuse_address(true).map_err(lsd_error)?;
    s.set_reuse_port(true).map_err(lsd_error)?;
    s.set_nonblocking(true).map_err(lsd_error)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LSD_PORT).into())
        .map_err(lsd_error)?;
    let mut joined = 0;
    for iface in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST] {
        match s.join_multicast_v4(&LSD_GROUP, &iface) {
            Ok(()) => joined += 1,
            Err(e) => {
                tracing::debug!(%iface, error = %e, "LSD: not in the group on this interface")
            }
        }
    }
    if joined == 0 {
        return Err(lsd_error("could not join the LSD multicast group"));
    }
    UdpSocket::from_std(s.into()).map_err(lsd_error)
}

/// A socket that sends to the group through `iface` (`None`: the default).
fn sender(iface: Option<Ipv4Addr>) -> Result<UdpSocket, TorrentError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(lsd_error)?;
    s.set_nonblocking(true).map_err(lsd_error)?;
    s.set_multicast_loop_v4(true).map_err(lsd_error)?;
    s.set_multicast_ttl_v4(1).map_err(lsd_error)?;
    if let Some(i) = iface {
        s.set_multicast_if_v4(&i).map_err(lsd_error)?;
    }
    s.bind(&SocketAddrV4::new(iface.unwrap_or(Ipv4Addr::UNSPECIFIED), 0).into())
        .map_err(lsd_error)?;
    UdpSocket::from_std(s.into()).map_err(lsd_error)
}

impl Lsd {
    /// The process's LSD service, started on first use and stopped when
    /// the last torrent using it is gone.
    ///
    /// # Errors
    /// [`TorrentError::Lsd`] when port 6771 cannot be bound or the group
    /// joined on any interface.
    pub(crate) fn shared() -> Result<Arc<Self>, TorrentError> {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lsd) = running.as_ref().and_then(Weak::upgrade) {
            return Ok(lsd);
        }
        let socket = receiver()?;
        let senders: Vec<UdpSocket> = [None, Some(Ipv4Addr::LOCALHOST)]
            .into_iter()
            .filter_map(|i| sender(i).ok())
            .collect();
        let lsd = Arc::new(Self {
            cookie: format!("dlm{:08x}", fastrand::u32(..)),
            listeners: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            senders,
            stop: CancellationToken::new(),
        });
        tokio::spawn(receive_loop(Arc::downgrade(&lsd), socket, lsd.stop.clone()));
        *running = Some(Arc::downgrade(&lsd));
        Ok(lsd)
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces `info_hash` with our listening `port` now and every
    /// [`ANNOUNCE_EVERY`], and queues the peers that announce it, until
    /// the registration is dropped.
    pub(crate) fn register(
        self: &Arc<Self>,
        info_hash: InfoHash,
        port: u16,
    ) -> (LsdRegistration, mpsc::Receiver<SocketAddr>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.listeners()
            .entry(info_hash)
            .or_default()
            .push((id, tx));
        let stop = self.stop.child_token();
        let message = LsdAnnounce {
            port,
            info_hashes: vec![info_hash],
            cookie: Some(self.cookie.clone()),
        }
        .encode();
        let lsd = self.clone();
        let until = stop.clone();
        tokio::spawn(async move {
            loop {
                for s in &lsd.senders {
                    if let Err(e) = s.send_to(&message, (LSD_GROUP, LSD_PORT)).await {
                        tracing::debug!(error = %e, "LSD announce not sent");
                    }
                }
                tokio::select! {
                    () = until.cancelled() => return,
                    () = tokio::time::sleep(ANNOUNCE_EVERY) => {}
                }
            }
        });
        let reg = LsdRegistration {
            lsd: self.clone(),
            info_hash,
            id,
            stop,
        };
        (reg, rx)
    }
}

/// Reads announces until the service stops, passing each peer to the
/// torrents it names.
async fn receive_loop(lsd: Weak<Lsd>, socket: UdpSocket, stop: CancellationToken) {
    let mut buf = vec![0u8; MAX_LSD_MESSAGE + 1];
    loop {
        let (n, from) = tokio::select! {
            () = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "LSD receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(lsd) = lsd.upgrade() else { return };
        let Some(m) = LsdAnnounce::parse(&buf[..n]) else {
            continue;
        };
        if m.cookie.as_deref() == Some(lsd.cookie.as_str()) {
            continue;
        }
        let IpAddr::V4(ip) = from.ip() else { continue };
        let peer = SocketAddr::from((ip, m.port));
        let listeners = lsd.listeners();
        for ih in &m.info_hashes {
            for (_, tx) in listeners.get(ih).into_iter().flatten() {
                let _ = tx.try_send(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_libtorrent_sends_and_round_trips() {
        // As libtorrent 2.1 sends it (captured on loopback).
        let lt = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 40369\r\n\
                   Infohash: 806aed95792f6a118c7d7d03cf66969461549c7b\r\ncookie: 57903921\r\n\r\n\r\n";
        let m = LsdAnnounce::parse(lt).unwrap();
        assert_eq!(m.port, 40369);
        assert_eq!(
            m.info_hashes[0].to_hex(),
            "806aed95792f6a118c7d7d03cf66969461549c7b"
        );
        assert_eq!(m.cookie.as_deref(), Some("57903921"));
        assert_eq!(LsdAnnounce::parse(&m.encode()), Some(m));
    }

    #[test]
    fn refuses_what_is_not_an_announce() {
        for bad in [
            &b"M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 806aed95792f6a118c7d7d03cf66969461549c7b\r\n\r\n"[..],
            b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 806aed95792f6a118c7d7d03cf66969461549c7b\r\n\r\n",
            b"BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\nInfohash: xyz\r\n\r\n",
            b"\xff\xfe",
        ] {
            assert!(LsdAnnounce::parse(bad).is_none());
        }
        assert!(LsdAnnounce::parse(&vec![b'a'; MAX_LSD_MESSAGE + 1]).is_none());
    }

    #[test]
    fn every_message_taken_in_re_encodes_within_a_datagram() {
        // Short header names and the longest cookie: the re-encoded message
        // (longer header names, CRLF) must still parse.
        let mut d = String::from("BT-SEARCH * HTTP/1.\nport:1\ncookie:");
        d.push_str(&"\u{e9}".repeat(40)); // 80 bytes, cut inside no character
        d.push('\n');
        for i in 0..40 {
            d.push_str(&format!("infohash:{i:040x}\n"));
        }
        d.truncate(MAX_LSD_MESSAGE);
        let m = LsdAnnounce::parse(d.as_bytes()).unwrap();
        assert_eq!(m.info_hashes.len(), MAX_LSD_INFOHASHES);
        assert_eq!(m.cookie.as_deref().map(str::len), Some(MAX_LSD_COOKIE));
        assert!(m.encode().len() <= MAX_LSD_MESSAGE);
        assert_eq!(LsdAnnounce::parse(&m.encode()).as_ref(), Some(&m));

        // A cookie cut just after a space keeps no trailing space.
        let d = format!(
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {:040x}\r\ncookie: {} x\r\n\r\n",
            7,
            "c".repeat(MAX_LSD_COOKIE - 1)
        );
        let m = LsdAnnounce::parse(d.as_bytes()).unwrap();
        assert_eq!(
            m.cookie.as_deref(),
            Some("c".repeat(MAX_LSD_COOKIE - 1).as_str())
        );
        assert_eq!(LsdAnnounce::parse(&m.encode()), Some(m));
    }
}
