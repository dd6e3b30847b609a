//! Inputs read from the disk or handed in by a user: netrc, the resume
//! control file, `SECTION.KEY=VALUE` settings.

use dlm_core::ControlFile;

use crate::split_head;

/// `~/.netrc` through `dlm_core::netrc::lookup`. Input: the host on the
/// first line, the netrc text after it.
///
/// Checks: credentials found have a non-empty login, and login and password
/// are single whitespace-free tokens of the text; host names match
/// regardless of ASCII case.
pub fn netrc(data: &[u8]) {
    let (host, rest) = split_head(data);
    let text = String::from_utf8_lossy(rest);
    let found = dlm_core::netrc::lookup(&text, &host);
    if let Some(c) = &found {
        assert!(!c.login.is_empty());
        for token in [&c.login, &c.password] {
            assert!(!token.contains(char::is_whitespace), "{token:?}");
        }
        assert!(text.split_whitespace().any(|t| t == c.login));
    }
    assert_eq!(
        dlm_core::netrc::lookup(&text, &host.to_ascii_uppercase()),
        found
    );
}

/// The resume control file (`*.dlm`, JSON) through `ControlFile::decode`, as
/// a resumed download reads it from the disk. Input: the file's bytes.
///
/// Checks: what decodes has valid ranges within the length, and encodes to
/// bytes that decode to the same value.
pub fn control_file(data: &[u8]) {
    let Ok(cf) = ControlFile::decode(data) else {
        return;
    };
    assert!(cf.done.is_valid() && cf.durable.is_valid());
    if let Some(len) = cf.identity.len {
        assert!(cf.done_bytes() <= len);
        assert_eq!(cf.done_within(len), cf.done);
        assert!(
            cf.durable.ranges().last().is_none_or(|r| r.end <= len),
            "durable ranges past the length {len}: {:?}",
            cf.durable
        );
    }
    let again = ControlFile::decode(&cf.encode()).expect("an encoded control file decodes");
    assert_eq!(again, cf);
}

/// `SECTION.KEY=VALUE` lines (a `dlmd` job's `options`, which arrive over the
/// network) applied to the BitTorrent config by
/// `dlm_core::config::apply_options`. Input: lines of text.
///
/// Checks: none beyond not panicking; whatever applies serialises again.
pub fn settings(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut options = dlm_core::Options::new();
    for line in text.lines().take(64) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        options = options.with(k, v);
    }
    let base = dlm_bittorrent::TorrentConfig::default();
    if let Ok(c) = dlm_core::config::apply_options(&base, "bittorrent", &options) {
        let _ = dlm_core::config::keys(&c, "bittorrent");
    }
}
