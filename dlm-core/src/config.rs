//! One configuration model for every protocol: each `XConfig` is serde
//! (de)serialisable, and string settings `section.key = value` (the CLI's
//! `-O bittorrent.max_peers=80`, a `dlmd` job's `options`) are applied to it
//! by [`apply_options`], which names any unknown key.
//!
//! Keys are the config's field names; nested configs are reached with dots
//! (`s3.http.idle_timeout`). Values are read as JSON when they parse as JSON
//! (`80`, `true`, `null`, `["a","b"]`), else as a string; a
//! comma-separated string fills a list (`ipfs.gateways=https://a,https://b`).
//! Durations are strings with units (`30s`, `500ms`, `2m`), see
//! [`duration`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, ErrorKind, Options, Result};

/// Applies every `section.*` pair of `options` to `config`, in order.
/// Returns `config` unchanged (a clone) when there is none.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] naming the key when it is not a field of the
/// config (the message lists the known keys) or its value does not fit.
///
/// # Examples
/// ```
/// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
/// #[serde(default)]
/// struct Demo { max_peers: u32, name: String }
/// let opts = dlm_core::Options::new().with("demo.max_peers", "80").with("other.x", "1");
/// let c = dlm_core::config::apply_options(&Demo::default(), "demo", &opts).unwrap();
/// assert_eq!(c.max_peers, 80);
/// let bad = dlm_core::Options::new().with("demo.max_pears", "80");
/// assert!(dlm_core::config::apply_options(&Demo::default(), "demo", &bad).is_err());
/// ```
pub fn apply_options<T: Serialize + DeserializeOwned>(
    config: &T,
    section: &str,
    options: &Options,
) -> Result<T> {
    let mut value = serde_json::to_value(config).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{section} settings cannot be represented: {e}"),
        )
    })?;
    for (key, raw) in options.section(section) {
        let before = value.clone();
        set(&mut value, section, key, raw, false)?;
        if let Err(first) = serde_json::from_value::<T>(value.clone()) {
            // `name=123` for an unset `Option<String>`: try the text as text.
            value = before;
            set(&mut value, section, key, raw, true)?;
            if serde_json::from_value::<T>(value.clone()).is_err() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid value {raw:?} for {section}.{key}: {first}"),
                ));
            }
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{section}: {e}")))
}

/// Every settable key of `config`, dotted, prefixed with `section.`
/// (`["bittorrent.max_peers", …, "bittorrent.http.user_agent", …]`), for
/// help texts and error messages.
pub fn keys<T: Serialize>(config: &T, section: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::to_value(config) {
        collect_keys(&map, section, &mut out);
    }
    out
}

fn collect_keys(map: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in map {
        let key = format!("{prefix}.{k}");
        match v {
            Value::Object(inner) if !inner.is_empty() => collect_keys(inner, &key, out),
            _ => out.push(key),
        }
    }
}

/// Sets the dotted `key` in `root` to `raw`, read as [the module says](self).
fn set(root: &mut Value, section: &str, key: &str, raw: &str, as_text: bool) -> Result<()> {
    let unknown = |root: &Value| {
        let known = keys(root, section).join(", ");
        Error::new(
            ErrorKind::InvalidInput,
            format!("unknown setting {section}.{key} (known: {known})"),
        )
    };
    let mut at = &mut *root;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else {
            return Err(unknown(root));
        };
        if !map.contains_key(part) {
            return Err(unknown(root));
        }
        let slot = map.get_mut(part).expect("checked above");
        if parts.peek().is_none() {
            *slot = if as_text {
                Value::String(raw.to_string())
            } else {
                parse_value(slot, raw)
            };
            return Ok(());
        }
        // An absent nested config (`null`) cannot be reached by a dotted key.
        at = slot;
    }
    Err(unknown(root))
}

/// `raw` as JSON when it parses (and fits the current value's shape), else a
/// string, or a list of strings for a list.
fn parse_value(current: &Value, raw: &str) -> Value {
    let parsed = serde_json::from_str::<Value>(raw).ok();
    match (current, parsed) {
        // A string field keeps `123` or `true` as text.
        (Value::String(_), Some(Value::String(s))) => Value::String(s),
        (Value::String(_), _) => Value::String(raw.to_string()),
        (Value::Array(_), Some(v @ Value::Array(_))) => v,
        (Value::Array(_), _) if raw.is_empty() => Value::Array(Vec::new()),
        (Value::Array(_), _) => Value::Array(
            raw.split(',')
                .map(|p| {
                    let p = p.trim();
                    serde_json::from_str::<Value>(p)
                        .ok()
                        .filter(|v| !v.is_string() && !v.is_object())
                        .unwrap_or_else(|| Value::String(p.to_string()))
                })
                .collect(),
        ),
        (_, Some(v)) => v,
        (_, None) => Value::String(raw.to_string()),
    }
}

/// `#[serde(with = "dlm_core::config::duration")]`: a [`Duration`](std::time::Duration)
/// as a string with units (`"30s"`, `"1m 30s"`, `"250ms"`), as humantime
/// writes and reads it.
pub mod duration {
    pub use humantime_serde::{deserialize, serialize};
}

/// `#[serde(with = "dlm_core::config::option_duration")]`: an optional
/// [`Duration`](std::time::Duration), `null` or a string with units.
pub mod option_duration {
    pub use humantime_serde::option::{deserialize, serialize};
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        #[serde(with = "duration")]
        idle_timeout: Duration,
        user_agent: String,
    }

    #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        max_peers: u32,
        dht: bool,
        gateways: Vec<String>,
        selected: Option<Vec<usize>>,
        name: Option<String>,
        http: Inner,
    }

    fn apply(pairs: &[(&str, &str)]) -> Result<Demo> {
        let mut o = Options::new();
        for (k, v) in pairs {
            o = o.with(*k, *v);
        }
        apply_options(&Demo::default(), "demo", &o)
    }

    #[test]
    fn applies_typed_values() {
        let d = apply(&[
            ("demo.max_peers", "80"),
            ("demo.dht", "true"),
            ("demo.gateways", "https://a, https://b"),
            ("demo.selected", "[0,2]"),
            ("demo.name", "123"),
            ("demo.http.idle_timeout", "1m 30s"),
            ("demo.http.user_agent", "true"),
            ("other.max_peers", "1"),
        ])
        .unwrap();
        assert_eq!(d.max_peers, 80);
        assert!(d.dht);
        assert_eq!(d.gateways, vec!["https://a", "https://b"]);
        assert_eq!(d.selected, Some(vec![0, 2]));
        assert_eq!(d.http.idle_timeout, Duration::from_secs(90));
        assert_eq!(d.http.user_agent, "true");
        assert_eq!(d.name.as_deref(), Some("123"));
        assert_eq!(apply(&[("demo.gateways", "")]).unwrap().gateways.len(), 0);
    }

    #[test]
    fn names_unknown_keys_and_bad_values() {
        let e = apply(&[("demo.max_pears", "1")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("demo.max_pears"), "{e}");
        assert!(e.to_string().contains("demo.max_peers"), "{e}");
        assert!(e.to_string().contains("demo.http.idle_timeout"), "{e}");
        let e = apply(&[("demo.http.nope", "1")]).unwrap_err();
        assert!(e.to_string().contains("demo.http.nope"), "{e}");
        let e = apply(&[("demo.max_peers", "many")]).unwrap_err();
        assert!(e.to_string().contains("demo.max_peers"), "{e}");
        let e = apply(&[("demo.http.idle_timeout", "soon")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
