//! HTTP(S) trackers (BEP 3), through dlm-http's client.

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use url::Url;

use super::response::{MAX_RESPONSE_BYTES, parse_http_reply};
use super::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use crate::TorrentError;

/// Bytes left alone in `info_hash` and `peer_id`, and in a web seed's
/// path segments (RFC 3986 §2.3 unreserved).
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An `http://` or `https://` announce URL.
#[derive(Debug, Clone)]
pub struct HttpTracker {
    url: Url,
    client: dlm_http::HttpClient,
}

impl HttpTracker {
    /// A tracker at `url`, asked through `client`.
    pub fn new(url: Url, client: dlm_http::HttpClient) -> Self {
        Self { url, client }
    }

    /// The announce URL without its query (which may carry a passkey).
    pub fn display_url(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        dlm_core::redact_url(&u)
    }

    /// The full announce URL for `req`: the tracker's own query (passkeys)
    /// kept, BEP 3's parameters appended, binary values percent-encoded.
    pub fn announce_url(&self, req: &AnnounceRequest) -> Url {
        let mut q = self.url.query().map(str::to_string).unwrap_or_default();
        let mut add = |k: &str, v: &str| {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(k);
            q.push('=');
            q.push_str(v);
        };
        add(
            "info_hash",
            &percent_encode(&req.info_hash.0, UNRESERVED).to_string(),
        );
        add(
            "peer_id",
            &percent_encode(&req.peer_id.0, UNRESERVED).to_string(),
        );
        add("port", &req.port.to_string());
        add("uploaded", &req.uploaded.to_string());
        add("downloaded", &req.downloaded.to_string());
        add("left", &req.left.to_string());
        add("compact", "1");
        add("key", &format!("{:08x}", req.key));
        if let Some(n) = req.num_want {
            add("numwant", &n.to_string());
        }
        if let Some(e) = req.event {
            add(
                "event",
                match e {
                    AnnounceEvent::Started => "started",
                    AnnounceEvent::Completed => "completed",
                    AnnounceEvent::Stopped => "stopped",
                },
            );
        }
        let mut url = self.url.clone();
        url.set_query(Some(&q));
        url
    }

    /// Announces once.
    ///
    /// # Errors
    /// [`TorrentError::Tracker`]: retryable as dlm-http classifies HTTP
    /// failures (connection failures, 408/429/5xx); a
    /// `failure reason`, another status or a malformed reply are not.
    pub async fn announce(&self, req: &AnnounceRequest) -> Result<AnnounceResponse, TorrentError> {
        let shown = self.display_url();
        let err = |message: String, retryable: bool| TorrentError::Tracker {
            tracker: shown.clone(),
            message,
            retryable,
        };
        let body = self
            .client
            .get_bytes(
                &self.announce_url(req),
                &HeaderMap::new(),
                MAX_RESPONSE_BYTES,
            )
            .await
            .map_err(|e| err(e.to_string(), e.is_retryable()))?;
        parse_http_reply(&shown, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InfoHash;
    use crate::tracker::PeerId;

    #[test]
    fn builds_announce_urls_keeping_passkeys() {
        let client = dlm_http::HttpClient::new(dlm_http::HttpConfig::default()).unwrap();
        let t = HttpTracker::new(
            Url::parse("http://t.invalid/announce?passkey=abc").unwrap(),
            client,
        );
        let req = AnnounceRequest {
            info_hash: InfoHash([
                0x12, 0xab, b'a', b'-', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
            ]),
            peer_id: PeerId(*b"-DL0100-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Some(AnnounceEvent::Started),
            num_want: Some(50),
            key: 0xdead_beef,
        };
        let u = t.announce_url(&req);
        let q = u.query().unwrap();
        assert!(q.starts_with("passkey=abc&info_hash=%12%ABa-%00"), "{q}");
        assert!(
            q.contains(
                "peer_id=-DL0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1"
            ),
            "{q}"
        );
        assert!(q.ends_with("key=deadbeef&numwant=50&event=started"), "{q}");
        assert_eq!(t.display_url(), "http://t.invalid/announce");
    }
}
