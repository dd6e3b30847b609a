//! The resume control file kept beside a download (`NAME.part.dlm`).
//!
//! JSON, one object, written atomically: a temporary file is written and
//! fsynced, then renamed over the old one, so a crash at any moment leaves
//! either the previous or the new state, never a torn one. See
//! [`crate::docs::resume`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{ByteRange, Error, ErrorKind, RangeSet, Result};

/// Version of the format written by this crate.
pub const CONTROL_FILE_VERSION: u32 = 1;

/// Control files larger than this (bytes) are refused as corrupt.
pub const MAX_CONTROL_FILE_BYTES: u64 = 64 << 20;

/// What identifies the remote object a partial download belongs to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceIdentity {
    /// The primary source's identity (a URL without credentials, an info-hash, a CID).
    pub source: String,
    /// Length in bytes, when known.
    pub len: Option<u64>,
    /// The validator (ETag or Last-Modified), when the remote gives one.
    pub validator: Option<String>,
}

impl SourceIdentity {
    /// Why `now` is not the same object as `self`, or `None` when it is.
    /// A validator that was absent on either side does not count as a change.
    pub fn change_from(&self, now: &SourceIdentity) -> Option<String> {
        if self.len != now.len {
            return Some(format!(
                "length changed from {} to {}",
                fmt_len(self.len),
                fmt_len(now.len)
            ));
        }
        match (&self.validator, &now.validator) {
            (Some(a), Some(b)) if a != b => Some(format!("validator changed from {a} to {b}")),
            _ => None,
        }
    }
}

fn fmt_len(len: Option<u64>) -> String {
    len.map_or_else(|| "unknown".into(), |l| format!("{l} bytes"))
}

/// Persistent resume state of one download.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlFile {
    /// Format version ([`CONTROL_FILE_VERSION`]).
    pub version: u32,
    /// The object this state belongs to.
    pub identity: SourceIdentity,
    /// Byte ranges written to the sink (they survive a process crash: the
    /// page cache keeps them).
    pub done: RangeSet,
    /// Byte ranges known to be on disk (`fdatasync`ed); the only ones trusted
    /// after the system restarted.
    #[serde(default)]
    pub durable: RangeSet,
    /// The kernel boot this state was written in (Linux
    /// `/proc/sys/kernel/random/boot_id`), to tell a process crash from a
    /// system restart.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Which file the ranges were written to ([`Sink::storage_id`](crate::Sink::storage_id):
    /// a `.part` file's device and inode), when the sink tells.
    #[serde(default)]
    pub storage: Option<String>,
    /// Connections the download was running with (informational).
    pub connections: u32,
    /// When this state was written, in ms since the Unix epoch.
    pub saved_unix_ms: u64,
}

impl ControlFile {
    /// A fresh state for `identity` with `done` ranges.
    pub fn new(identity: SourceIdentity, done: RangeSet, connections: u32) -> Self {
        Self {
            version: CONTROL_FILE_VERSION,
            identity,
            done,
            durable: RangeSet::new(),
            boot_id: current_boot_id(),
            storage: None,
            connections,
            saved_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// Records which file the ranges were written to.
    pub fn with_storage(mut self, storage: Option<String>) -> Self {
        self.storage = storage;
        self
    }

    /// Sets the ranges known to be on disk.
    pub fn with_durable(mut self, durable: RangeSet) -> Self {
        self.durable = durable;
        self
    }

    /// The done ranges that can be trusted now: all of them when this is the
    /// same boot as when they were saved (a process crash keeps the page
    /// cache), only the durable ones after a restart (power loss, kernel
    /// crash), and all of them where the boot cannot be identified.
    pub fn trusted_done(&self) -> RangeSet {
        match (&self.boot_id, current_boot_id()) {
            (Some(saved), Some(now)) if *saved != now => self.durable.clone(),
            _ => self.done.clone(),
        }
    }

    /// Serialises to bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("control file serialises");
        out.push(b'\n');
        out
    }

    /// Parses and validates bytes written by [`ControlFile::encode`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the bytes are not a control file of a
    /// known version, or its ranges are malformed or lie past the length.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_CONTROL_FILE_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "control file is too large",
            ));
        }
        let raw: ControlFile = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "control file is corrupt").with_source(e)
        })?;
        if raw.version != CONTROL_FILE_VERSION {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("control file version {} is not supported", raw.version),
            ));
        }
        if !raw.done.is_valid() || !raw.durable.is_valid() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "control file ranges are malformed",
            ));
        }
        for set in [&raw.done, &raw.durable] {
            if let (Some(len), Some(last)) = (raw.identity.len, set.ranges().last())
                && last.end > len
            {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("control file range {last} lies past the length {len}"),
                ));
            }
        }
        Ok(raw)
    }

    /// Reads the control file at `path`; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when it cannot be read, [`ErrorKind::InvalidInput`]
    /// when it is corrupt.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Ok(m) if m.len() > MAX_CONTROL_FILE_BYTES => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "control file is too large",
                ));
            }
            Ok(_) => {}
        }
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Self::decode(&bytes).map(Some)
    }

    /// Writes atomically to `path`: temp file, fsync, rename, fsync of the
    /// directory.
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_to(path, true)
    }

    /// As [`ControlFile::save`]; with `sync` false the temporary file is not
    /// fsynced before the rename (`DownloadOptions::sync_data` off: after a
    /// power loss the state may be lost, and the download starts over).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when writing or renaming fails.
    pub fn save_to(&self, path: &Path, sync: bool) -> Result<()> {
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.encode())?;
            if sync {
                f.sync_data()?;
            }
            std::fs::rename(&tmp, path)?;
            if sync {
                crate::dir_sync::sync_parent(path)?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io(format!("saving {}", path.display()), e))
    }

    /// Removes the control file (after a completed download); a missing file is fine.
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    pub fn remove(path: &Path) -> Result<()> {
        let _ = std::fs::remove_file(tmp_path(path));
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Bytes recorded as done.
    pub fn done_bytes(&self) -> u64 {
        self.done.total_len()
    }

    /// The done ranges, clipped to `len`.
    pub fn done_within(&self, len: u64) -> RangeSet {
        RangeSet::from_ranges(
            self.done
                .ranges()
                .iter()
                .filter_map(|r| r.intersect(&ByteRange::new(0, len))),
        )
    }
}

