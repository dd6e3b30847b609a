//! Protocols and the registry that picks one for an input.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

use crate::{BoxListing, BoxSource, Error, ErrorKind, Result};

/// What the user asked to download, before a protocol is chosen.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An absolute URL (`https://…`, `ftp://…`, `magnet:?…`, `ipfs://…`).
    Url(Url),
    /// A local file (e.g. a `.torrent`).
    File(PathBuf),
    /// Anything else (a bare CID, an info-hash).
    Text(String),
}

impl Input {
    /// Classifies `s`: a URL when it has a scheme, else an existing local file,
    /// else text.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        // One-letter "schemes" are Windows drive letters, not URLs.
        if let Ok(url) = Url::parse(s)
            && url.scheme().len() > 1
        {
            return Self::Url(url);
        }
        let p = PathBuf::from(s);
        if p.is_file() {
            Self::File(p)
        } else {
            Self::Text(s.to_string())
        }
    }

    /// The lower-cased URL scheme, for [`Input::Url`].
    pub fn scheme(&self) -> Option<&str> {
        match self {
            Self::Url(u) => Some(u.scheme()),
            _ => None,
        }
    }
}

impl fmt::Display for Input {
    /// Shows the input without URL credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(u) => f.write_str(&crate::redact_url(u)),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// Protocol-neutral per-download settings passed to [`Protocol::source`], as
/// `protocol.key = value` strings (the CLI's `-o http.header=…`). Each
/// protocol documents and validates its own keys.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Key/value pairs; a key may repeat (headers).
    pub pairs: Vec<(String, String)>,
}

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key = value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// Every value for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let key = key.to_string();
        self.pairs
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The last value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).last()
    }
}

/// A protocol backend. Cheap and synchronous: I/O starts in
/// [`Source::probe`](crate::Source::probe).
pub trait Protocol: Send + Sync + fmt::Debug + 'static {
    /// A short name: `"http"`, `"ftp"`, `"bittorrent"`.
    fn name(&self) -> &'static str;

    /// URL schemes served, lower-case: `["http", "https"]`.
    fn schemes(&self) -> &'static [&'static str];

    /// Whether this protocol handles a scheme-less input (a `.torrent` file,
    /// a bare CID). The default claims nothing.
    fn claims(&self, input: &Input) -> bool {
        let _ = input;
        false
    }

    /// A source for `input`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the input or an option is malformed.
    fn source(&self, input: &Input, options: &Options) -> Result<BoxSource>;

    /// Whether `input` names a collection of files (`ftp://host/dir/`,
    /// `s3://bucket/prefix/`) rather than one. The default: never.
    fn is_listing(&self, input: &Input) -> bool {
        let _ = input;
        false
    }

    /// A listing for an input that [`Protocol::is_listing`] accepts.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] by default; [`ErrorKind::InvalidInput`]
    /// when the input or an option is malformed.
    fn listing(&self, input: &Input, options: &Options) -> Result<BoxListing> {
        let _ = options;
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} cannot list {input}", self.name()),
        ))
    }
}

/// What an input resolves to: one file's bytes, or a collection of files.
#[derive(Debug)]
pub enum Target {
    /// One file: download it with [`Download`](crate::Download).
    Source(BoxSource),
    /// Many files: download them with [`TreeDownload`](crate::TreeDownload).
    Listing(BoxListing),
}

/// Maps URL schemes and input kinds to protocols. An instance, no globals:
/// each protocol crate exposes `register(&mut ProtocolRegistry)`.
#[derive(Default)]
pub struct ProtocolRegistry {
    by_scheme: BTreeMap<String, Arc<dyn Protocol>>,
    protocols: Vec<Arc<dyn Protocol>>,
}

