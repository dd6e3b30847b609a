//! `dlm get -i FILE`: one input per line, as aria2's input file has them.
//!
//! ```text
//! # comments and blank lines are skipped
//! https://example.org/a.iso<TAB>https://mirror.example.net/a.iso
//!   dir=isos
//!   out=debian.iso
//!   checksum=sha-256=9f86d08…
//! magnet:?xt=urn:btih:…
//!   select-file=1,3
//!   bittorrent.max_peers=80
//! ```
//!
//! A line that starts with neither a space nor a tab is an input; tabs
//! (`<TAB>` above) separate mirrors of the same bytes. The indented `KEY=VALUE` lines below
//! it are its options: `dir`, `out`, `checksum`, `select-file`,
//! `connections` (aria2's `split` too), `limit-rate`
//! (`max-download-limit`), or a protocol setting `SECTION.KEY=VALUE`.

use std::path::PathBuf;

use dlm_core::Options;

/// Largest input file read, bytes.
pub(crate) const MAX_INPUT_FILE_BYTES: u64 = 16 << 20;

/// One input with its own options.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Job {
    /// What to download.
    pub(crate) input: String,
    /// Other sources of the same bytes.
    pub(crate) mirrors: Vec<String>,
    /// Output directory for this input (`dir=`).
    pub(crate) dir: Option<PathBuf>,
    /// Output file name or path for this input (`out=`).
    pub(crate) out: Option<PathBuf>,
    /// Expected digest, `ALGO=HEX`.
    pub(crate) checksum: Option<String>,
    /// Files to fetch, 0-based.
    pub(crate) selected: Option<Vec<usize>>,
    /// Connections.
    pub(crate) connections: Option<u32>,
    /// Rate limit, bytes/s.
    pub(crate) limit_rate: Option<u64>,
    /// Protocol settings for this input only.
    pub(crate) settings: Options,
}

impl Job {
    /// A job for `input` with no options of its own.
    pub(crate) fn new(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            ..Self::default()
        }
    }
}

/// Parses an input file's text.
///
/// # Errors
/// The line number and what is wrong: an option before any input, an
/// option that is not `KEY=VALUE`, an unknown key, a bad value.
pub(crate) fn parse(text: &str) -> Result<Vec<Job>, String> {
    let mut jobs: Vec<Job> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let mut parts = line.split('\t').map(str::trim).filter(|p| !p.is_empty());
            let mut job = Job::new(parts.next().unwrap_or_default());
            job.mirrors = parts.map(str::to_string).collect();
            jobs.push(job);
            continue;
        }
        let job = jobs
            .last_mut()
            .ok_or_else(|| format!("line {n}: an option before any input"))?;
        let (k, v) = line
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("line {n}: {:?} is not KEY=VALUE", line.trim()))?;
        let (k, v) = (k.trim(), v.trim());
        let bad = |e: String| format!("line {n}: {k}: {e}");
        match k {
            "dir" => job.dir = Some(PathBuf::from(v)),
            "out" => job.out = Some(PathBuf::from(v)),
            "checksum" => job.checksum = Some(v.to_string()),
            "select-file" => {
                job.selected = Some(
                    dlm_examples::protocols::flags::parse_file_list(v)
                        .map_err(bad)?
                        .0,
                );
            }
            "connections" | "split" => {
                job.connections = Some(v.parse().map_err(|e| bad(format!("{e}")))?);
            }
            "limit-rate" | "max-download-limit" => {
                job.limit_rate = Some(dlm_examples::size::parse_size(v).map_err(bad)?);
            }
            k if k.contains('.') => {
                job.settings = std::mem::take(&mut job.settings).with(k, v);
            }
            other => return Err(format!("line {n}: unknown option {other:?}")),
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_mirrors_and_options() {
        let jobs = parse(
            "# a comment\n\
             https://a/x.iso\thttps://b/x.iso\n\
             \x20 dir=isos\n\
             \tout=debian.iso\n\
             \x20 checksum=sha-256=00\n\
             \n\
             ftp://h/dir/\n\
             \x20 select-file=1,3-4\n\
             \x20 split=4\n\
             \x20 max-download-limit=1M\n\
             \x20 ftp.active=true\n",
        )
        .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].input, "https://a/x.iso");
        assert_eq!(jobs[0].mirrors, vec!["https://b/x.iso"]);
        assert_eq!(jobs[0].dir, Some(PathBuf::from("isos")));
        assert_eq!(jobs[0].out, Some(PathBuf::from("debian.iso")));
        assert_eq!(jobs[0].checksum.as_deref(), Some("sha-256=00"));
        assert_eq!(jobs[1].selected, Some(vec![0, 2, 3]));
        assert_eq!(jobs[1].connections, Some(4));
        assert_eq!(jobs[1].limit_rate, Some(1 << 20));
        assert_eq!(jobs[1].settings.get("ftp.active"), Some("true"));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse("  dir=x\n").unwrap_err().contains("line 1"));
        assert!(parse("u\n  nokey\n").unwrap_err().contains("line 2"));
        assert!(parse("u\n  colour=red\n").unwrap_err().contains("colour"));
        assert!(parse("u\n  split=many\n").unwrap_err().contains("split"));
    }
}
