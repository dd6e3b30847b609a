//! Protocols and the registry that turns any input into something to download.
//!
//! Resolution is owned by each protocol and may need the network: a bare CID
//! may name a file or a directory, an `https://…` URL may serve a torrent, a
//! magnet link needs its metadata. So [`Protocol::resolve`] is async and the
//! embedding never special-cases a protocol: it calls
//! [`ProtocolRegistry::target`] and downloads what comes back.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use url::Url;

use crate::{BoxListing, BoxSource, Error, ErrorKind, Result};

/// A URL as given: parsed, with the text it was parsed from (the `url`
/// crate normalises dot-segments, `a/../b` → `b`, which a protocol may want
/// to refuse instead). Dereferences to the parsed [`Url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputUrl {
    url: Url,
    raw: String,
}

impl InputUrl {
    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The text as given (credentials included: not for display).
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

impl std::ops::Deref for InputUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.url
    }
}

/// What the user asked to download, before a protocol is chosen.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An absolute URL (`https://…`, `ftp://…`, `magnet:?…`, `ipfs://…`).
    Url(InputUrl),
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
            return Self::Url(InputUrl {
                url,
                raw: s.to_string(),
            });
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

/// Per-download settings for one input, as `protocol.key = value` strings
/// (the CLI's `-O http.header=…`, a `dlmd` job's `options`). Each protocol
/// documents and validates its own keys; a key of another protocol is
/// ignored by the protocols it does not name.
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

    /// The pairs whose key starts with `prefix.`, with the prefix removed
    /// (`"bittorrent"` → `("max_peers", "50")`).
    pub fn section<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let dotted = format!("{prefix}.");
        self.pairs.iter().filter_map(move |(k, v)| {
            k.strip_prefix(dotted.as_str())
                .map(|rest| (rest, v.as_str()))
        })
    }
}

/// What an input resolves to: one byte space, or a collection of files.
#[derive(Debug)]
pub enum Target {
    /// One byte space (a file, a torrent's files in order): download it with
    /// [`Download`](crate::Download).
    Source(BoxSource),
    /// Many files: download them with [`TreeDownload`](crate::TreeDownload).
    Listing(BoxListing),
}

/// What a protocol gets besides the input when it resolves one: the
/// per-download options and a way to hand the input to another protocol
/// (an HTTP URL that turns out to serve a torrent).
#[derive(Clone, Copy, Debug)]
pub struct Resolve<'a> {
    /// Per-download options (`protocol.key = value`).
    pub options: &'a Options,
    registry: &'a ProtocolRegistry,
    /// The protocol resolving now: never handed its own input back.
    current: &'static str,
}

impl<'a> Resolve<'a> {
    /// Whether some other registered protocol takes content of media type
    /// `content_type` (parameters and case ignored), so that a protocol
    /// serving arbitrary bytes should look at what it serves before
    /// resolving to a plain source.
    pub fn has_media_handlers(&self) -> bool {
        self.registry
            .protocols
            .iter()
            .any(|p| p.name_dyn() != self.current && !p.media_types_dyn().is_empty())
    }

    /// The registry resolving this input (a cheap copy sharing its
    /// protocols), for a protocol that opens other protocols' sources
    /// later: BitTorrent web seeds (BEP 19) are HTTP or FTP sources of the
    /// same swarm.
    pub fn registry(&self) -> ProtocolRegistry {
        self.registry.clone()
    }

    /// Resolves `input` with the protocol that registered `content_type`
    /// ([`Protocol::media_types`]); `None` when no other protocol takes it.
    ///
    /// # Errors
    /// As that protocol's [`Protocol::resolve`].
    pub async fn hand_off(&self, content_type: &str, input: &Input) -> Option<Result<Target>> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let protocol = self.registry.protocols.iter().find(|p| {
            p.name_dyn() != self.current
                && p.media_types_dyn()
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&essence))
        })?;
        let cx = Resolve {
            current: protocol.name_dyn(),
            ..*self
        };
        tracing::debug!(protocol = protocol.name_dyn(), %essence, "handing off by media type");
        Some(protocol.resolve_dyn(input, &cx).await)
    }
}

