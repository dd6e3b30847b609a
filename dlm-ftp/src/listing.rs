//! `FtpListing`: a directory tree on an FTP server, listed recursively with
//! `MLSD` (RFC 3659 §7) when `FEAT` offers `MLST`, else by parsing `LIST`
//! output (Unix `ls -l` and DOS/Windows formats).

use std::collections::VecDeque;
use std::sync::Arc;

use dlm_core::{Context, Entry, Listing, Result, redact_url};
use futures::StreamExt;
use futures::stream::BoxStream;
use suppaftp::list::{File, ListParser};
use tokio::io::AsyncReadExt;
use url::Url;

use crate::pool::SessionPool;
use crate::session::within;
use crate::source::{remote_path, session_pool};
use crate::{FtpConfig, FtpError, FtpSource};

/// Default of [`FtpConfig::max_listing_bytes`]: the largest listing of one
/// directory read, in bytes (64 MiB, about 500,000 entries).
pub const MAX_LISTING_BYTES: u64 = 64 << 20;
/// Default of [`FtpConfig::max_tree_depth`]: the deepest directory nesting
/// followed below the root (64).
pub const MAX_DEPTH: usize = 64;
/// Default of [`FtpConfig::max_tree_entries`]: the most entries (files and
/// directories) listed in one tree (1,000,000).
pub const MAX_ENTRIES: usize = 1_000_000;
/// Default of [`FtpConfig::max_path_bytes`]: the longest entry path below
/// the root, bytes (4,096, Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Default of [`FtpConfig::max_tree_bytes`]: listing bytes read plus entry
/// path bytes made, for one tree (512 MiB).
pub const MAX_TREE_BYTES: u64 = 512 << 20;

/// An `ftp://host/dir/` URL (the path ends in `/`) as a [`Listing`]: every
/// file below `dir`, with paths relative to it. The files share the
/// listing's pool of control connections, so a tree of small files costs one
/// login per connection, not one per file.
///
/// Names come from the server and are not trusted here: the
/// [`TreeDownload`](dlm_core::TreeDownload) refuses any that could leave the
/// destination. Directories with such names are not entered. Symbolic links
/// are downloaded as files (the server follows them); one that points to a
/// directory fails as that file.
#[derive(Debug)]
pub struct FtpListing {
    url: Url,
    root: String,
    pool: Arc<SessionPool>,
}

impl FtpListing {
    /// A listing of the directory `url` names.
    ///
    /// # Errors
    /// [`FtpError::InvalidUrl`] for a URL without host, or whose path does
    /// not end in `/`; [`FtpError::Tls`] and [`FtpError::Netrc`] as for
    /// [`FtpSource::new`].
    pub fn new(url: Url, config: FtpConfig) -> Result<Self, FtpError> {
        if !is_directory_url(&url) {
            return Err(FtpError::InvalidUrl(format!(
                "{}: a directory URL ends in /",
                redact_url(&url)
            )));
        }
        let pool = session_pool(&url, &config)?;
        let root = remote_path(&url);
        Ok(Self { url, root, pool })
    }

    fn dir_path(&self, parts: &[String]) -> String {
        let mut path = self.root.clone();
        for p in parts {
            path.push_str(p);
            path.push('/');
        }
        path
    }

    fn entry(&self, parts: Vec<String>, len: Option<u64>) -> Entry {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(parts.iter());
        }
        let path = format!("{}{}", self.root, parts.join("/"));
        let source = FtpSource::in_pool(url, path, self.pool.clone());
        Entry::new(parts, len, Arc::new(source))
    }

    /// The files and directories directly in `dir` (a path relative to the
    /// login directory, ending in `/`, or empty for the login directory),
    /// and the bytes of listing read.
    async fn list_dir(&self, dir: &str) -> Result<(Vec<File>, u64), FtpError> {
        let host = &self.pool.endpoint().host;
        let config = self.pool.config();
        let mut session = self.pool.get().await?;
        let mlsd = session.mlsd;
        let arg = dir.trim_end_matches('/');
        let command = match (mlsd, arg.is_empty()) {
            (true, true) => "MLSD".to_string(),
            (true, false) => format!("MLSD {arg}"),
            (false, true) => "LIST".to_string(),
            (false, false) => format!("LIST {arg}"),
        };
        let mut transfer = within(config, host, &command, session.data_command(&command)).await?;
        let max = config.max_listing_bytes;
        let mut raw = Vec::new();
        loop {
            let room = (max + 1).saturating_sub(raw.len() as u64);
            let mut limited = (&mut transfer).take(room);
            let n = tokio::time::timeout(config.idle_timeout, limited.read_buf(&mut raw))
                .await
                .map_err(|_| FtpError::IdleTimeout {
                    host: host.clone(),
                    secs: config.idle_timeout.as_secs(),
                })?
                .map_err(|e| FtpError::Connection {
                    host: host.clone(),
                    message: format!("reading the listing of {dir:?}: {e}"),
                    tls_refused: false,
                })?;
            if raw.len() as u64 > max {
                return Err(FtpError::Listing(format!(
                    "the listing of {dir:?} is larger than {max} bytes"
                )));
            }
            if n == 0 {
                break;
            }
        }
        within(config, host, "the end of a listing", transfer.finish()).await?;
        session.release();
        let read = raw.len() as u64;
        Ok((parse_listing(&String::from_utf8_lossy(&raw), mlsd), read))
    }
}

