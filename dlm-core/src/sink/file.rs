use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

use super::Sink;
use crate::{DigestAlgorithm, Error, ErrorKind, Result};

/// A sink that writes one file positionally.
///
/// Bytes go to `NAME.part` (pre-allocated with `fallocate` when the length is
/// known, so a full disk fails at the start, not halfway); [`Sink::commit`]
/// fsyncs it, renames it atomically to `NAME` and fsyncs the directory
/// (only renames with [`FileSink::without_commit_sync`] or
/// [`FileSink::without_fsync`]). The engine's control file lives beside it
/// as `NAME.part.dlm` ([`FileSink::control_path`]).
///
/// Write-behind: with the commit's fsync on, every [`WRITE_BEHIND_BYTES`] written start
/// an `fdatasync` in the background (one at a time, never waited for), so
/// the kernel writes the file out while the download goes on and the sync
/// before the commit finds little left: a 1 GiB file's final fsync took
/// 2.05 s here without it.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    part: PathBuf,
    file: Mutex<Option<Arc<File>>>,
    fsync: bool,
    /// [`Sink::commit`] fsyncs the file and its directory.
    commit_sync: bool,
    /// Bytes written since the last background sync started.
    unsynced: AtomicU64,
    /// A background sync is running.
    syncing: Arc<AtomicBool>,
}

/// Bytes written between two background syncs of a [`FileSink`]: 64 MiB.
pub const WRITE_BEHIND_BYTES: u64 = 64 << 20;

impl FileSink {
    /// A sink that will produce the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let part = Self::part_path_for(&path);
        Self {
            path,
            part,
            file: Mutex::new(None),
            fsync: true,
            commit_sync: true,
            unsynced: AtomicU64::new(0),
            syncing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Never fsyncs: [`Sink::sync`] does nothing and [`Sink::commit`] only
    /// renames, like curl or aria2. Faster for large files on slow disks, but
    /// after a power loss (not a crash) the final file may be incomplete.
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self.commit_sync = false;
        self
    }

    /// [`Sink::sync`] still flushes (the engine's periodic data syncs for
    /// resume), but [`Sink::commit`] only renames, as curl, wget2 and aria2
    /// leave a finished file: the kernel writes it out on its own schedule
    /// (`vm.dirty_expire_centisecs`, 30 s by default), so a power loss
    /// within that time can leave the final name holding zeros. Without
    /// the commit's fsync a download is not bound by the disk's write speed
    /// (measured here: 1 GiB over loopback HTTP 1.5 s instead of 2.7 s).
    pub fn without_commit_sync(mut self) -> Self {
        self.commit_sync = false;
        self
    }

    /// `NAME.part` for `NAME`.
    pub fn part_path_for(path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(".part");
        PathBuf::from(s)
    }

    /// `NAME.part.dlm` for `NAME`: where the engine keeps resume state.
    pub fn control_path_for(path: &Path) -> PathBuf {
        let mut s = Self::part_path_for(path).into_os_string();
        s.push(".dlm");
        PathBuf::from(s)
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `NAME.part` path written while downloading.
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// The control-file path for this sink.
    pub fn control_path(&self) -> PathBuf {
        Self::control_path_for(&self.path)
    }

    fn open(&self) -> Result<Arc<File>> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = &*slot {
            return Ok(f.clone());
        }
        if let Some(dir) = self.part.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.part)
            .map_err(|e| Error::io(format!("opening {}", self.part.display()), e))?;
        // One writer per file: a second download of the same output (two jobs
        // that chose the same name) fails instead of interleaving bytes.
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} is being written by another download",
                        self.part.display()
                    ),
                ));
            }
            // Filesystems without flock (some network filesystems): go on unlocked.
            Err(_) => {}
        }
        let f = Arc::new(f);
        *slot = Some(f.clone());
        Ok(f)
    }

    /// Counts `n` bytes written and starts a background `fdatasync` every
    /// [`WRITE_BEHIND_BYTES`]; its result is not needed: the sync before
    /// the commit (or the engine's durable sync) reports any error.
    fn write_behind(&self, n: u64) {
        if !self.commit_sync
            || self.unsynced.fetch_add(n, Ordering::Relaxed) + n < WRITE_BEHIND_BYTES
        {
            return;
        }
        if self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unsynced.store(0, Ordering::Relaxed);
        let Ok(f) = self.open() else {
            self.syncing.store(false, Ordering::Release);
            return;
        };
        let syncing = self.syncing.clone();
        tokio::task::spawn_blocking(move || {
            let _ = f.sync_data();
            syncing.store(false, Ordering::Release);
        });
    }

    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        op: impl FnOnce(&File) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let f = self.open()?;
        let part = self.part.clone();
        tokio::task::spawn_blocking(move || op(&f))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("{what} task failed: {e}")))?
            .map_err(|e| Error::io(format!("{what} {}", part.display()), e))
    }
}

/// Fills `buf` from `offset`, stopping early only at the end of the file;
/// returns the bytes read.
pub(super) fn read_full_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes every byte of `frames`, in order, from `offset`, with as few
/// `pwritev(2)` calls as the kernel allows (at most 1,024 frames a call).
fn write_all_vectored_at(f: &File, frames: &[Bytes], mut offset: u64) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = frames
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| std::io::IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = match rustix::io::pwritev(f, &rest[..rest.len().min(1024)], offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        };
        offset += n as u64;
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