/// This boot's identity (Linux), read once.
fn current_boot_id() -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .clone()
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ControlFile {
        ControlFile::new(
            SourceIdentity {
                source: "https://example.org/a.iso".into(),
                len: Some(1000),
                validator: Some("\"abc\"".into()),
            },
            RangeSet::from_ranges([ByteRange::new(0, 100), ByteRange::new(500, 600)]),
            8,
        )
    }

    #[test]
    fn round_trips_and_saves_atomically() {
        let c = sample();
        assert_eq!(ControlFile::decode(&c.encode()).unwrap(), c);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.iso.part.dlm");
        assert!(ControlFile::load(&p).unwrap().is_none());
        c.save(&p).unwrap();
        assert_eq!(ControlFile::load(&p).unwrap().unwrap(), c);
        ControlFile::remove(&p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn rejects_bad_files() {
        assert!(ControlFile::decode(b"").is_err());
        assert!(ControlFile::decode(b"{}").is_err());
        let mut c = sample();
        c.version = 99;
        assert!(ControlFile::decode(&c.encode()).is_err());
        let mut c = sample();
        c.identity.len = Some(550);
        assert!(ControlFile::decode(&c.encode()).is_err());
        let text = String::from_utf8(sample().encode()).unwrap();
        let overlapping = text.replace("[500,600]", "[50,600]");
        let overlapping =
            overlapping.replace("{\"start\":500,\"end\":600}", "{\"start\":50,\"end\":600}");
        assert!(ControlFile::decode(overlapping.as_bytes()).is_err());
    }

    #[test]
    fn rejects_inverted_ranges_and_durable_ranges_past_the_length() {
        // Found by the control_file fuzz target: an inverted range passed
        // `is_valid` and `done_bytes` then overflowed.
        let text = String::from_utf8(sample().encode()).unwrap();
        let inverted = text.replace("\"start\":500,\"end\":600", "\"start\":700,\"end\":600");
        assert_ne!(inverted, text);
        assert!(ControlFile::decode(inverted.as_bytes()).is_err());
        let mut c = sample();
        let len = c.identity.len.unwrap();
        c.durable = RangeSet::from_ranges([ByteRange::new(0, len + 1)]);
        assert!(ControlFile::decode(&c.encode()).is_err());
    }

    #[test]
    fn after_a_restart_only_durable_ranges_are_trusted() {
        let mut c = sample().with_durable(RangeSet::from_ranges([ByteRange::new(0, 100)]));
        assert_eq!(c.trusted_done(), c.done, "same boot: everything written");
        c.boot_id = Some("another-boot".into());
        if current_boot_id().is_some() {
            assert_eq!(c.trusted_done(), c.durable);
        }
        let back = ControlFile::decode(&c.encode()).unwrap();
        assert_eq!(back.durable, c.durable);
        assert_eq!(back.boot_id.as_deref(), Some("another-boot"));
    }

    #[test]
    fn identity_changes() {
        let a = sample().identity;
        let mut b = a.clone();
        assert_eq!(a.change_from(&b), None);
        b.validator = Some("\"def\"".into());
        assert!(a.change_from(&b).unwrap().contains("validator"));
        b.validator = None;
        assert_eq!(a.change_from(&b), None);
        b.len = Some(5);
        assert!(a.change_from(&b).unwrap().contains("length"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ControlFile::decode(&bytes);
        }

        #[test]
        fn round_trip_any_state(ranges in proptest::collection::vec((0u64..10_000, 0u64..500), 0..30), n in 1u32..64) {
            let done = RangeSet::from_ranges(ranges.into_iter().map(|(a, l)| ByteRange::new(a, a + l)));
            let c = ControlFile::new(
                SourceIdentity { source: "s".into(), len: Some(20_000), validator: None },
                done,
                n,
            );
            prop_assert_eq!(ControlFile::decode(&c.encode()).unwrap(), c);
        }
    }
}
