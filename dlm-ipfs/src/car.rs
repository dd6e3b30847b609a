//! A streaming CARv1 reader (spec: CARv1, <https://ipld.io/specs/transport/car/carv1/>).
//!
//! A CAR is a varint-prefixed dag-cbor header `{roots: [CID], version: 1}`
//! followed by varint-prefixed sections, each a binary CID and the block's
//! bytes. The reader takes a byte stream (an HTTP body), holds at most one
//! section in memory, and hands out blocks *unverified*: callers check each
//! against its CID ([`crate::block::verify`]) before use.

use bytes::{Buf, Bytes, BytesMut};
use cid::Cid;
use futures::{Stream, StreamExt};

use crate::IpfsError;
use crate::block::{MAX_BLOCK_BYTES, read_cid};

/// The largest CAR header accepted, bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The largest section (CID and block) accepted, bytes.
const MAX_SECTION_BYTES: usize = MAX_BLOCK_BYTES + 256;

/// Reads blocks from a CARv1 byte stream.
pub struct CarReader<S> {
    stream: S,
    buf: BytesMut,
    roots: Vec<Cid>,
    eof: bool,
}

impl<S> std::fmt::Debug for CarReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarReader")
            .field("roots", &self.roots)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<S> CarReader<S>
where
    S: Stream<Item = dlm_core::Result<Bytes>> + Unpin,
{
    /// Reads the header from `stream`.
    ///
    /// # Errors
    /// The stream's errors; [`IpfsError::Car`] (invalid input) for a header
    /// over [`MAX_HEADER_BYTES`], that is not dag-cbor, or whose version is
    /// not 1.
    pub async fn new(stream: S) -> dlm_core::Result<Self> {
        let mut reader = Self {
            stream,
            buf: BytesMut::new(),
            roots: Vec::new(),
            eof: false,
        };
        let header = reader
            .section(MAX_HEADER_BYTES)
            .await?
            .ok_or_else(|| IpfsError::Car("empty stream, no header".into()))?;
        reader.roots = parse_header(&header)?;
        Ok(reader)
    }

    /// The header's roots.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next block, not yet verified; `None` at a clean end.
    ///
    /// # Errors
    /// The stream's errors; [`IpfsError::Car`] for a truncated or malformed
    /// section, [`IpfsError::InvalidCid`] for a bad CID.
    pub async fn next_block(&mut self) -> dlm_core::Result<Option<(Cid, Bytes)>> {
        let Some(mut section) = self.section(MAX_SECTION_BYTES).await? else {
            return Ok(None);
        };
        let (cid, used) = read_cid(&section)?;
        section.advance(used);
        Ok(Some((cid, section)))
    }

    /// One varint-prefixed section of at most `max` bytes; `None` at a clean
    /// end of stream.
    async fn section(&mut self, max: usize) -> dlm_core::Result<Option<Bytes>> {
        let len = loop {
            match unsigned_varint::decode::u64(&self.buf) {
                Ok((len, rest)) => {
                    let used = self.buf.len() - rest.len();
                    self.buf.advance(used);
                    break len;
                }
                Err(e) if !matches!(e, unsigned_varint::decode::Error::Insufficient) => {
                    return Err(IpfsError::Car("bad section length varint".into()).into());
                }
                Err(_) => {
                    if !self.fill().await? {
                        if self.buf.is_empty() {
                            return Ok(None);
                        }
                        return Err(
                            IpfsError::Car("stream ends inside a section length".into()).into()
                        );
                    }
                }
            }
        };
        if len == 0 || len > max as u64 {
            return Err(IpfsError::Car(format!("section of {len} bytes (limit {max})")).into());
        }
        let len = len as usize;
        while self.buf.len() < len {
            if !self.fill().await? {
                return Err(IpfsError::Car(format!(
                    "stream ends inside a {len}-byte section ({} bytes read)",
                    self.buf.len()
                ))
                .into());
            }
        }
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self) -> dlm_core::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.stream.next().await {
            Some(chunk) => {
                self.buf.extend_from_slice(&chunk?);
                Ok(true)
            }
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }
}