impl fmt::Debug for ProtocolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolRegistry")
            .field("schemes", &self.by_scheme.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProtocolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a protocol under each of its schemes (lower-cased).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when a scheme is already registered; nothing
    /// is added then.
    pub fn register(&mut self, protocol: impl Protocol) -> Result<()> {
        let protocol: Arc<dyn Protocol> = Arc::new(protocol);
        for s in protocol.schemes() {
            let s = s.to_ascii_lowercase();
            if let Some(old) = self.by_scheme.get(&s) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("scheme {s:?} is already registered by {}", old.name()),
                ));
            }
        }
        for s in protocol.schemes() {
            self.by_scheme
                .insert(s.to_ascii_lowercase(), protocol.clone());
        }
        self.protocols.push(protocol);
        Ok(())
    }

    /// The protocol for `input`: by URL scheme, else the first that claims it.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] naming the registered schemes when none fits.
    pub fn resolve(&self, input: &Input) -> Result<Arc<dyn Protocol>> {
        if let Some(scheme) = input.scheme()
            && let Some(p) = self.by_scheme.get(&scheme.to_ascii_lowercase())
        {
            return Ok(p.clone());
        }
        if let Some(p) = self.protocols.iter().find(|p| p.claims(input)) {
            return Ok(p.clone());
        }
        let known = self.schemes().collect::<Vec<_>>().join(", ");
        let what = match input.scheme() {
            Some(s) => format!("unsupported scheme {s:?}"),
            None => format!("no protocol handles {input}"),
        };
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{what}; registered schemes: {}",
                if known.is_empty() { "none" } else { &known }
            ),
        ))
    }

    /// Resolves `input` and asks the protocol for a source.
    ///
    /// # Errors
    /// As [`ProtocolRegistry::resolve`] and [`Protocol::source`].
    pub fn source(&self, input: &Input, options: &Options) -> Result<BoxSource> {
        self.resolve(input)?.source(input, options)
    }

    /// Resolves `input` to a single source or, when the protocol says the
    /// input names a collection ([`Protocol::is_listing`]), to a listing.
    ///
    /// # Errors
    /// As [`ProtocolRegistry::resolve`], [`Protocol::source`] and
    /// [`Protocol::listing`].
    pub fn target(&self, input: &Input, options: &Options) -> Result<Target> {
        let protocol = self.resolve(input)?;
        if protocol.is_listing(input) {
            Ok(Target::Listing(protocol.listing(input, options)?))
        } else {
            Ok(Target::Source(protocol.source(input, options)?))
        }
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_scheme.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fake;
    impl Protocol for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &["Fake", "fakes"]
        }
        fn claims(&self, input: &Input) -> bool {
            matches!(input, Input::Text(t) if t.starts_with("fk"))
        }
        fn source(&self, _: &Input, _: &Options) -> Result<BoxSource> {
            Err(Error::new(ErrorKind::Unsupported, "fake"))
        }
    }

    #[test]
    fn resolves_by_scheme_and_claims() {
        let mut r = ProtocolRegistry::new();
        r.register(Fake).unwrap();
        assert!(r.register(Fake).is_err());
        assert_eq!(r.schemes().collect::<Vec<_>>(), vec!["fake", "fakes"]);
        assert_eq!(
            r.resolve(&Input::parse("FAKE://x/y")).unwrap().name(),
            "fake"
        );
        assert_eq!(r.resolve(&Input::parse("fk123")).unwrap().name(), "fake");
        let err = r.resolve(&Input::parse("gopher://x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.to_string().contains("registered schemes: fake, fakes"),
            "{err}"
        );
        let err = ProtocolRegistry::new()
            .resolve(&Input::parse("nothing"))
            .unwrap_err();
        assert!(err.to_string().contains("none"));
    }

    #[test]
    fn options_repeat() {
        let o = Options::new()
            .with("http.header", "A: 1")
            .with("http.header", "B: 2");
        assert_eq!(o.get_all("http.header").count(), 2);
        assert_eq!(o.get("http.header"), Some("B: 2"));
    }
}
