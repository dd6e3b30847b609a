//! Entry points for `fuzz/` (cargo-fuzz targets and their corpus replay):
//! the private XML parsers behind a response body. Not a stable API; hidden
//! from the docs.

/// One parsed `ListObjectsV2` page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedPage {
    /// `IsTruncated`: whether another page follows.
    pub is_truncated: bool,
    /// `NextContinuationToken`, when given.
    pub next_continuation_token: Option<String>,
    /// `(Key, Size)` of each `Contents` element, keys URL-decoded when the
    /// page says `EncodingType` `url`; sizes in bytes.
    pub contents: Vec<(String, u64)>,
}

/// Parses a `ListObjectsV2` response body as the listing does.
///
/// # Errors
/// A message when the body is not UTF-8, not a page, or holds a URL-encoded
/// key that does not decode to UTF-8.
pub fn list_page(body: &[u8]) -> Result<ListedPage, String> {
    let page = crate::listing::parse_page(body)?;
    Ok(ListedPage {
        is_truncated: page.is_truncated,
        next_continuation_token: page.next_continuation_token,
        contents: page.contents.into_iter().map(|o| (o.key, o.size)).collect(),
    })
}

/// `(Code, Message, Endpoint, Region)` of an S3 error document body, `None`
/// when the body is not one.
pub fn error_document(body: &[u8]) -> Option<(String, String, Option<String>, Option<String>)> {
    crate::error::parse_error_document(body).map(|d| (d.code, d.message, d.endpoint, d.region))
}
