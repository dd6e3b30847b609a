//! Real BitTorrent peers on 127.0.0.1, for dlm-bittorrent's tests.
//!
//! * [`Tracker`]: opentracker, HTTP (BEP 3) and UDP (BEP 15) on the same port number, in whitelist mode
//!   ([`Tracker::allow`]).
//! * [`StaticTracker`]: a tiny HTTP tracker written here that answers every announce with a fixed peer list and
//!   records the announces it got. It points any client at exactly the peers a test names (aria2c has no option
//!   to connect to a given peer).
//! * [`TorrentSpec`] → [`TorrentFixture`]: payload files with reproducible content and a `.torrent` made by
//!   mktorrent, with the info-hash computed independently of dlm.
//! * [`LibtorrentPeer`]: libtorrent 2.x (python bindings) running `tests/peers/lt_peer.py`: seeds and/or leeches,
//!   and reports per-peer bytes, pieces and requests in a JSON status file.
//! * [`TransmissionSeeder`]: transmission-daemon 3.00, driven over its RPC.
//! * [`Aria2Seeder`] and [`Aria2Leecher`]: aria2c 1.36.
//!
//! Each starts on free ports in its own temp dir, is stopped by PID on drop, and returns `None` from `start`
//! (after `skipping: …`) when its program is missing; see [`crate::peer::missing_peer`].
//!
//! # Quirks of the real clients (measured on Debian 12, loopback)
//!
//! * Handshake reserved bytes: libtorrent `00 00 00 00 00 10 00 05` (BEP 10 extensions, BEP 6 fast, DHT, even
//!   with its DHT off), Transmission and aria2c `00 00 00 00 00 10 00 04`. None of them requires the extension
//!   protocol or the fast extension from the other side; `HAVE_ALL`/`HAVE_NONE` are sent only when both set
//!   the fast bit, a `BITFIELD` (or nothing, when empty) otherwise.
//! * libtorrent and aria2c open outgoing connections with an MSE/PE handshake; when a plaintext-only peer closes
//!   it, they reconnect in plaintext about 1 s later. [`LibtorrentPeer`] opens them in plaintext (`lt_peer.py`
//!   `--encrypted-outgoing` turns the handshake on); aria2c has no switch for it.
//! * libtorrent drops all but one connection per IP unless `allow_multiple_connections_per_ip` is set
//!   (`lt_peer.py` sets it). Seeding, it answers a handshake at once with its extension handshake, `HAVE_ALL`
//!   and `UNCHOKE`, before the peer says it is interested. Requests longer than 16 KiB get `REJECT` (with BEP 6)
//!   or are silently ignored (without); shorter ones are served. Two seeds disconnect each other ("upload to
//!   upload connection").
//! * Transmission 3.00 answers a handshake after ~0.35-0.5 s and sends its bitfield ~0.5 s later, unchokes 3-8 s
//!   after `INTERESTED` (its rechoke timer), serves a request ~0.5 s after it arrives (bandwidth pulses), silently
//!   ignores requests longer than 16 KiB (no `REJECT` even with BEP 6), and sometimes closes a new connection
//!   from 127.0.0.1 at once when the previous one from that IP has just ended (2 of 8 probes). ~1 MiB/s to
//!   aria2c on loopback.
//! * A seeder connects to the peers in its own announce replies only: a leecher that announces after the seeder
//!   must connect to it (or wait for the seeder's next announce, ~30 min with opentracker).
//! * aria2c uses UDP trackers only with its DHT on ([`Aria2Options::with_dht`] does that for you).
//! * opentracker keeps a peer listed until it sends `stopped` or times out (~30 min): use a fresh tracker or
//!   fresh payloads (new info-hashes) per test.

/// An announce URL nothing answers (port 1 refuses connections): for
/// torrents whose peers are given by address.
pub const NO_TRACKER: &str = "http://127.0.0.1:1/announce";

mod aria2;
mod libtorrent;
mod static_tracker;
mod torrent_file;
mod tracker;
mod transmission;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

pub use aria2::{Aria2Leecher, Aria2Options, Aria2Seeder};
pub use libtorrent::{
    LIBTORRENT_PEER_SCRIPT, LIBTORRENT_PYTHON_ENV, LibtorrentOptions, LibtorrentPeer, LtDhtStatus,
    LtEncryption, LtPeerStats, LtStatus, LtTorrentStatus, LtTransport, libtorrent_python,
};
pub use static_tracker::StaticTracker;
pub use torrent_file::{
    FixtureFile, LT_MAKE_TORRENT_SCRIPT, LtTorrentFormat, TorrentFixture, TorrentSpec,
    info_hash_of, info_hash_v2_of, percent_encode_bytes,
};
pub use tracker::{ScrapeCounts, Tracker};
pub use transmission::TransmissionSeeder;

/// How often the helpers here poll a file, a port or an RPC.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The port in a `READY <port>` line (what `lt_peer.py` prints once it listens).
fn ready_port(line: &str) -> Option<u16> {
    line.strip_prefix("READY ")?.trim().parse().ok()
}

/// A status code, the header fields in order, and the body.
type HttpResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// One blocking HTTP/1.0 exchange with 127.0.0.1:`port` (`Connection: close`, body read to EOF): returns the
/// status, the header lines and the body.
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of HTTP header"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad HTTP status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, response[split + 4..].to_vec()))
}
