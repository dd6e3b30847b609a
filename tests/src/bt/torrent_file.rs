//! Torrent fixtures: payload files with reproducible content and a v1 `.torrent` made by mktorrent 1.1.
//!
//! The info-hash (BEP 3: the SHA-1 of the bencoded `info` value, exactly as it appears in the file) is computed
//! here independently of dlm: a minimal bencode walker finds the byte span of the top-level `info` value and
//! coreutils' `sha1sum` hashes it. The smoke test checks it against what opentracker and the clients accept.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::digest::sha256_file;
use crate::fixture::write_random_file;
use crate::peer::{missing_peer, which};

/// What to make: a single file or a directory tree, its trackers and piece length. Content is pseudo-random
/// from a seed, so the same spec gives the same bytes and the same info-hash.
///
/// # Defaults
///
/// No trackers, 256 KiB pieces (`piece_len_log2 = 18`, mktorrent's default), seed 1.
#[derive(Clone, Debug)]
pub struct TorrentSpec {
    name: String,
    files: Vec<(String, u64)>,
    single: bool,
    tiers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    private: bool,
    piece_len_log2: u8,
    seed: u64,
}

impl TorrentSpec {
    /// A single-file torrent: one file called `name`, `len_bytes` long.
    pub fn single_file(name: &str, len_bytes: u64) -> Self {
        Self::new(name, vec![(name.to_owned(), len_bytes)], true)
    }

    /// A multi-file torrent: a directory `name` holding `files`, each a relative path with `/` between
    /// components (nested directories are created) and a length in bytes. mktorrent lists them in the info
    /// dictionary in its own (sorted) order, which [`TorrentFixture::files`] keeps as given here.
    pub fn multi_file(name: &str, files: &[(&str, u64)]) -> Self {
        let files = files.iter().map(|(p, l)| ((*p).to_owned(), *l)).collect();
        Self::new(name, files, false)
    }

    fn new(name: &str, files: Vec<(String, u64)>, single: bool) -> Self {
        Self {
            name: name.to_owned(),
            files,
            single,
            tiers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            piece_len_log2: 18,
            seed: 1,
        }
    }

    /// Sets the `private` flag (BEP 27, mktorrent's `-p`): peers from the trackers (or given) only, no DHT.
    pub fn with_private(mut self) -> Self {
        self.private = true;
        self
    }

    /// Adds a tracker in a tier of its own (mktorrent's `-a URL`; the first becomes `announce`, all go to
    /// `announce-list`, BEP 12).
    pub fn with_tracker(mut self, url: &str) -> Self {
        self.tiers.push(vec![url.to_owned()]);
        self
    }

    /// Adds a web seed (BEP 19 `url-list`, mktorrent's `-w URL`).
    pub fn with_web_seed(mut self, url: &str) -> Self {
        self.web_seeds.push(url.to_owned());
        self
    }

    /// Adds one tier holding several trackers (mktorrent's `-a URL1,URL2`).
    pub fn with_tier(mut self, urls: &[&str]) -> Self {
        self.tiers
            .push(urls.iter().map(|u| (*u).to_owned()).collect());
        self
    }

    /// The piece length as a power of two: 15 (32 KiB) to 28 (256 MiB), mktorrent's limits.
    ///
    /// # Panics
    ///
    /// Outside 15..=28.
    pub fn with_piece_len_log2(mut self, piece_len_log2: u8) -> Self {
        assert!(
            (15..=28).contains(&piece_len_log2),
            "mktorrent accepts piece lengths 2^15..2^28, not 2^{piece_len_log2}"
        );
        self.piece_len_log2 = piece_len_log2;
        self
    }

