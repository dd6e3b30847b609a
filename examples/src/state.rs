//! Where dlmd keeps its state and API token, shared by the daemon and by
//! `dlm remote`, so both look in the same place.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the token file.
pub const TOKEN_ENV: &str = "DLM_TOKEN";

/// `$XDG_DATA_HOME/dlm`, else `~/.local/share/dlm`.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("dlm");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".local/share/dlm")
}

/// `$XDG_CACHE_HOME/dlm`, else `~/.cache/dlm`: where the command line
/// keeps what it learnt between runs (see
/// [`crate::protocols::state_options`]).
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("dlm");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".cache/dlm")
}

/// `STATE_DIR/token`.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("token")
}

/// The API token: `DLM_TOKEN` when set, else the token file's content.
///
/// # Errors
/// When `DLM_TOKEN` is unset and the token file cannot be read (the daemon
/// creates it on first start). An empty file counts as missing.
pub fn existing_token(state_dir: &Path) -> std::io::Result<String> {
    if let Ok(t) = std::env::var(TOKEN_ENV)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let t = std::fs::read_to_string(token_path(state_dir))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the token file is empty",
        ));
    }
    Ok(t.to_string())
}
