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

use crate::error::from_suppaftp;
use crate::pool::SessionPool;
use crate::source::{remote_path, session_pool};
use crate::{FtpConfig, FtpError, FtpSource};

/// Largest listing of one directory read, in bytes (about 500,000 entries).
pub const MAX_LISTING_BYTES: u64 = 64 << 20;
/// Deepest directory nesting followed below the root.
pub const MAX_DEPTH: usize = 64;
/// Most files listed in one tree.
pub const MAX_ENTRIES: usize = 1_000_000;

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
    /// login directory, ending in `/`, or empty for the login directory).
    async fn list_dir(&self, dir: &str) -> Result<Vec<File>, FtpError> {
        let host = &self.pool.endpoint().host;
        let mut session = self.pool.get().await?;
        let mlsd = session.mlsd;
        let arg = dir.trim_end_matches('/');
        let command = match (mlsd, arg.is_empty()) {
            (true, true) => "MLSD".to_string(),
            (true, false) => format!("MLSD {arg}"),
            (false, true) => "LIST".to_string(),
            (false, false) => format!("LIST {arg}"),
        };
        let mut transfer = session
            .data_command(&command)
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        let mut raw = Vec::new();
        (&mut transfer)
            .take(MAX_LISTING_BYTES + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| FtpError::Connection {
                host: host.clone(),
                message: format!("reading the listing of {dir:?}: {e}"),
                tls_refused: false,
            })?;
        if raw.len() as u64 > MAX_LISTING_BYTES {
            return Err(FtpError::Listing(format!(
                "the listing of {dir:?} is larger than {MAX_LISTING_BYTES} bytes"
            )));
        }
        transfer
            .finish()
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        session.release();
        Ok(parse_listing(&String::from_utf8_lossy(&raw), mlsd))
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

/// Directories still to list, and files listed but not yet handed out.
struct Walk {
    dirs: VecDeque<(Vec<String>, usize)>,
    ready: VecDeque<(Vec<String>, Option<u64>)>,
    listed: usize,
}

impl Listing for FtpListing {
    fn identity(&self) -> String {
        redact_url(&self.url)
    }

    fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
        let walk = Walk {
            dirs: VecDeque::from([(Vec::new(), 0)]),
            ready: VecDeque::new(),
            listed: 0,
        };
        futures::stream::unfold(Some(walk), move |walk| async move {
            let mut walk = walk?;
            loop {
                if let Some((parts, len)) = walk.ready.pop_front() {
                    return Some((Ok(self.entry(parts, len)), Some(walk)));
                }
                let (parts, depth) = walk.dirs.pop_front()?;
                let dir = self.dir_path(&parts);
                let files = match self.list_dir(&dir).await {
                    Ok(f) => f,
                    // The root cannot be listed: nothing to download.
                    Err(e) if parts.is_empty() => return Some((Err(e.into()), None)),
                    // A subdirectory cannot (550 permission denied): report it, list the rest.
                    Err(e) => {
                        let e = dlm_core::Error::from(e).with_context("directory", &dir);
                        return Some((Err(e), Some(walk)));
                    }
                };
                for f in files {
                    walk.listed += 1;
                    if walk.listed > MAX_ENTRIES {
                        let e = FtpError::Listing(format!("more than {MAX_ENTRIES} files"));
                        return Some((Err(e.into()), None));
                    }
                    let mut child = parts.clone();
                    child.push(f.name().to_string());
                    let safe = dlm_core::safe_file_name(f.name()).as_deref() == Some(f.name());
                    if f.is_directory() && safe && depth < MAX_DEPTH {
                        walk.dirs.push_back((child, depth + 1));
                    } else if f.is_directory() && safe {
                        tracing::warn!(dir = %dir, name = %f.name(), "directory too deep: not entered");
                    } else {
                        // Files, and unsafe directory names so the tree reports them as refused.
                        let len = (f.is_file() || f.is_symlink()).then_some(f.size() as u64);
                        walk.ready.push_back((child, len));
                    }
                }
            }
        })
        .boxed()
    }
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
