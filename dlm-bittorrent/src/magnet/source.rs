//! `MagnetSource`: a magnet link as a [`Source`]. Its probe fetches the
//! info dictionary from the swarm (or reads the copy a previous run saved),
//! then everything is the [`TorrentSource`] of that metadata.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dlm_core::scheduler::{Availability, ConnId, Scheduler};
use dlm_core::{
    BodyStream, ByteRange, Context, Description, Error, ErrorKind, Probe, RangeSet, ReadRange,
    Result, Source, Storage, StoredBytes, SwarmStats,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::MagnetLink;
use super::fetch::fetch_metadata;
use super::hashes::fetch_piece_layers;
use crate::tracker::{AnnounceEvent, AnnounceRequest, PeerId, TrackerTiers};
use crate::{MetaVersion, Metainfo, TorrentConfig, TorrentError, TorrentSource};

/// The saved metadata of a magnet download is `.<info-hash hex>` plus this,
/// in the directory of its control file.
pub const METADATA_FILE_SUFFIX: &str = ".torrent";

/// How long one probe waits for the metadata before failing (retryably:
/// the engine probes again, with back-off, up to its retry limit).
const METADATA_LIMIT: Duration = Duration::from_secs(120);

/// How long one probe waits for a v2 torrent's piece layers (BEP 52),
/// once the metadata is known.
const PIECE_LAYERS_LIMIT: Duration = Duration::from_secs(120);

/// DHT lookups (each at most 30 s) while the metadata is missing.
const DHT_LOOKUPS: usize = 4;

/// How often trackers are asked again for peers while the metadata is missing.
const METADATA_REANNOUNCE: Duration = Duration::from_secs(30);

/// A magnet link (BEP 9) as a [`Source`].
///
/// `probe` first looks for the metadata saved by an earlier run
/// (`.<info-hash>.torrent` in [`Context::state_dir`]), else fetches it
/// with `ut_metadata` from peers found through the link's trackers (`tr`),
/// its peers (`x.pe`), the configured ones and the DHT (BEP 5, unless
/// [`TorrentConfig::dht`] is off), several at once, and checks
/// it against the info-hash (SHA-1 for `btih`, SHA-256 for `btmh`, BEP 52).
/// A v2-only torrent's piece layers, which the info dictionary lacks, are
/// then asked of the peers (BEP 52 hash requests, each checked against its
/// file's pieces root). The metadata, with those piece layers, is then
/// saved there as a complete `.torrent`, so a resumed
/// download needs no peer for it, and removed when the download completes.
/// From then on the download is the [`TorrentSource`] of that metadata,
/// with the peers that answered dialled first, and the link's `so` file
/// selection applied unless the user selected files.
///
/// The identity is the torrent's (`bittorrent:<info-hash>`), so a magnet
/// download and one of the `.torrent` share their resume state.
#[derive(Debug)]
pub struct MagnetSource {
    link: MagnetLink,
    config: TorrentConfig,
    peer_id: PeerId,
    torrent: OnceCell<Arc<TorrentSource>>,
    /// Where the metadata was saved or read from.
    saved: Mutex<Option<PathBuf>>,
    /// For the web seeds (`ws`, BEP 19).
    registry: Option<dlm_core::ProtocolRegistry>,
}

impl MagnetSource {
    /// A source for `link`.
    pub fn new(link: MagnetLink, config: TorrentConfig) -> Self {
        Self {
            link,
            config,
            peer_id: PeerId::random(),
            torrent: OnceCell::new(),
            saved: Mutex::new(None),
            registry: None,
        }
    }

    /// Serves the link's web seeds (`ws`) through `registry`'s sources, as
    /// [`TorrentSource::with_registry`] does.
    pub fn with_registry(mut self, registry: dlm_core::ProtocolRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The link.
    pub fn link(&self) -> &MagnetLink {
        &self.link
    }

    /// The torrent, once its metadata is known (after a successful probe).
    pub fn torrent(&self) -> Option<&Arc<TorrentSource>> {
        self.torrent.get()
    }

    /// Where the metadata of `link` is saved under `dir`.
    pub fn metadata_path(dir: &Path, link: &MagnetLink) -> PathBuf {
        dir.join(format!(
            ".{}{METADATA_FILE_SUFFIX}",
            link.info_hash.to_hex()
        ))
    }

    /// The link's trackers, one tier each (BEP 12 order).
    fn tiers(&self) -> Vec<Vec<String>> {
        self.link.trackers.iter().map(|t| vec![t.clone()]).collect()
    }

    /// The torrent of this link: from the saved metadata, else from peers.
    async fn torrent_for(&self, cx: &Context) -> Result<&Arc<TorrentSource>> {
        self.torrent
            .get_or_try_init(|| async {
                let path = cx
                    .state_dir
                    .as_deref()
                    .map(|d| Self::metadata_path(d, &self.link));
                let mut config = self.config.clone();
                // The link's peers serve the pieces too, whoever gave the metadata.
                for a in self.link.resolve_peers().await {
                    if !config.peers.contains(&a) {
                        config.peers.push(a);
                    }
                }
                let metainfo = match path.as_deref().and_then(|p| self.read_saved(p)) {
                    Some(m) => m,
                    None => {
                        let (mut m, reachable) = self.fetch(cx, &config.peers).await?;
                        // Those that answered first: they have the torrent.
                        let mut ask = reachable.clone();
                        ask.extend(config.peers.iter().filter(|a| !reachable.contains(a)));
                        for a in reachable {
                            if !config.peers.contains(&a) {
                                config.peers.push(a);
                            }
                        }
                        // A v2-only torrent cannot check its pieces without the
                        // piece layers (BEP 52); a hybrid one checks by SHA-1.
                        if m.meta_version == MetaVersion::V2 && !m.missing_piece_layers().is_empty()
                        {
                            fetch_piece_layers(
                                &mut m,
                                &ask,
                                self.peer_id,
                                self.config.connect_timeout,
                                self.config.encryption,
                                PIECE_LAYERS_LIMIT,
                                cx.cancel.clone(),
                            )
                            .await?;
                        }
                        if let Some(p) = &path {
                            self.save(p, &m).await;
                        }
                        m
                    }
                };
                let mut torrent = TorrentSource::new(metainfo, config);
                if let Some(r) = &self.registry {
                    torrent = torrent.with_registry(r.clone());
                }
                Ok::<_, Error>(Arc::new(torrent))
            })
            .await
    }

    /// The metadata an earlier run saved at `path`, when it is there and is
    /// this swarm's.
    fn read_saved(&self, path: &Path) -> Option<Metainfo> {
        if !path.exists() {
            return None;
        }
        match Metainfo::from_file(path) {
            Ok(m) if m.info_hash == self.link.info_hash => {
                tracing::debug!(path = %path.display(), "metadata read from disk");
                *self.saved.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(path.to_path_buf());
                Some(m)
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "saved metadata is another torrent's: fetching it again");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "saved metadata unreadable: fetching it again");
                None
            }
        }
    }

    /// Writes the metadata as a `.torrent` (temporary name, then renamed);
    /// a failure only costs a later run a new fetch.
    async fn save(&self, path: &Path, m: &Metainfo) {
        let bytes = m.to_torrent_bytes();
        let tmp = path.with_extension("torrent.tmp");
        let target = path.to_path_buf();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &target)
        })
        .await;
        match written {
            Ok(Ok(())) => {
                *self.saved.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(path.to_path_buf());
            }
            Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "metadata not saved"),
            Err(e) => tracing::warn!(error = %e, "metadata not saved"),
        }
    }

    /// Fetches the info dictionary from the swarm (`given` peers first);
    /// the metainfo and the peers that answered.
    async fn fetch(
        &self,
        cx: &Context,
        given: &[SocketAddr],
    ) -> Result<(Metainfo, Vec<SocketAddr>)> {
        let ih = self.link.info_hash;
        let given = given.to_vec();
        let tiers = self.tiers();
        let tracker_peers = if tiers.is_empty() {
            futures::stream::empty().boxed()
        } else {
            let client = dlm_http::HttpClient::new(self.config.http.clone())?;
            let tiers = TrackerTiers::new(&tiers, &client);
            let request = AnnounceRequest {
                info_hash: ih,
                peer_id: self.peer_id,
                port: self.config.listen_port.filter(|p| *p != 0).unwrap_or(6881),
                uploaded: 0,
                downloaded: 0,
                // Unknown until the metadata arrives: anything but 0 (a seed).
                left: 1,
                event: Some(AnnounceEvent::Started),
                num_want: Some(self.config.max_peers as u32),
                key: u32::from(self.peer_id.0[19]),
            };
            futures::stream::unfold((tiers, request, true), |(mut tiers, mut req, first)| async move {
                if !first {
                    tokio::time::sleep(METADATA_REANNOUNCE).await;
                }
                let peers = match tiers.announce(&req).await {
                    Ok((tracker, resp)) => {
                        tracing::debug!(%tracker, peers = resp.peers.len(), "announced for metadata");
                        resp.peers
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "announce for metadata failed");
                        Vec::new()
                    }
                };
                req.event = None;
                Some((peers, (tiers, req, false)))
            })
            .boxed()
        };
        // The DHT (BEP 5), unless turned off: a few lookups, one after the other.
        let dht_peers = if self.config.dht {
            let settings = crate::dht::DhtSettings::from_config(&self.config);
            match crate::dht::Dht::shared(settings, &[]).await {
                Ok(node) => futures::stream::iter(0..DHT_LOOKUPS)
                    .map(move |_| node.get_peers(ih))
                    .flatten()
                    .boxed(),
                Err(e) => {
                    tracing::debug!(error = %e, "no DHT for the metadata");
                    futures::stream::empty().boxed()
                }
            }
        } else {
            futures::stream::empty().boxed()
        };
        let candidates = futures::stream::iter([given])
            .chain(futures::stream::select(tracker_peers, dht_peers))
            .boxed();
        let fetched = fetch_metadata(
            (ih, self.link.info_hash_v2),
            self.peer_id,
            candidates,
            self.config.connect_timeout,
            self.config.encryption,
            METADATA_LIMIT,
            cx.cancel.clone(),
        )
        .await?;
        let m = Metainfo::from_info(&fetched.info, tiers, self.link.web_seeds.clone()).map_err(
            |e| TorrentError::Metadata {
                info_hash: ih.to_hex(),
                message: format!("the peers' metadata is not a valid info dictionary: {e}"),
            },
        )?;
        Ok((m, fetched.reachable))
    }

    fn inner(&self) -> Option<&Arc<TorrentSource>> {
        self.torrent.get()
    }
}