/// Parses a listing: `MLSD` facts lines, or `LIST` lines in Unix or DOS
/// format. Lines that parse as neither (`total 12`), the directory itself
/// and its parent (`.`, `..`, MLSD `cdir`/`pdir`) are left out.
pub(crate) fn parse_listing(text: &str, mlsd: bool) -> Vec<File> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let facts = l.split(' ').next().unwrap_or("").to_ascii_lowercase();
            !(mlsd && (facts.contains("type=cdir;") || facts.contains("type=pdir;")))
        })
        .filter_map(|l| {
            let parsed = if mlsd {
                ListParser::parse_mlsd(l)
            } else {
                ListParser::parse_posix(l).or_else(|_| ListParser::parse_dos(l))
            };
            match parsed {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::debug!(line = %l, error = ?e, "listing line skipped");
                    None
                }
            }
        })
        .filter(|f| f.name() != "." && f.name() != "..")
        .collect()
}

/// A path below the root, shared by every entry listed in it: `parent`
/// then `name` (the root has neither).
#[derive(Debug)]
struct Node {
    parent: Option<Arc<Node>>,
    name: String,
    /// Bytes of the `/`-joined path.
    len: usize,
    depth: usize,
}

impl Node {
    fn root() -> Arc<Self> {
        Arc::new(Self {
            parent: None,
            name: String::new(),
            len: 0,
            depth: 0,
        })
    }

    fn child(self: &Arc<Self>, name: String) -> Node {
        let sep = usize::from(self.depth > 0);
        Node {
            parent: Some(self.clone()),
            len: self.len + sep + name.len(),
            depth: self.depth + 1,
            name,
        }
    }

    /// The path's segments, root first.
    fn parts(&self) -> Vec<String> {
        let mut parts = Vec::with_capacity(self.depth);
        let mut at = Some(self);
        while let Some(n) = at {
            if n.depth > 0 {
                parts.push(n.name.clone());
            }
            at = n.parent.as_deref();
        }
        parts.reverse();
        parts
    }
}

/// Directories still to list, files listed but not yet handed out, and the
/// budgets used so far.
struct Walk {
    dirs: VecDeque<Arc<Node>>,
    ready: VecDeque<(Node, Option<u64>)>,
    listed: usize,
    bytes: u64,
}

impl Listing for FtpListing {
    fn identity(&self) -> String {
        redact_url(&self.url)
    }

    fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
        let walk = Walk {
            dirs: VecDeque::from([Node::root()]),
            ready: VecDeque::new(),
            listed: 0,
            bytes: 0,
        };
        let config = self.pool.config();
        futures::stream::unfold(Some(walk), move |walk| async move {
            let mut walk = walk?;
            loop {
                if let Some((node, len)) = walk.ready.pop_front() {
                    return Some((Ok(self.entry(node.parts(), len)), Some(walk)));
                }
                let node = walk.dirs.pop_front()?;
                let parts = node.parts();
                let dir = self.dir_path(&parts);
                let (files, read) = match self.list_dir(&dir).await {
                    Ok(f) => f,
                    // The root cannot be listed: nothing to download.
                    Err(e) if parts.is_empty() => return Some((Err(e.into()), None)),
                    // A subdirectory cannot (550 permission denied): report it, list the rest.
                    Err(e) => {
                        let e = dlm_core::Error::from(e).with_context("directory", &dir);
                        return Some((Err(e), Some(walk)));
                    }
                };
                walk.bytes += read;
                let mut refused = Vec::new();
                for f in files {
                    walk.listed += 1;
                    let child = node.child(f.name().to_string());
                    walk.bytes += child.len as u64;
                    if let Some(e) = over_tree_budget(config, walk.listed, walk.bytes) {
                        return Some((Err(e.into()), None));
                    }
                    if child.len > config.max_path_bytes {
                        refused.push(FtpError::Listing(format!(
                            "{dir}{}: the path is longer than {} bytes",
                            truncated(f.name()),
                            config.max_path_bytes
                        )));
                        continue;
                    }
                    let safe = dlm_core::safe_file_name(f.name()).as_deref() == Some(f.name());
                    if f.is_directory() && safe && node.depth < config.max_tree_depth {
                        walk.dirs.push_back(Arc::new(child));
                    } else if f.is_directory() && safe {
                        refused.push(FtpError::Listing(format!(
                            "{dir}{}: deeper than {} directories",
                            truncated(f.name()),
                            config.max_tree_depth
                        )));
                    } else {
                        // Files, and unsafe directory names so the tree reports them as refused.
                        let len = (f.is_file() || f.is_symlink()).then_some(f.size() as u64);
                        walk.ready.push_back((child, len));
                    }
                }
                if let Some(first) = refused.first() {
                    // One report per directory; the rest of the tree is still listed.
                    let e = match refused.len() {
                        1 => first.to_string(),
                        n => format!("{first} (and {} more entries of {dir:?})", n - 1),
                    };
                    return Some((Err(FtpError::Listing(e).into()), Some(walk)));
                }
            }
        })
        .boxed()
    }
}

/// The error that ends a listing over its entry or byte budget, if any.
fn over_tree_budget(config: &FtpConfig, listed: usize, bytes: u64) -> Option<FtpError> {
    if listed > config.max_tree_entries {
        return Some(FtpError::Listing(format!(
            "more than {} entries in the tree (ftp.max_tree_entries)",
            config.max_tree_entries
        )));
    }
    if bytes > config.max_tree_bytes {
        return Some(FtpError::Listing(format!(
            "more than {} bytes of listings and paths in the tree (ftp.max_tree_bytes)",
            config.max_tree_bytes
        )));
    }
    None
}

/// At most 100 characters of a name, for messages.
fn truncated(name: &str) -> String {
    name.chars().take(100).collect()
}

/// Whether `url` names a directory: its server path (see `remote_path`)
/// is empty (the login directory, `ftp://host/` or `ftps://host`) or ends
/// in `/`. The one test the protocol, listings and sources all use.
pub(crate) fn is_directory_url(url: &Url) -> bool {
    let path = remote_path(url);
    path.is_empty() || path.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_urls_are_told_apart_from_files() {
        let dir = |u: &str| is_directory_url(&Url::parse(u).unwrap());
        assert!(dir("ftp://h/") && dir("ftp://h/pub/") && dir("ftps://h"));
        assert!(
            dir("ftp://h/pub%2F"),
            "an encoded slash ends the decoded path"
        );
        assert!(!dir("ftp://h/pub/file.iso") && !dir("ftps://h/a"));
    }

    #[test]
    fn parses_unix_dos_and_mlsd_listings() {
        let unix = "total 8\r\n\
            drwxr-xr-x    2 0        0            4096 Nov 21 10:00 sub dir\r\n\
            -rw-r--r--    1 0        0             123 Nov 21 10:00 a file.bin\r\n\
            drwxr-xr-x    2 0        0            4096 Nov 21 10:00 .\r\n\
            drwxr-xr-x    2 0        0            4096 Nov 21 10:00 ..\r\n";
        let files = parse_listing(unix, false);
        let names: Vec<_> = files
            .iter()
            .map(|f| (f.name(), f.is_directory(), f.size()))
            .collect();
        assert_eq!(names, [("sub dir", true, 4096), ("a file.bin", false, 123)]);

        let dos = "11-21-26  10:00AM       <DIR>          Docs\r\n11-21-26  10:00AM                 5120 r.txt\r\n";
        let files = parse_listing(dos, false);
        let names: Vec<_> = files.iter().map(|f| (f.name(), f.is_directory())).collect();
        assert_eq!(names, [("Docs", true), ("r.txt", false)]);

        let mlsd = "type=cdir;modify=20261121100000; /pub\r\n\
            type=pdir;modify=20261121100000; /\r\n\
            type=file;size=42;modify=20261121100000; ../evil\r\n\
            type=dir;modify=20261121100000; nested\r\n";
        let files = parse_listing(mlsd, true);
        let names: Vec<_> = files.iter().map(|f| (f.name(), f.is_directory())).collect();
        assert_eq!(names, [("../evil", false), ("nested", true)]);
    }
}
