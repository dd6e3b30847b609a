//! `MultiFileSink`: one byte space laid over several files (a torrent's
//! files in metainfo order, BEP 3), with unwanted files' bytes kept aside
//! and padding (gaps between the files) never stored.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

use crate::{ByteRange, DigestAlgorithm, Error, ErrorKind, Result, Sink, stays_inside};

/// One file of the byte space.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSpan {
    /// Relative path below the sink's directory (must stay inside it).
    pub path: PathBuf,
    /// Offset of its first byte in the byte space.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Whether the user wants this file. Bytes of unwanted files (pieces
    /// shared with wanted ones must still be fetched and verified) go to the
    /// parts file instead, which [`Sink::commit`] deletes.
    pub wanted: bool,
}

/// Copies `len` bytes at `offset` of `from` to the start of `to`, as far as
/// `from` reaches (a sparse parts file reads its holes as zeros).
fn copy_range(from: &File, offset: u64, to: &File, len: u64) -> std::io::Result<()> {
    let available = from.metadata()?.len().saturating_sub(offset).min(len);
    let mut buf = vec![0u8; (1 << 20).min(available as usize)];
    let mut done = 0;
    while done < available {
        let n = buf.len().min((available - done) as usize);
        from.read_exact_at(&mut buf[..n], offset + done)?;
        to.write_all_at(&buf[..n], done)?;
        done += n as u64;
    }
    Ok(())
}

impl FileSpan {
    fn range(&self) -> ByteRange {
        ByteRange::new(self.offset, self.offset + self.len)
    }
}

/// Files a [`MultiFileSink`] keeps open at once unless told otherwise
/// ([`MultiFileSink::with_max_open_files`]); libtorrent's file pool holds 40.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

/// [`DEFAULT_MAX_OPEN_FILES`], or an eighth of the process's limit on open
/// files when that is lower (sockets and other downloads need the rest).
fn default_max_open() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    DEFAULT_MAX_OPEN_FILES.min(usize::try_from(limit / 8).unwrap_or(usize::MAX).max(4))
}

/// The wanted files' open handles, least recently used first, and the ones
/// written since the last sync (open or not: a closed file's written pages
/// are still the inode's, and an fsync through a new handle flushes them).
#[derive(Debug, Default)]
struct OpenFiles {
    lru: VecDeque<(usize, Arc<File>)>,
    dirty: BTreeSet<usize>,
}

/// Where a piece of the byte space is stored.
#[derive(Clone, Copy, Debug)]
enum Place {
    File(usize),
    Parts,
}

/// Writes a byte space positionally across files under one directory.
///
/// Wanted files are written in place under their final names (as
/// BitTorrent clients do: a partial torrent is browsable). Bytes of unwanted
/// files go to a sparse *parts file*, `DIR/.NAME.parts`, at their byte-space
/// offsets, so a piece that straddles a wanted and an unwanted file can be
/// read back whole for verification and seeding. Files are created at
/// [`Sink::prepare`] with their final length (sparse). At most
/// [`DEFAULT_MAX_OPEN_FILES`] of them (fewer under a low `RLIMIT_NOFILE`:
/// an eighth of it) are open at once, the least recently used closed first,
/// so a torrent of more files than the process may open still downloads.
///
/// Gaps between the spans (and after the last one, up to
/// [`MultiFileSink::with_len`]) are *padding*: BEP 47 padding files and
/// BEP 52's alignment gaps, whose content is zeros by definition. They are
/// never written (writes there are dropped), read as zeros, count as held
/// by [`Sink::stored_ranges`], and no file is created for them.
#[derive(Debug)]
pub struct MultiFileSink {
    dir: PathBuf,
    files: Vec<FileSpan>,
    len: Option<u64>,
    parts: PathBuf,
    open: Mutex<OpenFiles>,
    max_open: usize,
    parts_file: Mutex<Option<Arc<File>>>,
    /// [`Sink::commit`] fsyncs every written file first.
    commit_sync: bool,
}