/// A protocol backend: cheap, synchronous registration; asynchronous
/// resolution of inputs.
///
/// Implementors write `async fn resolve`; the registry holds protocols as
/// [`ProtocolDyn`] through the blanket twin.
pub trait Protocol: Send + Sync + fmt::Debug + 'static {
    /// A short name: `"http"`, `"ftp"`, `"bittorrent"`.
    fn name(&self) -> &'static str;

    /// URL schemes served, lower-case: `["http", "https"]`.
    fn schemes(&self) -> &'static [&'static str];

    /// Whether this protocol takes `input` although it is no URL of its
    /// schemes: a scheme-less input (a `.torrent` path, a bare CID) or a URL
    /// of another protocol's scheme that is recognisably this protocol's
    /// (`https://host/x.torrent`). Checked before the scheme's owner. The
    /// default claims nothing.
    fn claims(&self, input: &Input) -> bool {
        let _ = input;
        false
    }

    /// Media types (`Content-Type` essences, lower-case) this protocol takes
    /// over when another protocol finds them behind a URL
    /// (`application/x-bittorrent`). The default: none.
    fn media_types(&self) -> &'static [&'static str] {
        &[]
    }

    /// Turns `input` into a source or a listing. May use the network (a
    /// `.torrent` fetched by URL, an IPFS path walked to its CID); fetches no
    /// payload.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the input or an option is malformed;
    /// network and protocol errors of the look-ups it makes.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the look-ups.
    fn resolve(
        &self,
        input: &Input,
        cx: &Resolve<'_>,
    ) -> impl Future<Output = Result<Target>> + Send;
}

/// Object-safe twin of [`Protocol`], implemented for every `Protocol`; never
/// implement it by hand.
#[allow(
    missing_docs,
    reason = "each method mirrors the documented Protocol method of the same name"
)]
pub trait ProtocolDyn: Send + Sync + fmt::Debug {
    fn name_dyn(&self) -> &'static str;
    fn schemes_dyn(&self) -> &'static [&'static str];
    fn claims_dyn(&self, input: &Input) -> bool;
    fn media_types_dyn(&self) -> &'static [&'static str];
    fn resolve_dyn<'a>(
        &'a self,
        input: &'a Input,
        cx: &'a Resolve<'a>,
    ) -> BoxFuture<'a, Result<Target>>;
}

impl<T: Protocol> ProtocolDyn for T {
    fn name_dyn(&self) -> &'static str {
        self.name()
    }
    fn schemes_dyn(&self) -> &'static [&'static str] {
        self.schemes()
    }
    fn claims_dyn(&self, input: &Input) -> bool {
        self.claims(input)
    }
    fn media_types_dyn(&self) -> &'static [&'static str] {
        self.media_types()
    }
    fn resolve_dyn<'a>(
        &'a self,
        input: &'a Input,
        cx: &'a Resolve<'a>,
    ) -> BoxFuture<'a, Result<Target>> {
        Box::pin(self.resolve(input, cx))
    }
}