/// Parses the dag-cbor header map `{"roots": [CID…], "version": 1}`.
fn parse_header(bytes: &[u8]) -> Result<Vec<Cid>, IpfsError> {
    use ciborium::Value;
    let bad = |reason: &str| IpfsError::Car(format!("header: {reason}"));
    let value: Value = ciborium::from_reader(bytes).map_err(|e| bad(&e.to_string()))?;
    let Value::Map(entries) = value else {
        return Err(bad("not a map"));
    };
    let mut version = None;
    let mut roots = Vec::new();
    for (k, v) in entries {
        match (k.as_text(), v) {
            (Some("version"), Value::Integer(n)) => version = Some(i128::from(n)),
            (Some("roots"), Value::Array(items)) => {
                for item in items {
                    let Value::Tag(42, inner) = item else {
                        return Err(bad("a root is not a CID (tag 42)"));
                    };
                    let Value::Bytes(b) = *inner else {
                        return Err(bad("a root CID is not bytes"));
                    };
                    // Tag-42 CIDs carry the identity multibase prefix 0x00.
                    let Some((0, cid_bytes)) = b.split_first() else {
                        return Err(bad("a root CID lacks its 0x00 prefix"));
                    };
                    let (cid, used) = read_cid(cid_bytes)?;
                    if used != cid_bytes.len() {
                        return Err(bad("bytes after a root CID"));
                    }
                    roots.push(cid);
                }
            }
            _ => {}
        }
    }
    match version {
        Some(1) => Ok(roots),
        Some(v) => Err(bad(&format!("version {v} (only CARv1 is read)"))),
        None => Err(bad("no version")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CARv1 with `roots` and `blocks` (a writer for tests).
    pub(crate) fn write_car(roots: &[Cid], blocks: &[(Cid, Bytes)]) -> Vec<u8> {
        use ciborium::Value;
        let header = Value::Map(vec![
            (
                Value::Text("roots".into()),
                Value::Array(
                    roots
                        .iter()
                        .map(|c| {
                            let mut b = vec![0u8];
                            b.extend(c.to_bytes());
                            Value::Tag(42, Box::new(Value::Bytes(b)))
                        })
                        .collect(),
                ),
            ),
            (Value::Text("version".into()), Value::Integer(1.into())),
        ]);
        let mut h = Vec::new();
        ciborium::into_writer(&header, &mut h).unwrap();
        let mut out = Vec::new();
        push_varint(&mut out, h.len() as u64);
        out.extend(h);
        for (cid, data) in blocks {
            let c = cid.to_bytes();
            push_varint(&mut out, (c.len() + data.len()) as u64);
            out.extend(c);
            out.extend_from_slice(data);
        }
        out
    }

    fn push_varint(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(unsigned_varint::encode::u64(
            v,
            &mut unsigned_varint::encode::u64_buffer(),
        ));
    }

    fn raw(data: &'static [u8]) -> (Cid, Bytes) {
        (crate::block::raw_cid(data), Bytes::from_static(data))
    }

    /// Feeds `bytes` to a reader in pieces of `step` bytes.
    pub(crate) fn chunks(
        bytes: Vec<u8>,
        step: usize,
    ) -> impl Stream<Item = dlm_core::Result<Bytes>> + Unpin {
        let pieces: Vec<_> = bytes
            .chunks(step.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(pieces)
    }

    pub(crate) async fn read_all(
        bytes: Vec<u8>,
        step: usize,
    ) -> dlm_core::Result<(Vec<Cid>, Vec<(Cid, Bytes)>)> {
        let mut r = CarReader::new(chunks(bytes, step)).await?;
        let mut blocks = Vec::new();
        while let Some(b) = r.next_block().await? {
            blocks.push(b);
        }
        Ok((r.roots().to_vec(), blocks))
    }

    #[tokio::test]
    async fn reads_blocks_across_chunk_boundaries() {
        let a = raw(b"first block");
        let b = raw(b"second");
        let car = write_car(&[a.0], &[a.clone(), b.clone()]);
        for step in [1, 3, 7, 1000] {
            let (roots, blocks) = read_all(car.clone(), step).await.unwrap();
            assert_eq!(roots, vec![a.0]);
            assert_eq!(blocks, vec![a.clone(), b.clone()]);
        }
    }

    #[tokio::test]
    async fn truncated_and_bad_versions_are_invalid_input() {
        let a = raw(b"first block");
        let car = write_car(&[a.0], &[a]);
        let cut = car[..car.len() - 3].to_vec();
        let err = read_all(cut, 5).await.unwrap_err();
        assert_eq!(err.kind(), dlm_core::ErrorKind::InvalidInput, "{err}");
        let mut v2 = car.clone();
        // The header's last byte is the version integer.
        let hlen = v2[0] as usize;
        v2[hlen] = 0x02;
        let err = read_all(v2, 64).await.unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