fn allocate(f: &File, len: u64) -> std::io::Result<()> {
    let current = f.metadata()?.len();
    if current > len {
        return f.set_len(len);
    }
    if current == len || len == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        // Filesystems without fallocate (tmpfs on old kernels, some FUSE): sparse file.
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            f.set_len(len)
        }
        Err(e) => Err(e.into()),
    }
}

impl Sink for FileSink {
    /// The `.part` file's extent, `[0, its length)`; empty when there is none.
    async fn stored_ranges(&self) -> Result<Option<crate::RangeSet>> {
        let part = self.part.clone();
        let len = tokio::task::spawn_blocking(move || match std::fs::metadata(&part) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io(format!("reading {}", part.display()), e)),
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("stat task failed: {e}")))??;
        let mut held = crate::RangeSet::new();
        if len > 0 {
            held.insert(crate::ByteRange::new(0, len));
        }
        Ok(Some(held))
    }

    /// `DEVICE:INODE` of the `.part` file.
    fn storage_id(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.part).ok()?;
        Some(format!("{}:{}", m.dev(), m.ino()))
    }

    async fn prepare(&self, len: Option<u64>, _digests: &[DigestAlgorithm]) -> Result<()> {
        match len {
            Some(len) => self.blocking("allocating", move |f| allocate(f, len)).await,
            None => self.open().map(drop),
        }
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        self.write_vectored_at(offset, vec![data]).await
    }

    async fn write_vectored_at(&self, offset: u64, frames: Vec<Bytes>) -> Result<()> {
        let n: u64 = frames.iter().map(|f| f.len() as u64).sum();
        self.blocking("writing", move |f| {
            write_all_vectored_at(f, &frames, offset)
        })
        .await?;
        self.write_behind(n);
        Ok(())
    }

    async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        self.blocking("reading", move |f| {
            let mut buf = BytesMut::zeroed(len as usize);
            let filled = read_full_at(f, &mut buf, offset)?;
            buf.truncate(filled);
            Ok(buf.freeze())
        })
        .await
    }

    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        let read = self.open().and_then(|f| {
            read_full_at(&f, buf, offset)
                .map_err(|e| Error::io(format!("reading {}", self.part.display()), e))
        });
        Some(read)
    }

    async fn sync(&self) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        self.blocking("syncing", File::sync_data).await
    }

    async fn commit(&self) -> Result<()> {
        if self.commit_sync {
            self.blocking("syncing", File::sync_all).await?;
        }
        let (part, path) = (self.part.clone(), self.path.clone());
        let fsync = self.commit_sync;
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&part, &path)?;
            // The new name is durable only once its directory is.
            if fsync {
                crate::dir_sync::sync_parent(&path)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("rename task failed: {e}")))?
        .map_err(|e| Error::io(format!("renaming to {}", self.path.display()), e))?;
        // The handle now names the finished file: keep it for reading back
        // (a torrent seeds from it), but give up the writer's lock.
        if let Some(f) = &*self.file.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = rustix::fs::flock(&**f, rustix::fs::FlockOperation::Unlock);
        }
        Ok(())
    }

    async fn reset(&self) -> Result<()> {
        self.blocking("truncating", |f| f.set_len(0)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_writer_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("same.bin");
        let a = FileSink::new(&path);
        a.prepare(Some(4), &[]).await.unwrap();
        let b = FileSink::new(&path);
        let err = b.prepare(Some(4), &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("another download"), "{err}");
        a.write_at(0, Bytes::from_static(b"abcd")).await.unwrap();
        a.commit().await.unwrap();
        // Once committed the lock is gone, and the finished file reads back
        // through the handle the sink keeps.
        assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
        assert_eq!(&a.read_at(1, 2).await.unwrap()[..], b"bc");
        let other = std::fs::File::open(&path).unwrap();
        rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .expect("the committed file is no longer locked");
    }

    #[tokio::test]
    async fn writes_positionally_and_renames_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let sink = FileSink::new(&path);
        assert_eq!(sink.control_path(), dir.path().join("out.bin.part.dlm"));
        sink.prepare(Some(10), &[]).await.unwrap();
        sink.write_at(5, Bytes::from_static(b"world"))
            .await
            .unwrap();
        sink.write_at(0, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(&sink.read_at(3, 4).await.unwrap()[..], b"lowo");
        assert_eq!(sink.read_at(8, 10).await.unwrap().len(), 2);
        assert!(!path.exists());
        sink.commit().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"helloworld");
        assert!(!sink.part_path().exists());
    }

    #[tokio::test]
    async fn gathered_frames_land_as_one_contiguous_write() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path().join("v.bin")).without_fsync();
        sink.prepare(Some(10), &[]).await.unwrap();
        let frames = vec![
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
            Bytes::from_static(b"f"),
        ];
        sink.write_vectored_at(3, frames).await.unwrap();
        let back = sink.read_at(0, 10).await.unwrap();
        assert_eq!(&back[..], b"\0\0\0abcdef\0");
    }
}
