//! The protocol-specific commands of the CLI: `dlm s3 presign` and
//! `dlm seed`. Everything else goes through the registry.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dlm_core::{Error, ErrorKind, Result};

use super::Settings;

/// A presigned HTTPS `GET` URL for `s3://BUCKET/KEY`, valid `expires` (1 s to 7 days).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a URL that is not `s3://BUCKET/KEY`;
/// credential look-up errors.
pub async fn s3_presign(url: &str, expires: Duration, settings: &Settings) -> Result<String> {
    let location = url::Url::parse(url)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{url}: {e}")))
        .and_then(|u| dlm_s3::S3Location::parse(&u).map_err(Into::into))?;
    let client = dlm_s3::S3Client::new(settings.s3.clone())?;
    Ok(client
        .presign(&location.bucket, &location.key, expires)
        .await?
        .to_string())
}

/// A torrent's files on disk, re-checked and ready to serve to peers that
/// connect (`dlm seed`).
#[derive(Debug)]
pub struct TorrentSeeder {
    seeder: dlm_bittorrent::seed::Seeder,
    listener: std::sync::Mutex<Option<tokio::net::TcpListener>>,
    local_addr: SocketAddr,
    total_bytes: u64,
    summary: String,
}

impl TorrentSeeder {
    /// Reads `torrent`, re-checks its files under `dir` and listens on `listen`.
    ///
    /// # Errors
    /// A bad `.torrent`, missing files, an address that cannot be bound.
    pub async fn open(
        torrent: &Path,
        dir: PathBuf,
        listen: SocketAddr,
        settings: &Settings,
    ) -> Result<Self> {
        let metainfo = dlm_bittorrent::Metainfo::from_file(torrent)?;
        let total_bytes = metainfo.total_length;
        let (pieces, info_hash) = (metainfo.piece_count(), metainfo.info_hash);
        let seeder =
            dlm_bittorrent::seed::Seeder::open(metainfo, dir, settings.bittorrent.clone()).await?;
        let listener = dlm_bittorrent::seed::listen(listen).await?;
        let local_addr = listener.local_addr().unwrap_or(listen);
        let summary = format!(
            "seeding {} of {pieces} pieces of {info_hash}",
            seeder.pieces_verified()
        );
        Ok(Self {
            seeder,
            listener: std::sync::Mutex::new(Some(listener)),
            local_addr,
            total_bytes,
            summary,
        })
    }

    /// Where peers connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// "seeding N of M pieces of INFO-HASH".
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The torrent's size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Payload bytes uploaded so far.
    pub fn uploaded(&self) -> u64 {
        self.seeder.uploaded()
    }

    /// One-line notices while serving, as they happen (subscribe before [`TorrentSeeder::serve`]):
    /// `port mapped: TCP 10.0.0.2:6881 -> 203.0.113.7:6881 (UPnP IGD)` for each port the NAT
    /// gateway maps. Ends when the seeder is dropped.
    pub fn notices(&self) -> impl futures::Stream<Item = String> + Send + 'static {
        use tokio::sync::broadcast::error::RecvError;
        futures::stream::unfold(self.seeder.mapped_ports(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(m) => return Some((format!("port mapped: {m}"), rx)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Serves peers until `until` resolves, then leaves the swarm.
    ///
    /// # Errors
    /// When called twice, or the trackers' client cannot be built.
    pub async fn serve(&self, until: impl Future<Output = ()>) -> Result<()> {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "already served"))?;
        Ok(self.seeder.serve(listener, until).await?)
    }
}