impl MultiFileSink {
    /// A sink for `files` (in byte-space order, from 0, not overlapping; a
    /// gap between two is padding) under `dir`; `name` names the parts file.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when a path would leave `dir`, or the
    /// spans overlap or are out of order.
    pub fn new(dir: PathBuf, name: &str, files: Vec<FileSpan>) -> Result<Self> {
        let mut at = 0;
        for f in &files {
            if !stays_inside(&f.path) || f.path.as_os_str().is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} would leave the download directory", f.path.display()),
                ));
            }
            if f.offset < at {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} starts at {}, before the previous file's end {at}",
                        f.path.display(),
                        f.offset
                    ),
                ));
            }
            at = f
                .offset
                .checked_add(f.len)
                .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "file offsets overflow"))?;
        }
        let safe = crate::safe_file_name(name).unwrap_or_else(|| "download".into());
        Ok(Self {
            parts: dir.join(format!(".{safe}.parts")),
            open: Mutex::new(OpenFiles::default()),
            max_open: default_max_open(),
            parts_file: Mutex::new(None),
            dir,
            files,
            len: None,
            commit_sync: true,
        })
    }

    /// Sets the byte space's length in bytes, when it ends in padding after
    /// the last file (BEP 52 aligns every file's end to a piece boundary):
    /// the bytes from the last file's end to `len` are padding too.
    pub fn with_len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }

    /// The padding ranges: gaps between the spans, and from the last span
    /// to the length set by [`MultiFileSink::with_len`].
    fn padding(&self) -> Vec<ByteRange> {
        let mut at = 0;
        let mut out = Vec::new();
        for f in &self.files {
            if f.offset > at {
                out.push(ByteRange::new(at, f.offset));
            }
            at = at.max(f.offset + f.len);
        }
        if let Some(len) = self.len.filter(|l| *l > at) {
            out.push(ByteRange::new(at, len));
        }
        out
    }

    /// [`Sink::commit`] does not fsync the files first ([`Sink::sync`] still
    /// does): they are left to the kernel's writeback as curl or aria2 leave
    /// theirs. See [`FileSink::without_commit_sync`](crate::FileSink::without_commit_sync).
    pub fn without_commit_sync(mut self) -> Self {
        self.commit_sync = false;
        self
    }

    /// Keeps at most `n` (at least 1) of the files open at once.
    pub fn with_max_open_files(mut self, n: usize) -> Self {
        self.max_open = n.max(1);
        self
    }

    /// The files.
    pub fn files(&self) -> &[FileSpan] {
        &self.files
    }

    /// Where unwanted files' bytes are kept until commit.
    pub fn parts_path(&self) -> &Path {
        &self.parts
    }

    /// The pieces of `r` and where each is stored, in order.
    fn placements(&self, r: ByteRange) -> Vec<(ByteRange, Place, u64)> {
        let first = self.files.partition_point(|f| f.offset + f.len <= r.start);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(|(_, f)| f.offset < r.end)
            .filter_map(|(i, f)| {
                let part = f.range().intersect(&r)?;
                Some(if f.wanted {
                    (part, Place::File(first + i), part.start - f.offset)
                } else {
                    (part, Place::Parts, part.start)
                })
            })
            .collect()
    }

    fn file(&self, place: Place) -> Result<Arc<File>> {
        match place {
            Place::Parts => {
                let mut slot = self
                    .parts_file
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(f) = &*slot {
                    return Ok(f.clone());
                }
                let f = Arc::new(open_rw(&self.parts)?);
                *slot = Some(f.clone());
                Ok(f)
            }
            Place::File(i) => {
                let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(pos) = open.lru.iter().position(|(j, _)| *j == i) {
                    let hit = open.lru.remove(pos).expect("position is in range");
                    let f = hit.1.clone();
                    open.lru.push_back(hit);
                    return Ok(f);
                }
                let f = Arc::new(open_rw(&self.dir.join(&self.files[i].path))?);
                while open.lru.len() >= self.max_open {
                    // Closed once no write or read still holds it.
                    open.lru.pop_front();
                }
                open.lru.push_back((i, f.clone()));
                Ok(f)
            }
        }
    }

    /// Records that file `place` was written since the last sync.
    fn written(&self, place: Place) {
        if let Place::File(i) = place {
            self.open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .dirty
                .insert(i);
        }
    }

    async fn blocking<T: Send + 'static>(
        what: &'static str,
        op: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(op)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("{what} task failed: {e}")))?
            .map_err(|e| Error::io(what, e))
    }
}