/// Maps URL schemes, input kinds and media types to protocols. An instance,
/// no globals: each protocol crate exposes `register(&mut ProtocolRegistry)`.
///
/// # Examples
/// ```
/// use dlm_core::{ErrorKind, Input, ProtocolRegistry};
/// let registry = ProtocolRegistry::new();
/// let err = registry.protocol(&Input::parse("gopher://h/x")).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Unsupported);
/// ```
#[derive(Clone, Default)]
pub struct ProtocolRegistry {
    by_scheme: BTreeMap<String, Arc<dyn ProtocolDyn>>,
    protocols: Vec<Arc<dyn ProtocolDyn>>,
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
    /// [`ErrorKind::InvalidInput`] when a scheme or the name is already
    /// registered; nothing is added then.
    pub fn register(&mut self, protocol: impl Protocol) -> Result<()> {
        let protocol: Arc<dyn ProtocolDyn> = Arc::new(protocol);
        if self
            .protocols
            .iter()
            .any(|p| p.name_dyn() == protocol.name_dyn())
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("protocol {:?} is already registered", protocol.name_dyn()),
            ));
        }
        for s in protocol.schemes_dyn() {
            let s = s.to_ascii_lowercase();
            if let Some(old) = self.by_scheme.get(&s) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("scheme {s:?} is already registered by {}", old.name_dyn()),
                ));
            }
        }
        for s in protocol.schemes_dyn() {
            self.by_scheme
                .insert(s.to_ascii_lowercase(), protocol.clone());
        }
        self.protocols.push(protocol);
        Ok(())
    }

    /// The protocol for `input`: the first that [claims](Protocol::claims)
    /// it, else the owner of its URL scheme. No I/O.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] naming the registered schemes when none fits.
    pub fn protocol(&self, input: &Input) -> Result<Arc<dyn ProtocolDyn>> {
        if let Some(p) = self.protocols.iter().find(|p| p.claims_dyn(input)) {
            return Ok(p.clone());
        }
        if let Some(scheme) = input.scheme()
            && let Some(p) = self.by_scheme.get(&scheme.to_ascii_lowercase())
        {
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

    /// Resolves `input` into a source or a listing with its protocol
    /// ([`ProtocolRegistry::protocol`], then [`Protocol::resolve`]), which may
    /// hand it on to another protocol by media type.
    ///
    /// # Errors
    /// As [`ProtocolRegistry::protocol`] and [`Protocol::resolve`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the look-ups.
    pub async fn target(&self, input: &Input, options: &Options) -> Result<Target> {
        let protocol = self.protocol(input)?;
        let cx = Resolve {
            options,
            registry: self,
            current: protocol.name_dyn(),
        };
        protocol.resolve_dyn(input, &cx).await
    }

    /// Resolves `input` to a single byte space (a mirror, a file).
    ///
    /// # Errors
    /// As [`ProtocolRegistry::target`]; [`ErrorKind::InvalidInput`] when the
    /// input names a collection of files.
    pub async fn source(&self, input: &Input, options: &Options) -> Result<BoxSource> {
        match self.target(input, options).await? {
            Target::Source(s) => Ok(s),
            Target::Listing(l) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} names a collection of files, not one", l.identity()),
            )),
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
    use crate::testkit::MemorySource;

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
        async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
            // Serves "fk…" text as bytes whose media type another protocol takes.
            if let Some(t) = cx.hand_off("application/x-other; q=1", input).await {
                return t;
            }
            Err(Error::new(ErrorKind::Unsupported, "fake"))
        }
    }

    #[derive(Debug)]
    struct Other;
    impl Protocol for Other {
        fn name(&self) -> &'static str {
            "other"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &[]
        }
        fn claims(&self, input: &Input) -> bool {
            matches!(input, Input::Url(u) if u.path().ends_with(".other"))
        }
        fn media_types(&self) -> &'static [&'static str] {
            &["application/x-other"]
        }
        async fn resolve(&self, _: &Input, _: &Resolve<'_>) -> Result<Target> {
            Ok(Target::Source(Arc::new(MemorySource::new(
                bytes::Bytes::from_static(b"abc"),
            ))))
        }
    }

    #[tokio::test]
    async fn resolves_by_claim_scheme_and_media_type() {
        let mut r = ProtocolRegistry::new();
        r.register(Fake).unwrap();
        assert!(r.register(Fake).is_err());
        assert_eq!(r.schemes().collect::<Vec<_>>(), vec!["fake", "fakes"]);
        assert_eq!(
            r.protocol(&Input::parse("FAKE://x/y")).unwrap().name_dyn(),
            "fake"
        );
        assert_eq!(
            r.protocol(&Input::parse("fk123")).unwrap().name_dyn(),
            "fake"
        );
        let err = r.protocol(&Input::parse("gopher://x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.to_string().contains("registered schemes: fake, fakes"),
            "{err}"
        );
        // Nobody takes the media type yet.
        let err = r
            .target(&Input::parse("fk1"), &Options::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);

        r.register(Other).unwrap();
        // A claim wins over the scheme's owner.
        assert_eq!(
            r.protocol(&Input::parse("fake://h/a.other"))
                .unwrap()
                .name_dyn(),
            "other"
        );
        // The scheme's owner hands the input on by media type.
        let t = r.target(&Input::parse("fk1"), &Options::new()).await;
        assert!(matches!(t, Ok(Target::Source(_))), "{t:?}");

        let err = ProtocolRegistry::new()
            .protocol(&Input::parse("nothing"))
            .unwrap_err();
        assert!(err.to_string().contains("none"));
    }

    #[test]
    fn options_repeat_and_sections() {
        let o = Options::new()
            .with("http.header", "A: 1")
            .with("http.header", "B: 2")
            .with("bittorrent.max_peers", "5");
        assert_eq!(o.get_all("http.header").count(), 2);
        assert_eq!(o.get("http.header"), Some("B: 2"));
        assert_eq!(
            o.section("bittorrent").collect::<Vec<_>>(),
            vec![("max_peers", "5")]
        );
    }
}
