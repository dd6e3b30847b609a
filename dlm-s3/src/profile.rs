//! The region (and endpoint) of a profile in `~/.aws/config`.
//!
//! Credentials themselves are read by reqsign's providers; this reads only
//! the two settings the client needs before any request.

use std::path::PathBuf;

/// `~/.aws/config`, or `AWS_CONFIG_FILE`.
fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AWS_CONFIG_FILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join("config"))
}

/// `key` in `profile`'s section of the AWS config file (`[default]` or
/// `[profile NAME]`), if the file and the key exist.
pub(crate) fn setting(profile: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(config_path()?).ok()?;
    lookup(&text, profile, key)
}

/// `key` in `profile`'s section of an AWS config file's text.
pub(crate) fn lookup(text: &str, profile: &str, key: &str) -> Option<String> {
    let wanted = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            in_section = section == wanted || (profile != "default" && section == profile);
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_by_profile() {
        let text = "[default]\nregion = eu-west-1\n\n[profile work]\nregion=ap-south-1\n# c\noutput = json\n";
        assert_eq!(
            lookup(text, "default", "region").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            lookup(text, "work", "region").as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(lookup(text, "work", "endpoint_url"), None);
        assert_eq!(lookup(text, "other", "region"), None);
    }
}
