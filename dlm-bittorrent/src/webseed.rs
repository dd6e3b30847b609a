//! `WebSeeds`: a torrent's HTTP(S) and FTP mirrors (BEP 19 `url-list`, a
//! magnet link's `ws`) as connections of the same swarm. Each file is
//! fetched through the registry's own source for its URL (so TLS, proxies,
//! retries and FTP work as for any download), whole pieces at a time, and
//! every piece is checked against its SHA-1 like a peer's: a mirror that
//! serves one bad piece, or a file of the wrong length, is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dlm_core::{
    BoxSource, ByteRange, CancellationToken, Context, Input, Options, ProtocolRegistry, ReadRange,
};
use futures::StreamExt;
use percent_encoding::utf8_percent_encode;
use tokio::sync::{Mutex, Semaphore};

use crate::Metainfo;

/// Connections to one web seed at once (libtorrent opens one per web seed;
/// aria2 splits a mirror over several).
pub const CONNECTIONS_PER_WEB_SEED: usize = 4;

/// Consecutive failed pieces (network errors, not bad data) before a web
/// seed is given up on for this run.
const MAX_FAILURES: usize = 3;

/// The longest wait for one piece from a web seed.
const PIECE_TIMEOUT: Duration = Duration::from_secs(120);

/// One mirror.
#[derive(Debug)]
struct WebSeed {
    url: String,
    /// Each file's source, resolved and probed on first use, by file index.
    files: Mutex<HashMap<usize, BoxSource>>,
    /// Dropped: bad data, a wrong length, or too many failures.
    banned: AtomicBool,
    failures: AtomicUsize,
    slots: Arc<Semaphore>,
    delivered: AtomicU64,
}

/// The web seeds of one torrent.
#[derive(Debug)]
pub(crate) struct WebSeeds {
    metainfo: Arc<Metainfo>,
    registry: Option<ProtocolRegistry>,
    seeds: Vec<WebSeed>,
}

impl WebSeeds {
    /// The web seeds of `metainfo`'s `url-list`, fetched through
    /// `registry`'s sources (none without a registry).
    pub(crate) fn new(metainfo: Arc<Metainfo>, registry: Option<ProtocolRegistry>) -> Self {
        let seeds = metainfo
            .url_list
            .iter()
            .filter(|u| {
                let scheme = u.split(':').next().unwrap_or_default().to_ascii_lowercase();
                matches!(scheme.as_str(), "http" | "https" | "ftp" | "ftps")
            })
            .map(|url| WebSeed {
                url: url.clone(),
                files: Mutex::new(HashMap::new()),
                banned: AtomicBool::new(false),
                failures: AtomicUsize::new(0),
                slots: Arc::new(Semaphore::new(CONNECTIONS_PER_WEB_SEED)),
                delivered: AtomicU64::new(0),
            })
            .collect();
        Self {
            metainfo,
            registry,
            seeds,
        }
    }

    /// Whether some web seed may still serve pieces.
    pub(crate) fn usable(&self) -> bool {
        self.registry.is_some() && self.seeds.iter().any(|s| !s.banned.load(Ordering::Relaxed))
    }

    /// Whether a usable web seed has a connection free now.
    pub(crate) fn has_free_slot(&self) -> bool {
        self.registry.is_some()
            && self
                .seeds
                .iter()
                .any(|s| !s.banned.load(Ordering::Relaxed) && s.slots.available_permits() > 0)
    }

    /// Verified payload bytes the web seeds delivered.
    pub(crate) fn delivered(&self) -> u64 {
        self.seeds
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum()
    }

    /// Piece `index` from a web seed, its SHA-1 checked (BEP 19): a free
    /// one, else the first usable one once it has a free connection. `None`
    /// when no web seed is usable; `Some(Err)` when the ones tried failed.
    pub(crate) async fn fetch_piece(
        &self,
        index: usize,
        cancel: &CancellationToken,
    ) -> Option<Result<Bytes, String>> {
        let registry = self.registry.as_ref()?;
        let mut last_error = None;
        for seed in &self.seeds {
            if seed.banned.load(Ordering::Relaxed) {
                continue;
            }
            let permit = tokio::select! {
                () = cancel.cancelled() => return Some(Err("cancelled".into())),
                p = seed.slots.clone().acquire_owned() => p.ok()?,
            };
            let fetched = tokio::select! {
                () = cancel.cancelled() => return Some(Err("cancelled".into())),
                r = tokio::time::timeout(PIECE_TIMEOUT, self.fetch_from(registry, seed, index)) => r,
            };
            drop(permit);
            let error = match fetched {
                Err(_) => format!("no piece within {} s", PIECE_TIMEOUT.as_secs()),
                Ok(Err(e)) => e,
                Ok(Ok(bytes)) if self.metainfo.piece_matches(index, &bytes).await => {
                    seed.failures.store(0, Ordering::Relaxed);
                    seed.delivered
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    return Some(Ok(bytes));
                }
                Ok(Ok(_)) => {
                    tracing::warn!(web_seed = %seed.url, piece = index, "piece failed its SHA-1: web seed dropped");
                    seed.banned.store(true, Ordering::Relaxed);
                    last_error = Some(format!("{}: piece {index} failed its SHA-1", seed.url));
                    continue;
                }
            };
            tracing::debug!(web_seed = %seed.url, piece = index, %error, "web seed failed");
            if seed.failures.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_FAILURES {
                tracing::warn!(web_seed = %seed.url, %error, "web seed dropped after {MAX_FAILURES} failures");
                seed.banned.store(true, Ordering::Relaxed);
            }
            last_error = Some(format!("{}: {error}", seed.url));
        }
        last_error.map(Err)
    }

