//! `TrackerTiers`: BEP 12's announce-list order. Trackers in a tier are
//! shuffled once; each announce tries tiers in order and trackers in order,
//! and a tracker that answers moves to the front of its tier.

use url::Url;

use super::{AnnounceRequest, AnnounceResponse, HttpTracker, Tracker, UdpTracker};
use crate::TorrentError;

/// A torrent's trackers, tier by tier.
#[derive(Debug, Clone)]
pub struct TrackerTiers {
    tiers: Vec<Vec<Tracker>>,
}

impl TrackerTiers {
    /// Trackers for `tiers` of announce URLs. Unknown schemes and malformed
    /// URLs are skipped (with a debug log): one bad entry must not stop the
    /// others.
    pub fn new(tiers: &[Vec<String>], client: &dlm_http::HttpClient) -> Self {
        let tiers = tiers
            .iter()
            .map(|tier| {
                let mut t: Vec<Tracker> = tier
                    .iter()
                    .filter_map(|u| {
                        let url = Url::parse(u).ok()?;
                        match url.scheme() {
                            "http" | "https" => {
                                Some(Tracker::Http(HttpTracker::new(url, client.clone())))
                            }
                            "udp" => UdpTracker::new(url).ok().map(Tracker::Udp),
                            other => {
                                tracing::debug!(scheme = other, "tracker scheme not supported");
                                None
                            }
                        }
                    })
                    .collect();
                fastrand::shuffle(&mut t);
                t
            })
            .filter(|t| !t.is_empty())
            .collect();
        Self { tiers }
    }

    /// Trackers in total.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    /// Whether there is no usable tracker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Announces to the first tracker that answers, tier by tier.
    ///
    /// # Errors
    /// The last tracker's error when none answers; [`TorrentError::Tracker`]
    /// when there are no trackers.
    pub async fn announce(
        &mut self,
        req: &AnnounceRequest,
    ) -> Result<(String, AnnounceResponse), TorrentError> {
        let mut last = None;
        for tier in &mut self.tiers {
            for i in 0..tier.len() {
                match tier[i].announce(req).await {
                    Ok(resp) => {
                        let t = tier.remove(i);
                        let url = t.display_url();
                        tier.insert(0, t);
                        return Ok((url, resp));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "announce failed");
                        last = Some(e);
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| TorrentError::Tracker {
            tracker: "(none)".into(),
            message: "the torrent has no usable tracker".into(),
            retryable: false,
        }))
    }

    /// Replaces every UDP tracker's timing (tests use short waits).
    pub fn with_udp_timing(mut self, timing: super::UdpTiming) -> Self {
        for tier in &mut self.tiers {
            for t in tier.iter_mut() {
                if let Tracker::Udp(u) = t {
                    *u = u.clone().with_timing(timing);
                }
            }
        }
        self
    }
}