fn open_rw(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

impl Sink for MultiFileSink {
    /// Each wanted file's extent on disk (as far as the file reaches), and
    /// for the other files (and wanted files not yet created, which
    /// [`Sink::prepare`] fills from it) as far as the parts file reaches.
    async fn stored_ranges(&self) -> Result<Option<crate::RangeSet>> {
        let dir = self.dir.clone();
        let parts = self.parts.clone();
        let files = self.files.clone();
        let held = Self::blocking("looking at the files", move || {
            let len_of = |p: &Path| match std::fs::metadata(p) {
                Ok(m) if m.is_file() => Ok(Some(m.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
            let parts_len = len_of(&parts)?.unwrap_or(0);
            let mut held = crate::RangeSet::new();
            for f in &files {
                let on_disk = if f.wanted {
                    len_of(&dir.join(&f.path))?
                } else {
                    None
                };
                let end = match on_disk {
                    Some(len) => f.offset + len.min(f.len),
                    None => parts_len.clamp(f.offset, f.offset + f.len),
                };
                held.insert(ByteRange::new(f.offset, end));
            }
            Ok(held)
        })
        .await?;
        let mut held = held;
        for gap in self.padding() {
            held.insert(gap);
        }
        Ok(Some(held))
    }

    async fn prepare(&self, _len: Option<u64>, _digests: &[DigestAlgorithm]) -> Result<()> {
        let parts_exist = self.parts.is_file();
        for (i, f) in self.files.iter().enumerate() {
            if !f.wanted {
                continue;
            }
            // A file selected since an earlier run: the bytes fetched for it
            // then (pieces shared with a selected file) are in the parts file.
            let from_parts = parts_exist && !self.dir.join(&f.path).exists();
            let file = self.file(Place::File(i))?;
            let parts = if from_parts {
                Some(self.file(Place::Parts)?)
            } else {
                None
            };
            let (len, offset) = (f.len, f.offset);
            Self::blocking("sizing a file", move || {
                if file.metadata()?.len() != len {
                    file.set_len(len)?;
                }
                if let Some(parts) = parts {
                    copy_range(&parts, offset, &file, len)?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        let r = ByteRange::new(offset, offset + data.len() as u64);
        let mut jobs = Vec::new();
        for (part, place, at) in self.placements(r) {
            let slice = data.slice((part.start - offset) as usize..(part.end - offset) as usize);
            self.written(place);
            jobs.push((self.file(place)?, slice, at));
        }
        Self::blocking("writing", move || {
            for (f, slice, at) in jobs {
                f.write_all_at(&slice, at)?;
            }
            Ok(())
        })
        .await
    }

    async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        let r = ByteRange::new(offset, offset + u64::from(len));
        let mut jobs = Vec::new();
        for (part, place, at) in self.placements(r) {
            let sparse = matches!(place, Place::Parts);
            jobs.push((self.file(place)?, part, at, sparse));
        }
        Self::blocking("reading", move || {
            // Padding (no file) reads as zeros.
            let mut out = BytesMut::zeroed(len as usize);
            for (f, part, at, sparse) in jobs {
                let buf = &mut out[(part.start - offset) as usize..(part.end - offset) as usize];
                if sparse {
                    // The parts file is sparse and may end early: unwritten bytes read as zeros.
                    super::file::read_full_at(&f, buf, at)?;
                } else {
                    f.read_exact_at(buf, at)?;
                }
            }
            Ok(out.freeze())
        })
        .await
    }

    async fn sync(&self) -> Result<()> {
        let dirty = std::mem::take(
            &mut self
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .dirty,
        );
        // One file at a time: the written files may be more than may be open at once.
        for (n, i) in dirty.iter().enumerate() {
            let synced = match self.file(Place::File(*i)) {
                Ok(f) => Self::blocking("syncing", move || f.sync_data()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = synced {
                self.open
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .dirty
                    .extend(dirty.iter().skip(n));
                return Err(e);
            }
        }
        let parts = self
            .parts_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match parts {
            Some(f) => Self::blocking("syncing", move || f.sync_data()).await,
            None => Ok(()),
        }
    }

    async fn commit(&self) -> Result<()> {
        if self.commit_sync {
            self.sync().await?;
        }
        self.parts_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match std::fs::remove_file(&self.parts) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", self.parts.display()), e))
            }
            _ => Ok(()),
        }
    }

    async fn reset(&self) -> Result<()> {
        for (i, f) in self.files.iter().enumerate() {
            if f.wanted {
                let file = self.file(Place::File(i))?;
                Self::blocking("truncating", move || file.set_len(0)).await?;
            }
        }
        let _ = std::fs::remove_file(&self.parts);
        self.parts_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(path: &str, offset: u64, len: u64, wanted: bool) -> FileSpan {
        FileSpan {
            path: PathBuf::from(path),
            offset,
            len,
            wanted,
        }
    }

    #[tokio::test]
    async fn writes_across_files_and_keeps_unwanted_bytes_aside() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            span("t/a.bin", 0, 5, true),
            span("t/sub/b.bin", 5, 4, false),
            span("t/c.bin", 9, 0, true),
            span("t/d.bin", 9, 6, true),
        ];
        let sink = MultiFileSink::new(dir.path().to_path_buf(), "t", files).unwrap();
        sink.prepare(Some(15), &[]).await.unwrap();
        let data: Vec<u8> = (0u8..15).collect();
        // Two writes that straddle file boundaries.
        sink.write_at(0, Bytes::copy_from_slice(&data[..7]))
            .await
            .unwrap();
        sink.write_at(7, Bytes::copy_from_slice(&data[7..]))
            .await
            .unwrap();
        assert_eq!(
            sink.read_at(3, 9).await.unwrap().to_vec(),
            data[3..12].to_vec()
        );
        sink.commit().await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("t/a.bin")).unwrap(),
            data[..5].to_vec()
        );
        assert_eq!(
            std::fs::read(dir.path().join("t/d.bin")).unwrap(),
            data[9..].to_vec()
        );
        assert_eq!(
            std::fs::read(dir.path().join("t/c.bin")).unwrap(),
            Vec::<u8>::new()
        );
        // The unwanted file never appears, and its bytes are gone with the parts file.
        assert!(!dir.path().join("t/sub/b.bin").exists());
        assert!(!sink.parts_path().exists());
    }

    #[tokio::test]
    async fn a_file_selected_later_takes_its_bytes_from_the_parts_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0u8..12).collect();
        let first = vec![span("t/a.bin", 0, 5, true), span("t/b.bin", 5, 7, false)];
        let sink = MultiFileSink::new(dir.path().to_path_buf(), "t", first).unwrap();
        sink.prepare(Some(12), &[]).await.unwrap();
        // Only the piece shared with a.bin, [0, 8), was fetched.
        sink.write_at(0, Bytes::copy_from_slice(&data[..8]))
            .await
            .unwrap();
        drop(sink);
        let both = vec![span("t/a.bin", 0, 5, true), span("t/b.bin", 5, 7, true)];
        let sink = MultiFileSink::new(dir.path().to_path_buf(), "t", both).unwrap();
        sink.prepare(Some(12), &[]).await.unwrap();
        assert_eq!(
            sink.read_at(0, 8).await.unwrap().to_vec(),
            data[..8].to_vec()
        );
        sink.write_at(8, Bytes::copy_from_slice(&data[8..]))
            .await
            .unwrap();
        sink.commit().await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("t/b.bin")).unwrap(),
            data[5..].to_vec()
        );
    }

    #[test]
    fn refuses_paths_that_leave_the_directory_and_overlaps() {
        let d = PathBuf::from("/tmp/x");
        assert!(MultiFileSink::new(d.clone(), "t", vec![span("../evil", 0, 1, true)]).is_err());
        assert!(MultiFileSink::new(d.clone(), "t", vec![span("/abs", 0, 1, true)]).is_err());
        assert!(
            MultiFileSink::new(d, "t", vec![span("a", 0, 2, true), span("b", 1, 1, true)]).is_err()
        );
    }

    #[tokio::test]
    async fn padding_is_never_stored_and_reads_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        // a: [0, 3), padding [3, 8), b: [8, 10), padding [10, 16).
        let files = vec![span("t/a", 0, 3, true), span("t/b", 8, 2, true)];
        let sink = MultiFileSink::new(dir.path().to_path_buf(), "t", files)
            .unwrap()
            .with_len(16);
        sink.prepare(Some(16), &[]).await.unwrap();
        let mut data = vec![0u8; 16];
        data[..3].copy_from_slice(b"abc");
        data[8..10].copy_from_slice(b"de");
        sink.write_at(0, Bytes::from(data.clone())).await.unwrap();
        sink.commit().await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("t/a")).unwrap(), b"abc");
        assert_eq!(std::fs::read(dir.path().join("t/b")).unwrap(), b"de");
        assert_eq!(&sink.read_at(0, 16).await.unwrap()[..], &data[..]);
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("t"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert!(!sink.parts_path().exists());
        let held = sink.stored_ranges().await.unwrap().unwrap();
        assert!(held.contains_range(ByteRange::new(0, 16)));
    }
}