fn not_ready() -> Error {
    Error::new(
        ErrorKind::Protocol,
        "the magnet link's metadata is not known yet (probe first)",
    )
}

impl Source for MagnetSource {
    fn identity(&self) -> String {
        format!("bittorrent:{}", self.link.info_hash)
    }

    async fn probe(&self, cx: &Context) -> Result<Probe> {
        let torrent = self.torrent_for(cx).await?;
        let mut probe = torrent.probe(cx).await?;
        if let Some(so) = &self.link.select_only
            && !probe.files.is_empty()
        {
            for (i, f) in probe.files.iter_mut().enumerate() {
                f.wanted = so.contains(&i);
            }
        }
        Ok(probe)
    }

    async fn open(&self, cx: &Context, range: ReadRange) -> Result<BodyStream> {
        self.inner().ok_or_else(not_ready)?.open(cx, range).await
    }

    fn availability(&self, conn: ConnId) -> Availability {
        self.inner()
            .map_or(Availability::Ranges(RangeSet::new()), |t| {
                t.availability(conn)
            })
    }

    fn scheduler(&self, sequential: bool) -> Option<Box<dyn Scheduler>> {
        self.inner()?.scheduler(sequential)
    }

    async fn attach(&self, storage: Storage) -> Result<()> {
        self.inner().ok_or_else(not_ready)?.attach(storage).await
    }

