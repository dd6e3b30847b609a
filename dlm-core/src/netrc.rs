//! `.netrc` credentials (the file curl, ftp and wget read), shared by every
//! protocol that logs in with a user name and password.

use std::path::{Path, PathBuf};

/// Largest netrc file read, in bytes.
const MAX_NETRC_BYTES: u64 = 1 << 20;

/// Where credentials come from when a URL has none.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetrcMode {
    /// `$NETRC`, else `~/.netrc`, when the file exists (curl's `--netrc-optional`).
    #[default]
    Auto,
    /// Never read a netrc file.
    Off,
    /// This file.
    File(PathBuf),
}

impl NetrcMode {
    /// The credentials for `host` under this mode.
    ///
    /// # Errors
    /// As [`lookup_file`].
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, String> {
        let path = match self {
            Self::Off => return Ok(None),
            Self::Auto => default_path(),
            Self::File(p) => Some(p.clone()),
        };
        match path {
            Some(p) => lookup_file(&p, host),
            None => Ok(None),
        }
    }
}

/// Credentials for one host.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub login: String,
    /// The password (never shown by `Debug`).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The default netrc location: `$NETRC`, else `$HOME/.netrc`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc"))
}

/// Reads `path` and returns the entry for `host` (or `default`).
/// A missing file gives `Ok(None)`.
///
/// # Errors
/// A one-line reason when the file exists but cannot be read or is larger
/// than 1 MiB.
pub fn lookup_file(path: &Path, host: &str) -> Result<Option<Credentials>, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(m) if m.len() > MAX_NETRC_BYTES => {
            return Err(format!("{} is too large", path.display()));
        }
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(lookup(&text, host))
}

/// Finds the credentials for `host` in netrc `text`: the first `machine HOST`
/// entry, else `default`. Macros (`macdef`) are skipped.
pub fn lookup(text: &str, host: &str) -> Option<Credentials> {
    let mut tokens = text.split_whitespace();
    let mut found: Option<Credentials> = None;
    let mut default: Option<Credentials> = None;
    // Which entry the current login/password belong to: Some(true) = our host,
    // Some(false) = default, None = another host.
    let mut current: Option<bool> = None;
    let mut entry = Credentials {
        login: String::new(),
        password: String::new(),
    };
    let finish = |current: Option<bool>,
                  entry: &mut Credentials,
                  found: &mut Option<Credentials>,
                  default: &mut Option<Credentials>| {
        let e = std::mem::replace(
            entry,
            Credentials {
                login: String::new(),
                password: String::new(),
            },
        );
        match current {
            Some(true) if found.is_none() => *found = Some(e),
            Some(false) if default.is_none() => *default = Some(e),
            _ => {}
        }
    };
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" => {
                finish(current, &mut entry, &mut found, &mut default);
                current = tokens
                    .next()
                    .map(|h| h.eq_ignore_ascii_case(host))
                    .and_then(|m| m.then_some(true));
            }
            "default" => {
                finish(current, &mut entry, &mut found, &mut default);
                current = Some(false);
            }
            "login" => entry.login = tokens.next().unwrap_or_default().to_string(),
            "password" => entry.password = tokens.next().unwrap_or_default().to_string(),
            "account" => {
                tokens.next();
            }
            "macdef" => {
                // A macro runs to the next blank line; whitespace tokenising
                // cannot see it, so skip tokens until a known keyword.
                tokens.next();
            }
            _ => {}
        }
    }
    finish(current, &mut entry, &mut found, &mut default);
    found.or(default).filter(|c| !c.login.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_machine_then_default() {
        let text = "machine a.example login alice password pa\n\
                    machine b.example\n  login bob\n  password pb\n\
                    default login anon password guest\n";
        assert_eq!(lookup(text, "B.example").unwrap().login, "bob");
        assert_eq!(lookup(text, "b.example").unwrap().password, "pb");
        assert_eq!(lookup(text, "a.example").unwrap().login, "alice");
        assert_eq!(lookup(text, "c.example").unwrap().login, "anon");
        assert_eq!(lookup("machine x login y", "z"), None);
        assert_eq!(lookup("", "z"), None);
    }

    #[test]
    fn debug_hides_password() {
        let c = lookup("machine h login u password secret", "h").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
