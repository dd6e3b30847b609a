//! What an IPFS input names: `ipfs://CID[/path]`, `ipns://name[/path]`, a
//! bare CID, or an `/ipfs/CID[/path]` / `/ipns/name[/path]` path.

use std::fmt;

use cid::Cid;
use percent_encoding::percent_decode_str;

use crate::IpfsError;
use crate::block::parse_cid;

/// The root an address starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// Immutable content: a CID.
    Cid(Cid),
    /// A mutable name: an IPNS key (a CID or peer ID of a public key) or a
    /// DNSLink domain.
    Ipns(String),
}

/// A parsed IPFS address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpfsAddress {
    /// Where resolution starts.
    pub root: Root,
    /// Path segments below the root, percent-decoded; never empty, `.` or
    /// `..`.
    pub path: Vec<String>,
}

impl IpfsAddress {
    /// Parses `input`.
    ///
    /// # Errors
    /// [`IpfsError::InvalidAddress`] for another form, an empty root, or a
    /// `.`/`..` segment; [`IpfsError::InvalidCid`] for a bad CID.
    pub fn parse(input: &str) -> Result<Self, IpfsError> {
        let bad = |reason: &str| IpfsError::InvalidAddress {
            input: input.chars().take(200).collect(),
            reason: reason.into(),
        };
        let s = input.trim();
        let s = s.split(['?', '#']).next().unwrap_or_default();
        let lower = s.get(..7).map(str::to_ascii_lowercase);
        let (ipns, rest) = match lower.as_deref() {
            Some("ipfs://") => (false, &s[7..]),
            Some("ipns://") => (true, &s[7..]),
            _ => {
                if let Some(r) = s.strip_prefix("/ipfs/") {
                    (false, r)
                } else if let Some(r) = s.strip_prefix("/ipns/") {
                    (true, r)
                } else if s.contains("://") || s.starts_with('/') {
                    return Err(bad("not ipfs://, ipns://, /ipfs/, /ipns/ or a CID"));
                } else {
                    (false, s)
                }
            }
        };
        let mut parts = rest.split('/');
        let root = parts.next().unwrap_or_default();
        if root.is_empty() {
            return Err(bad("no CID or name"));
        }
        let mut path = Vec::new();
        for p in parts {
            if p.is_empty() {
                continue;
            }
            let seg = percent_decode_str(p)
                .decode_utf8()
                .map_err(|_| bad("a path segment is not UTF-8"))?
                .into_owned();
            if seg == "." || seg == ".." || seg.contains('/') || seg.contains('\0') {
                return Err(bad("a path segment is '.', '..' or holds '/' or NUL"));
            }
            path.push(seg);
        }
        let root = if ipns {
            Root::Ipns(root.to_string())
        } else {
            Root::Cid(parse_cid(root)?)
        };
        Ok(Self { root, path })
    }

    /// Whether `input` looks like an IPFS address (cheap; no CID decoding
    /// beyond the prefix): used to claim scheme-less inputs.
    pub fn looks_like(input: &str) -> bool {
        let s = input.trim();
        if s.starts_with("/ipfs/") || s.starts_with("/ipns/") {
            return true;
        }
        let root = s.split('/').next().unwrap_or_default();
        (root.starts_with("Qm") && root.len() == 46
            || root.starts_with("bafy")
            || root.starts_with("bafk"))
            && parse_cid(root).is_ok()
    }

    /// The last path segment, or `None` at the root.
    pub fn file_name(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }
}

impl fmt::Display for IpfsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Root::Cid(c) => write!(f, "ipfs://{c}")?,
            Root::Ipns(n) => write!(f, "ipns://{n}")?,
        }
        for p in &self.path {
            write!(f, "/{}", percent_encoding::utf8_percent_encode(p, SEGMENT))?;
        }
        Ok(())
    }
}

/// Characters escaped in a displayed path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'#')
    .add(b'?')
    .add(b'%')
    .add(b'/');

#[cfg(test)]
mod tests {
    use super::*;

    const V0: &str = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";
    const V1: &str = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354";

    #[test]
    fn forms() {
        for input in [
            format!("ipfs://{V1}/a/b%20c.txt"),
            format!("IPFS://{V1}/a/b%20c.txt?filename=x"),
            format!("/ipfs/{V1}/a/b c.txt"),
            format!("{V1}/a//b%20c.txt/"),
        ] {
            let a = IpfsAddress::parse(&input).unwrap();
            assert_eq!(a.root, Root::Cid(parse_cid(V1).unwrap()), "{input}");
            assert_eq!(a.path, vec!["a", "b c.txt"], "{input}");
        }
        let a = IpfsAddress::parse(V0).unwrap();
        assert!(a.path.is_empty());
        assert_eq!(a.to_string(), format!("ipfs://{V0}"));
        let n = IpfsAddress::parse("ipns://example.org/docs").unwrap();
        assert_eq!(n.root, Root::Ipns("example.org".into()));
        assert_eq!(n.path, vec!["docs"]);
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for input in [
            format!("ipfs://{V1}/../etc"),
            format!("ipfs://{V1}/a/%2e%2e/b"),
            format!("ipfs://{V1}/a%2Fb"),
            "ipfs://".into(),
            "https://example.org/".into(),
            "ipfs://notacid".into(),
        ] {
            assert!(IpfsAddress::parse(&input).is_err(), "{input}");
        }
        assert!(IpfsAddress::looks_like(V0));
        assert!(IpfsAddress::looks_like(&format!("{V1}/x")));
        assert!(!IpfsAddress::looks_like("Qmfoo"));
    }
}