    /// Reads piece `index` from `seed`: a range of each file it overlaps.
    async fn fetch_from(
        &self,
        registry: &ProtocolRegistry,
        seed: &WebSeed,
        index: usize,
    ) -> Result<Bytes, String> {
        let m = &self.metainfo;
        let piece = m.piece_range(index);
        let mut out = BytesMut::with_capacity(piece.len() as usize);
        for (i, f) in m.files.iter().enumerate() {
            let file = ByteRange::new(f.offset, f.offset + f.length);
            let (start, end) = (piece.start.max(file.start), piece.end.min(file.end));
            if start >= end {
                continue;
            }
            // Padding before this file (BEP 47/52) is zeros, not on the server.
            out.resize((start - piece.start) as usize, 0);
            let source = self.file_source(registry, seed, i).await?;
            let local = ByteRange::new(start - f.offset, end - f.offset);
            let mut body = source
                .open_dyn(&Context::new(), ReadRange::Bounded(local))
                .await
                .map_err(|e| e.to_string())?;
            let want = out.len() + local.len() as usize;
            while let Some(frame) = body.next().await {
                let frame = frame.map_err(|e| e.to_string())?;
                if out.len() + frame.len() > want {
                    return Err(format!("{} sent more than asked", seed.url));
                }
                out.extend_from_slice(&frame);
            }
            if out.len() != want {
                return Err(format!("{} sent less than asked", seed.url));
            }
        }
        out.resize(piece.len() as usize, 0);
        Ok(out.freeze())
    }

    /// The source of file `i` at `seed`, resolved through the registry and
    /// probed (its length must be the file's) on first use.
    async fn file_source(
        &self,
        registry: &ProtocolRegistry,
        seed: &WebSeed,
        i: usize,
    ) -> Result<BoxSource, String> {
        let mut files = seed.files.lock().await;
        if let Some(s) = files.get(&i) {
            return Ok(s.clone());
        }
        let f = &self.metainfo.files[i];
        let url = file_url(&seed.url, &self.metainfo, i);
        let source = registry
            .source(&Input::parse(&url), &Options::new())
            .await
            .map_err(|e| e.to_string())?;
        if source.identity_dyn().starts_with("bittorrent:") {
            seed.banned.store(true, Ordering::Relaxed);
            return Err(format!("{url} is a torrent, not a web seed"));
        }
        let probe = source
            .probe_dyn(&Context::new())
            .await
            .map_err(|e| e.to_string())?;
        if probe.len != Some(f.length) || (f.length > 0 && !probe.caps.ranges) {
            seed.banned.store(true, Ordering::Relaxed);
            return Err(format!(
                "{url}: length {:?} and ranges {} do not serve a file of {} bytes",
                probe.len, probe.caps.ranges, f.length
            ));
        }
        files.insert(i, source.clone());
        Ok(source)
    }
}

/// The URL of file `i` at web seed `base` (BEP 19): a single-file torrent's
/// file is `base` itself, or `base` + name when `base` ends in `/`; a
/// multi-file torrent's is `base/name/path…`, each segment percent-encoded.
pub(crate) fn file_url(base: &str, m: &Metainfo, i: usize) -> String {
    let single = m.files.len() == 1 && m.files[0].path == std::path::Path::new(&m.name);
    if single && !base.ends_with('/') {
        return base.to_string();
    }
    let mut url = base.to_string();
    if !url.ends_with('/') {
        url.push('/');
    }
    let segments: Vec<String> = m.files[i]
        .path
        .components()
        .map(|c| {
            utf8_percent_encode(&c.as_os_str().to_string_lossy(), crate::tracker::UNRESERVED)
                .to_string()
        })
        .collect();
    url.push_str(&segments.join("/"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_follow_bep_19() {
        let mut m = Metainfo::for_tests(16, 32);
        m.name = "a b.iso".into();
        m.files[0].path = "a b.iso".into();
        assert_eq!(file_url("http://m/x.iso", &m, 0), "http://m/x.iso");
        assert_eq!(file_url("http://m/dir/", &m, 0), "http://m/dir/a%20b.iso");
        m.name = "tree".into();
        m.files[0].path = "tree/sub dir/f#1".into();
        assert_eq!(
            file_url("ftp://m/pub", &m, 0),
            "ftp://m/pub/tree/sub%20dir/f%231"
        );
    }
}
