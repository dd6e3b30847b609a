//! `S3Listing`: every object under a prefix, listed with `ListObjectsV2`
//! (pages of up to 1,000 keys, followed by continuation token). Keys are
//! URL-decoded only when the page says `EncodingType` is `url`.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use dlm_core::{Context, Entry, Listing, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, Method};

use crate::{S3Client, S3Error, S3Location, S3Source};

/// Largest `ListObjectsV2` page read, in bytes (1,000 keys of 1 KiB each
/// with their metadata fit well below).
pub const MAX_LIST_PAGE_BYTES: usize = 16 << 20;

/// One `ListObjectsV2` page.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListPage {
    #[serde(default)]
    pub(crate) is_truncated: bool,
    #[serde(default)]
    pub(crate) next_continuation_token: Option<String>,
    #[serde(default)]
    encoding_type: Option<String>,
    #[serde(default)]
    pub(crate) contents: Vec<Object>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Object {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) size: u64,
}

/// `s3://bucket/prefix/` as a [`Listing`]: every object whose key starts
/// with the prefix, at its key's path below the prefix. Keys are not
/// trusted: the [`TreeDownload`](dlm_core::TreeDownload) refuses any that
/// would leave the destination (`../x`, `a//b`). Zero-length keys ending in
/// `/` (folder markers from consoles) are skipped.
#[derive(Debug)]
pub struct S3Listing {
    client: S3Client,
    location: S3Location,
}

impl S3Listing {
    /// A listing of `location` (a prefix: empty or ending in `/`).
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] when `location` names an object.
    pub fn new(client: S3Client, location: S3Location) -> Result<Self, S3Error> {
        if !location.is_prefix() {
            return Err(S3Error::InvalidInput(format!(
                "s3://{} names an object, not a prefix (end it with /)",
                location.display()
            )));
        }
        Ok(Self { client, location })
    }

    async fn page(&self, token: Option<&str>) -> Result<ListPage, S3Error> {
        // No `encoding-type=url`: some S3-compatible servers (s3s-fs) echo it
        // without encoding the keys, and decoding then corrupts `+` and `%`.
        // The cost: a key with characters XML 1.0 cannot carry fails the page.
        let mut query = vec![("list-type", "2"), ("max-keys", "1000")];
        if !self.location.key.is_empty() {
            query.push(("prefix", self.location.key.as_str()));
        }
        if let Some(t) = token {
            query.push(("continuation-token", t));
        }
        let bucket = &self.location.bucket;
        let resp = self
            .client
            .send(Method::GET, bucket, "", &query, &HeaderMap::new())
            .await?;
        if !resp.status().is_success() {
            return Err(self.client.error_for(resp, bucket).await);
        }
        let body = self.client.read_body(resp, MAX_LIST_PAGE_BYTES).await?;
        parse_page(&body).map_err(|message| S3Error::BadResponse {
            resource: bucket.clone(),
            message,
        })
    }

    fn entry(&self, key: &str, size: u64) -> Option<Entry> {
        let relative = key.strip_prefix(self.location.key.as_str())?;
        if relative.is_empty() || (relative.ends_with('/') && size == 0) {
            return None;
        }
        let parts = relative.split('/').map(str::to_string).collect();
        let location = S3Location {
            bucket: self.location.bucket.clone(),
            key: key.to_string(),
        };
        let source = S3Source::listed(self.client.clone(), location, size).ok()?;
        Some(Entry::new(parts, Some(size), Arc::new(source)))
    }
}

/// Parses a page, URL-decoding keys when the service says it encoded them.
pub(crate) fn parse_page(body: &[u8]) -> std::result::Result<ListPage, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the listing is not UTF-8".to_string())?;
    let mut page: ListPage =
        quick_xml::de::from_str(text).map_err(|e| format!("ListObjectsV2 XML: {e}"))?;
    if page.encoding_type.as_deref() == Some("url") {
        for o in &mut page.contents {
            // Form encoding: `+` is a space in these keys.
            let plus = o.key.replace('+', " ");
            o.key = percent_encoding::percent_decode_str(&plus)
                .decode_utf8()
                .map_err(|_| format!("key {:?} is not UTF-8", o.key))?
                .into_owned();
        }
    }
    Ok(page)
}