    fn stored(&self, range: ByteRange) {
        if let Some(t) = self.inner() {
            t.stored(range);
        }
    }

    async fn verify_stored(&self, stored: StoredBytes, ranges: RangeSet) -> Result<RangeSet> {
        self.inner()
            .ok_or_else(not_ready)?
            .verify_stored(stored, ranges)
            .await
    }

    fn swarm(&self) -> Option<SwarmStats> {
        self.inner()?.swarm()
    }

    /// The torrent's description once the metadata is known (after a
    /// probe); `None` before, so `dlm info` probes, which fetches it.
    fn describe(&self) -> Option<Description> {
        let mut d = self.inner()?.describe()?;
        if let Some(dn) = &self.link.name {
            d.fields.push(("magnet name".to_string(), dn.clone()));
        }
        for p in &self.link.peers {
            d.fields.push(("magnet peer".to_string(), p.clone()));
        }
        if let Some(so) = &self.link.select_only {
            for f in &mut d.files {
                f.wanted = false;
            }
            for &i in so {
                if let Some(f) = d.files.get_mut(i) {
                    f.wanted = true;
                }
            }
        }
        Some(d)
    }

    /// As the torrent's; a completed download no longer needs the saved metadata.
    async fn finish(&self, complete: bool) {
        if let Some(t) = self.inner() {
            t.finish(complete).await;
        }
        if complete {
            let saved = self
                .saved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(p) = saved {
                let _ = tokio::fs::remove_file(&p).await;
            }
        }
    }
}
