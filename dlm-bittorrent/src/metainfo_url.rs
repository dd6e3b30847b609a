//! Fetching a `.torrent` from an `http(s)://` URL.

use dlm_http::HttpClient;
use http::HeaderMap;
use url::Url;

use crate::{MAX_TORRENT_BYTES, Metainfo, TorrentError};

/// Downloads and parses the metainfo at `url` (at most
/// [`MAX_TORRENT_BYTES`]) with `client`, following redirects.
///
/// # Errors
/// [`TorrentError::Fetch`] when the request fails or the status is not
/// 2xx (retryable as dlm-http classifies it: connection failures but not
/// refused certificates, 408/429/5xx); as
/// [`Metainfo::from_bytes`] for what arrives.
pub async fn fetch_metainfo(client: &HttpClient, url: &Url) -> Result<Metainfo, TorrentError> {
    let shown = dlm_core::redact_url(url);
    let err = |message: String, retryable: bool| TorrentError::Fetch {
        url: shown.clone(),
        message,
        retryable,
    };
    let body = client
        .get_bytes(url, &HeaderMap::new(), MAX_TORRENT_BYTES)
        .await
        .map_err(|e| err(e.to_string(), e.is_retryable()))?;
    Metainfo::from_bytes(&body)
}

/// Whether `input` names a `.torrent` over HTTP(S): an `http(s)://` URL
/// whose path ends in `.torrent`.
pub fn is_torrent_url(input: &str) -> Option<Url> {
    let url = Url::parse(input).ok()?;
    (matches!(url.scheme(), "http" | "https")
        && url.path().to_ascii_lowercase().ends_with(".torrent"))
    .then_some(url)
}
