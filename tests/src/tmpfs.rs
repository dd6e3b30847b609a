//! A small tmpfs mounted on a temp dir, for running out of disk space on purpose (ENOSPC); unmounted on drop.
//! Mounting needs root (or `CAP_SYS_ADMIN`); without it [`Tmpfs::mount`] skips like a missing peer.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::peer::missing_peer;

/// A mounted tmpfs of a set size. Field order is drop order: unmount (in `Drop`) before removing the dir.
#[derive(Debug)]
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_bytes` on a fresh temp dir. Returns `None` (after `skipping: …`) when not root or
    /// when `mount` fails (a container without the capability).
    ///
    /// # Panics
    /// Under `DLM_REQUIRE_PEERS=1` when it cannot mount.
    pub fn mount(size_bytes: u64) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            return missing_peer("a tmpfs mount (the test must run as root)");
        }
        let dir = tempfile::Builder::new()
            .prefix("dlm-tmpfs-")
            .tempdir()
            .expect("temp dir");
        let size = format!("size={size_bytes}");
        match run_mount(&["-t", "tmpfs", "-o", &size, "tmpfs"], dir.path()) {
            Ok(()) => Some(Self { dir }),
            Err(e) => missing_peer(&format!("a tmpfs mount ({e})")),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows (or shrinks) the mounted file system to `size_bytes`, keeping its files.
    ///
    /// # Panics
    /// When `mount -o remount` fails.
    pub fn resize(&self, size_bytes: u64) {
        let opts = format!("remount,size={size_bytes}");
        run_mount(&["-o", &opts], self.path()).unwrap_or_else(|e| panic!("resize tmpfs: {e}"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a process still holding a file (a killed child not yet reaped) cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn run_mount(args: &[&str], target: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| format!("run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
