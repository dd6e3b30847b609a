//! Turning remote-supplied names into safe local names.
//!
//! Names from the network (`Content-Disposition`, URL paths, torrent file
//! lists, S3 keys, FTP listings) are untrusted: they must not escape the
//! download directory, hide as dot files, or use names Windows reserves.

use std::path::{Component, Path, PathBuf};

/// Longest file name kept, in bytes (most filesystems allow 255).
const MAX_NAME_BYTES: usize = 200;

const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Makes one path component safe: keeps only the part after the last `/` or
/// `\`, replaces control characters and `<>:"|?*` with `_`, trims spaces and
/// dots at both ends, prefixes Windows-reserved device names with `_`, and
/// truncates to 200 bytes on a character boundary. Returns `None` when nothing
/// usable is left (`""`, `"."`, `".."`).
pub fn safe_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return None;
    }
    let mut out = trimmed.to_string();
    let stem = out.split('.').next().unwrap_or("").to_ascii_uppercase();
    if WINDOWS_RESERVED.contains(&stem.as_str()) {
        out.insert(0, '_');
    }
    if out.len() > MAX_NAME_BYTES {
        let mut cut = MAX_NAME_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        // The cut may leave a trailing space or dot, which Windows drops.
        let kept = out
            .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
            .len();
        out.truncate(kept);
    }
    Some(out)
}

/// Makes a relative path (torrent file path, S3 key suffix, FTP tree entry)
/// safe to join under a download directory: every component passes
/// [`safe_file_name`] unchanged, so `..`, absolute paths, drive prefixes and
/// empty components are refused rather than silently rewritten.
///
/// # Errors
/// Returns the offending component when the path is not safe.
pub fn safe_relative_path(parts: &[&str]) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for part in parts {
        match safe_file_name(part) {
            Some(clean) if clean == *part => out.push(clean),
            _ => return Err((*part).to_string()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(String::new());
    }
    Ok(out)
}

/// Whether `path`, taken relative to a download directory, stays inside it
/// (no root, no prefix, no `..`).
pub fn stays_inside(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cut_name_ends_in_neither_space_nor_dot() {
        // Found by the content_disposition fuzz target: the 200-byte cut left a
        // trailing space, so the safe name was not its own safe name.
        let name = format!("{} tail", "a".repeat(199));
        let safe = safe_file_name(&name).unwrap();
        assert_eq!(safe, "a".repeat(199));
        assert_eq!(safe_file_name(&safe), Some(safe));
    }

    #[test]
    fn strips_directories_and_dangerous_names() {
        assert_eq!(
            safe_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            safe_file_name("..\\..\\boot.ini").as_deref(),
            Some("boot.ini")
        );
        assert_eq!(safe_file_name(".."), None);
        assert_eq!(safe_file_name("  "), None);
        assert_eq!(safe_file_name(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(safe_file_name("a\u{0}b\nc").as_deref(), Some("a_b_c"));
        assert_eq!(safe_file_name("con.txt").as_deref(), Some("_con.txt"));
        assert_eq!(
            safe_file_name("résumé 2024.pdf").as_deref(),
            Some("résumé 2024.pdf")
        );
        let long = "é".repeat(300);
        assert!(safe_file_name(&long).unwrap().len() <= 200);
    }

    #[test]
    fn relative_paths_refuse_escapes() {
        assert_eq!(
            safe_relative_path(&["a", "b.txt"]).unwrap(),
            PathBuf::from("a/b.txt")
        );
        assert!(safe_relative_path(&["..", "x"]).is_err());
        assert!(safe_relative_path(&["a/b"]).is_err());
        assert!(safe_relative_path(&[""]).is_err());
        assert!(stays_inside(Path::new("a/b")));
        assert!(!stays_inside(Path::new("../a")));
        assert!(!stays_inside(Path::new("/a")));
    }

    proptest! {
        #[test]
        fn sanitised_names_never_escape(name in ".*") {
            if let Some(clean) = safe_file_name(&name) {
                let p = Path::new(&clean);
                prop_assert!(stays_inside(p));
                prop_assert_eq!(p.components().count(), 1);
                prop_assert!(!clean.starts_with('.'));
            }
        }
    }
}
