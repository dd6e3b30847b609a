//! Test files with reproducible pseudo-random content.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Writes `dir/name` with `size_bytes` bytes from a PRNG seeded with `seed` (the same seed gives the same bytes)
/// and returns its SHA-256 as 64 lowercase hex digits. Writes in 1 MiB blocks; the file is readable by everyone
/// (the umask permitting), so nginx workers running as `nobody` can serve it.
///
/// # Errors
///
/// If the file cannot be created or written.
pub fn write_random_file(dir: &Path, name: &str, size_bytes: u64, seed: u64) -> io::Result<String> {
    const BLOCK: u64 = 1 << 20;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = BufWriter::with_capacity(BLOCK as usize, File::create(dir.join(name))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOCK as usize];
    let mut left = size_bytes;
    while left > 0 {
        let n = left.min(BLOCK) as usize;
        rng.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

/// Every file and directory below `dir`, depth first (directories after
/// their contents).
///
/// # Panics
///
/// If a directory cannot be read.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