    /// The content seed: file `i` (in the order given) is written with seed `seed + i`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Writes the payload under `dir/data/` and the torrent as `dir/<name>.torrent` (no creation date, so the
    /// file is reproducible), and computes the info-hash. `dir` must exist.
    ///
    /// Returns `None` (after `skipping: mktorrent not installed`) when mktorrent is missing.
    ///
    /// # Panics
    ///
    /// When mktorrent is missing under `DLM_REQUIRE_PEERS=1`, a file cannot be written, or mktorrent fails.
    pub fn create(&self, dir: &Path) -> Option<TorrentFixture> {
        let Some(mktorrent) = which("mktorrent") else {
            return missing_peer("mktorrent (apt-get install mktorrent)");
        };
        let (data_dir, root, files) = self.write_payload(dir);
        let torrent_path = dir.join(format!("{}.torrent", self.name));
        let mut command = Command::new(mktorrent);
        command.arg("-d").arg("-t").arg("2");
        command.arg("-l").arg(self.piece_len_log2.to_string());
        for tier in &self.tiers {
            command.arg("-a").arg(tier.join(","));
        }
        if self.private {
            command.arg("-p");
        }
        if !self.web_seeds.is_empty() {
            command.arg("-w").arg(self.web_seeds.join(","));
        }
        command
            .arg("-n")
            .arg(&self.name)
            .arg("-o")
            .arg(&torrent_path)
            .arg(&root);
        let out = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run mktorrent: {e}"));
        assert!(
            out.status.success(),
            "mktorrent failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = fs::read(&torrent_path).expect("read the new .torrent");
        let info_hash = info_hash_of(&bytes)
            .unwrap_or_else(|e| panic!("info-hash of {}: {e}", torrent_path.display()));
        Some(self.fixture(torrent_path, data_dir, info_hash, files))
    }

    /// Like [`TorrentSpec::create`], but the `.torrent` is made by libtorrent's creator
    /// (`tests/peers/lt_make_torrent.py`): BitTorrent v2 only or hybrid v1+v2 (BEP 52; a hybrid multi-file torrent
    /// has BEP 47 padding files). The piece length and trackers apply; web seeds and `private` do not.
    /// [`TorrentFixture::info_hash`] is the 20-byte info-hash the swarm uses: for a v2-only torrent the SHA-256
    /// of the `info` bytes truncated to 20 bytes, for a hybrid the SHA-1.
    ///
    /// Returns `None` (after `skipping: …`) when the libtorrent bindings are missing.
    ///
    /// # Panics
    ///
    /// When the bindings are missing under `DLM_REQUIRE_PEERS=1`, a file cannot be written, or the script fails.
    pub fn create_with_libtorrent(
        &self,
        dir: &Path,
        format: LtTorrentFormat,
    ) -> Option<TorrentFixture> {
        let Some(python) = super::libtorrent::libtorrent_python() else {
            return missing_peer("libtorrent python bindings (pip install libtorrent)");
        };
        let (data_dir, root, files) = self.write_payload(dir);
        let torrent_path = dir.join(format!("{}.torrent", self.name));
        let mut command = Command::new(python);
        command
            .arg(LT_MAKE_TORRENT_SCRIPT)
            .arg("--format")
            .arg(match format {
                LtTorrentFormat::V2Only => "v2",
                LtTorrentFormat::Hybrid => "hybrid",
            })
            .arg("--piece-length")
            .arg((1u64 << self.piece_len_log2).to_string());
        for url in self.tiers.iter().flatten() {
            command.arg("--tracker").arg(url);
        }
        let out = command
            .arg(&root)
            .arg(&torrent_path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run lt_make_torrent.py: {e}"));
        assert!(
            out.status.success(),
            "lt_make_torrent.py failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = fs::read(&torrent_path).expect("read the new .torrent");
        let info_hash = match format {
            LtTorrentFormat::Hybrid => info_hash_of(&bytes),
            LtTorrentFormat::V2Only => info_hash_v2_of(&bytes).map(|h| {
                let mut short = [0u8; 20];
                short.copy_from_slice(&h[..20]);
                short
            }),
        }
        .unwrap_or_else(|e| panic!("info-hash of {}: {e}", torrent_path.display()));
        Some(self.fixture(torrent_path, data_dir, info_hash, files))
    }

    /// The fixture of a `.torrent` made from this spec.
    fn fixture(
        &self,
        torrent_path: PathBuf,
        data_dir: PathBuf,
        info_hash: [u8; 20],
        files: Vec<FixtureFile>,
    ) -> TorrentFixture {
        TorrentFixture {
            torrent_path,
            data_dir,
            name: self.name.clone(),
            single_file: self.single,
            info_hash,
            total_len: files.iter().map(|f| f.len).sum(),
            files,
            piece_len: 1 << self.piece_len_log2,
            trackers: self.tiers.iter().flatten().cloned().collect(),
        }
    }

    /// Writes the payload under `dir/data/`: the data dir, the payload's root (file or directory), the files.
    fn write_payload(&self, dir: &Path) -> (PathBuf, PathBuf, Vec<FixtureFile>) {
        let data_dir = dir.join("data");
        let root = data_dir.join(&self.name);
        let mut files = Vec::new();
        for (i, (rel, len)) in self.files.iter().enumerate() {
            let path = if self.single {
                root.clone()
            } else {
                root.join(rel)
            };
            let parent = path.parent().expect("a payload file has a parent");
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
            let file_name = path.file_name().expect("file name").to_string_lossy();
            let sha256 = write_random_file(parent, &file_name, *len, self.seed + i as u64)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            files.push(FixtureFile {
                path: rel.clone(),
                len: *len,
                sha256,
            });
        }
        (data_dir, root, files)
    }
}

/// The script behind [`TorrentSpec::create_with_libtorrent`].
pub const LT_MAKE_TORRENT_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/peers/lt_make_torrent.py");

/// Which hashes a libtorrent-made `.torrent` carries (BEP 52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LtTorrentFormat {
    /// `meta version` 2 only (`create_torrent.v2_only`): `file tree` and `piece layers`, no `pieces`.
    V2Only,
    /// libtorrent's default: v1 `pieces` (with BEP 47 padding files) and the v2 hashes.
    Hybrid,
}

/// One payload file of a [`TorrentFixture`].
#[derive(Clone, Debug)]
pub struct FixtureFile {
    /// The path inside the torrent, `/`-separated (for a single-file torrent, the torrent's name).
    pub path: String,
    /// The length in bytes.
    pub len: u64,
    /// The SHA-256 of the content, 64 lowercase hex digits.
    pub sha256: String,
}

/// A `.torrent` and its payload, made by [`TorrentSpec::create`].
#[derive(Clone, Debug)]
pub struct TorrentFixture {
    /// The `.torrent` file.
    pub torrent_path: PathBuf,
    /// The directory holding the payload: a client's save path / download dir (the payload is
    /// `data_dir/<name>`, a file or a directory).
    pub data_dir: PathBuf,
    /// The torrent's `name`.
    pub name: String,
    /// Whether this is a single-file torrent (`length` in `info`) rather than a multi-file one (`files`).
    pub single_file: bool,
    /// The v1 info-hash: SHA-1 of the bencoded `info` value.
    pub info_hash: [u8; 20],
    /// The payload files in the order of the spec.
    pub files: Vec<FixtureFile>,
    /// The sum of the file lengths, in bytes.
    pub total_len: u64,
    /// The piece length, in bytes.
    pub piece_len: u64,
    /// Every tracker URL, tiers flattened.
    pub trackers: Vec<String>,
}

impl TorrentFixture {
    /// The info-hash as 40 lowercase hex digits.
    pub fn info_hash_hex(&self) -> String {
        hex::encode(self.info_hash)
    }

    /// The number of pieces: `ceil(total_len / piece_len)`.
    pub fn num_pieces(&self) -> u64 {
        self.total_len.div_ceil(self.piece_len)
    }

    /// The `.torrent` file's bytes.
    ///
    /// # Panics
    ///
    /// If the file cannot be read.
    pub fn torrent_bytes(&self) -> Vec<u8> {
        fs::read(&self.torrent_path).expect("read .torrent")
    }

    /// A magnet link (BEP 9): `magnet:?xt=urn:btih:<hex>&dn=<name>` plus one `tr=` per tracker.
    pub fn magnet(&self) -> String {
        let mut out = format!(
            "magnet:?xt=urn:btih:{}&dn={}",
            self.info_hash_hex(),
            percent_encode_bytes(self.name.as_bytes())
        );
        for tracker in &self.trackers {
            let _ = write!(out, "&tr={}", percent_encode_bytes(tracker.as_bytes()));
        }
        out
    }

    /// Where file `file` lands when the torrent is downloaded into `dir` (`dir/<name>` for a single file,
    /// `dir/<name>/<path>` otherwise).
    pub fn file_path_in(&self, dir: &Path, file: &FixtureFile) -> PathBuf {
        if self.single_file {
            dir.join(&self.name)
        } else {
            dir.join(&self.name).join(&file.path)
        }
    }

    /// Checks that `dir` holds the whole payload byte for byte (by SHA-256 of each file).
    ///
    /// # Errors
    ///
    /// A message naming the first file that is missing or differs.
    pub fn check_download(&self, dir: &Path) -> Result<(), String> {
        for file in &self.files {
            let path = self.file_path_in(dir, file);
            let got = sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if got != file.sha256 {
                return Err(format!(
                    "{} differs from the payload (sha256 {got}, want {})",
                    path.display(),
                    file.sha256
                ));
            }
        }
        Ok(())
    }
}

/// `%XX` for every byte that is not an RFC 3986 unreserved character (what trackers expect for `info_hash`).
pub fn percent_encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The v1 info-hash of a `.torrent`: the SHA-1 of the exact bytes of the top-level `info` value, found by
/// walking the bencode here (independently of dlm's parser).
///
/// # Errors
///
/// If the bytes are not a bencoded dictionary with an `info` key.
pub fn info_hash_of(torrent: &[u8]) -> io::Result<[u8; 20]> {
    use sha1::Digest;
    let span = info_span(torrent)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bencode: {e}")))?;
    Ok(sha1::Sha1::digest(&torrent[span.0..span.1]).into())
}

/// The v2 info-hash of a `.torrent` (BEP 52): the SHA-256 of the exact bytes of the top-level `info` value.
///
/// # Errors
///
/// If the bytes are not a bencoded dictionary with an `info` key.
pub fn info_hash_v2_of(torrent: &[u8]) -> io::Result<[u8; 32]> {
    use sha2::Digest;
    let span = info_span(torrent)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bencode: {e}")))?;
    Ok(sha2::Sha256::digest(&torrent[span.0..span.1]).into())
}

/// The byte span `[start, end)` of the top-level dictionary's `info` value.
fn info_span(b: &[u8]) -> Result<(usize, usize), String> {
    if b.first() != Some(&b'd') {
        return Err("not a dictionary".into());
    }
    let mut i = 1;
    while b.get(i) != Some(&b'e') {
        let (key_start, key_end) = string_span(b, i)?;
        let value_start = key_end;
        let value_end = skip_value(b, value_start)?;
        if &b[key_start..key_end] == b"info" {
            return Ok((value_start, value_end));
        }
        i = value_end;
    }
    Err("no info key".into())
}

/// The content span of the byte string at `i` (`<len>:<bytes>`); its end is where the next value starts.
fn string_span(b: &[u8], i: usize) -> Result<(usize, usize), String> {
    let colon = b[i..]
        .iter()
        .position(|&c| c == b':')
        .map(|p| i + p)
        .ok_or("unterminated string length")?;
    let len: usize = std::str::from_utf8(&b[i..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad string length at {i}"))?;
    let end = colon + 1 + len;
    if end > b.len() {
        return Err(format!("string at {i} runs past the end"));
    }
    Ok((colon + 1, end))
}

/// The offset just past the value that starts at `i`.
fn skip_value(b: &[u8], i: usize) -> Result<usize, String> {
    match b.get(i) {
        Some(b'i') => b[i..]
            .iter()
            .position(|&c| c == b'e')
            .map(|p| i + p + 1)
            .ok_or_else(|| format!("unterminated integer at {i}")),
        Some(b'l' | b'd') => {
            let mut j = i + 1;
            while b.get(j) != Some(&b'e') {
                if j >= b.len() {
                    return Err(format!("unterminated list or dictionary at {i}"));
                }
                j = skip_value(b, j)?;
            }
            Ok(j + 1)
        }
        Some(b'0'..=b'9') => string_span(b, i).map(|(_, end)| end),
        Some(c) => Err(format!("unexpected byte {c:#04x} at {i}")),
        None => Err(format!("truncated at {i}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_span_finds_the_info_value() {
        let t = b"d8:announce3:abc4:infod6:lengthi5e4:name1:xe5:otherli1eee";
        let (s, e) = info_span(t).unwrap();
        assert_eq!(&t[s..e], b"d6:lengthi5e4:name1:xe");
    }

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent_encode_bytes(b"aZ9-._~ /\x01"), "aZ9-._~%20%2F%01");
    }
}