/// Pages still to fetch, keys listed but not yet handed out, and the
/// continuation tokens seen so far.
struct Walk {
    token: Option<String>,
    first: bool,
    ready: VecDeque<Object>,
    seen: HashSet<String>,
    pages: usize,
}

impl Walk {
    /// Takes `page`'s continuation, or says why the listing cannot go on:
    /// a truncated page without a token, a token seen before (a service
    /// that would loop), or more than `max_pages` pages.
    fn follow(&mut self, page: &ListPage, max_pages: usize) -> Result<(), String> {
        self.pages += 1;
        if !page.is_truncated {
            self.token = None;
            return Ok(());
        }
        let Some(next) = page
            .next_continuation_token
            .clone()
            .filter(|t| !t.is_empty())
        else {
            return Err("a truncated listing without a continuation token".into());
        };
        if self.pages >= max_pages {
            return Err(format!("more than {max_pages} pages (s3.max_list_pages)"));
        }
        if !self.seen.insert(next.clone()) {
            return Err(format!(
                "continuation token {:?} sent a second time: the listing would loop",
                next.chars().take(64).collect::<String>()
            ));
        }
        self.token = Some(next);
        Ok(())
    }
}

impl Listing for S3Listing {
    fn identity(&self) -> String {
        format!("s3://{}", self.location.display())
    }

    fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
        let walk = Walk {
            token: None,
            first: true,
            ready: VecDeque::new(),
            seen: HashSet::new(),
            pages: 0,
        };
        let max_pages = self.client.config().max_list_pages;
        futures::stream::unfold(Some(walk), move |walk| async move {
            let mut walk = walk?;
            loop {
                while let Some(o) = walk.ready.pop_front() {
                    if let Some(e) = self.entry(&o.key, o.size) {
                        return Some((Ok(e), Some(walk)));
                    }
                }
                if !walk.first && walk.token.is_none() {
                    return None;
                }
                let page = match self.page(walk.token.as_deref()).await {
                    Ok(p) => p,
                    Err(e) => return Some((Err(e.into()), None)),
                };
                walk.first = false;
                if let Err(message) = walk.follow(&page, max_pages) {
                    let e = S3Error::BadResponse {
                        resource: self.location.bucket.clone(),
                        message,
                    };
                    return Some((Err(e.into()), None));
                }
                walk.ready.extend(page.contents);
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pages_and_decodes_keys() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p%2F</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>p/a+b%2Bc.txt</Key><LastModified>2026-11-21T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/..%2Fevil</Key><Size>3</Size></Contents>
<NextContinuationToken>tok/1=</NextContinuationToken></ListBucketResult>"#;
        let page = parse_page(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("tok/1="));
        let keys: Vec<_> = page
            .contents
            .iter()
            .map(|o| (o.key.as_str(), o.size))
            .collect();
        assert_eq!(keys, [("p/a b+c.txt", 5), ("p/../evil", 3)]);
        let empty = br#"<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert!(parse_page(empty).unwrap().contents.is_empty());
    }

    fn page(truncated: bool, token: Option<&str>) -> ListPage {
        ListPage {
            is_truncated: truncated,
            next_continuation_token: token.map(str::to_string),
            ..ListPage::default()
        }
    }

    fn walk() -> Walk {
        Walk {
            token: None,
            first: true,
            ready: VecDeque::new(),
            seen: HashSet::new(),
            pages: 0,
        }
    }

    #[test]
    fn alternating_tokens_and_too_many_pages_end_the_listing() {
        let mut w = walk();
        w.follow(&page(true, Some("A")), 100).unwrap();
        w.follow(&page(true, Some("B")), 100).unwrap();
        let e = w.follow(&page(true, Some("A")), 100).unwrap_err();
        assert!(e.contains("second time"), "{e}");

        let mut w = walk();
        for t in ["1", "2"] {
            w.follow(&page(true, Some(t)), 3).unwrap();
        }
        let e = w.follow(&page(true, Some("3")), 3).unwrap_err();
        assert!(e.contains("more than 3 pages"), "{e}");

        let mut w = walk();
        assert!(w.follow(&page(true, Some("")), 3).is_err());
        w.follow(&page(false, Some("ignored")), 3).unwrap();
        assert_eq!(w.token, None);
    }
}
