//! `Seeder`: serves a complete (or partly complete) torrent from disk to
//! peers that connect (BEP 3): the data is re-checked piece by piece first,
//! then a listening socket answers handshakes with our bitfield, and the
//! swarm's connections serve `request`s from the verified pieces under the
//! choker (4 upload slots by default, BEP 3 choking).

use std::path::PathBuf;
use std::sync::Arc;

use dlm_core::{MultiFileSink, Sink};
use tokio::net::TcpListener;

use crate::peer::Bitfield;
use crate::swarm::Swarm;
use crate::{Metainfo, TorrentConfig, TorrentError};

/// Serves one torrent's verified pieces.
#[derive(Debug)]
pub struct Seeder {
    swarm: Arc<Swarm>,
    verified: usize,
}

fn io(what: &str, e: std::io::Error) -> TorrentError {
    TorrentError::Io {
        what: what.to_string(),
        source: e,
    }
}

impl Seeder {
    /// Opens the torrent's files under `dir` (as a download into `dir`
    /// wrote them) and re-checks every piece; missing or wrong pieces are
    /// not offered. `config` gives the upload slots and limit.
    ///
    /// # Errors
    /// [`TorrentError::Io`] when the files cannot be opened.
    pub async fn open(
        metainfo: Metainfo,
        dir: PathBuf,
        config: TorrentConfig,
    ) -> Result<Self, TorrentError> {
        let spans = metainfo.file_spans(|_| true);
        for f in &spans {
            if !dir.join(&f.path).is_file() {
                return Err(io(
                    &format!("opening {}", dir.join(&f.path).display()),
                    std::io::ErrorKind::NotFound.into(),
                ));
            }
        }
        let storage = Arc::new(
            MultiFileSink::new(dir, &metainfo.name, spans)
                .map_err(|e| TorrentError::InvalidTorrent(e.to_string()))?
                // Padding after the last file (BEP 52) reads as zeros.
                .with_len(metainfo.total_length),
        );
        let checking = |e: dlm_core::Error| {
            io(
                "checking the torrent's files",
                std::io::Error::other(e.to_string()),
            )
        };
        let on_disk = storage
            .stored_ranges()
            .await
            .map_err(checking)?
            .unwrap_or_default();
        let stored = dlm_core::StoredBytes::new(storage);
        let mut have = Bitfield::empty(metainfo.piece_count());
        for i in crate::verify::verified_pieces(&metainfo, &stored, &on_disk)
            .await
            .map_err(checking)?
        {
            have.set(i);
        }
        let missing: u64 = (0..metainfo.piece_count())
            .filter(|i| !have.has(*i))
            .map(|i| metainfo.piece_len(i))
            .sum();
        let metainfo = Arc::new(metainfo);
        let swarm = Arc::new(Swarm::new(metainfo, config.with_listen_port(None)));
        swarm.set_left(missing);
        swarm.uploads().attach(stored, &have, true);
        Ok(Self {
            swarm,
            verified: have.count(),
        })
    }

    /// Pieces verified on disk.
    pub fn pieces_verified(&self) -> usize {
        self.verified
    }

    /// Bytes uploaded so far.
    pub fn uploaded(&self) -> u64 {
        self.swarm.uploads().uploaded()
    }

    /// Each port the NAT gateway maps for this seeder ([`crate::port_mapping`]:
    /// its listening port, uTP's and the DHT's), as granted, from the
    /// moment of the call: subscribe before [`Seeder::serve`]. A receiver
    /// that falls behind by more than 16 gets
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged);
    /// the channel closes when the seeder is dropped.
    pub fn mapped_ports(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::port_mapping::MappedPort> {
        self.swarm.mapped_ports()
    }

    /// Accepts peers on `listener`, and over uTP (BEP 29) on the UDP port
    /// with its number unless [`crate::TorrentConfig::utp`] is off, until `until` resolves (a time limit, a
    /// ratio reached, Ctrl-C), then closes every connection. The torrent's
    /// trackers hear `completed` at the start and `stopped` at the end
    /// (BEP 3), with the bytes uploaded. With
    /// [`crate::TorrentConfig::port_mapping`] on, the listening port (and
    /// uTP's, the DHT's) is mapped on the NAT gateway in the background,
    /// and the mappings are removed at the end (at most 2 s).
    ///
    /// # Errors
    /// [`TorrentError::Tracker`] when the trackers' HTTP client cannot be
    /// built; trackers that do not answer are only logged.
    pub async fn serve(
        &self,
        listener: TcpListener,
        until: impl std::future::Future<Output = ()>,
    ) -> Result<(), TorrentError> {
        self.swarm.seed(listener).await?;
        until.await;
        self.swarm.stop().await;
        Ok(())
    }
}

/// Binds a listening socket for peers. With port 0, a port whose UDP
/// twin is free as well is preferred (a few tries), so that
/// [`Seeder::serve`] can accept uTP (BEP 29) on the same port number.
///
/// # Errors
/// [`TorrentError::Io`] when the address cannot be bound.
pub async fn listen(addr: std::net::SocketAddr) -> Result<TcpListener, TorrentError> {
    let bind = || async {
        TcpListener::bind(addr)
            .await
            .map_err(|e| io(&format!("listening on {addr}"), e))
    };
    if addr.port() != 0 {
        return bind().await;
    }
    for _ in 0..7 {
        let l = bind().await?;
        let udp_free = l
            .local_addr()
            .is_ok_and(|a| std::net::UdpSocket::bind(a).is_ok());
        if udp_free {
            return Ok(l);
        }
    }
    bind().await
}
