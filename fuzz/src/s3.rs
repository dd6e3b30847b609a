//! S3 XML bodies: `ListObjectsV2` pages and error documents.

use dlm_s3::fuzzing;

/// A `ListObjectsV2` response body as the S3 listing parses it (keys
/// URL-decoded under `EncodingType` `url`). Input: the body.
///
/// Checks: every key, split at `/` as the listing does, is either refused
/// as a path or stays inside the destination.
pub fn s3_list(data: &[u8]) {
    let Ok(page) = fuzzing::list_page(data) else {
        return;
    };
    for (key, _size) in &page.contents {
        let parts: Vec<&str> = key.split('/').collect();
        if let Ok(path) = dlm_core::safe_relative_path(&parts) {
            assert!(dlm_core::stays_inside(&path), "{key:?}");
        }
    }
}

/// An S3 error document (`<Error><Code>…</Code><Message>…</Message>…`) as
/// an error response is read. Input: the body.
///
/// Checks: none beyond not panicking.
pub fn s3_error(data: &[u8]) {
    let _ = fuzzing::error_document(data);
}
