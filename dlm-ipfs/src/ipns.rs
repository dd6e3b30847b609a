//! Resolving mutable names: IPNS records fetched from gateways
//! (`?format=ipns-record`) and checked as the IPNS spec's "Record
//! Verification" says, and DNSLink (`_dnslink.` TXT records, spec: DNSLink)
//! through the system resolver.

use std::time::SystemTime;

use bytes::Bytes;
use cid::Cid;
use libp2p::PeerId;
use libp2p::identity::PublicKey;
use prost::Message;

use crate::IpfsError;
use crate::address::{IpfsAddress, Root};
use crate::block::{IDENTITY, LIBP2P_KEY, parse_cid};
use crate::session::Session;

/// Most names followed (an IPNS record or DNSLink pointing at another).
const MAX_HOPS: usize = 8;

#[derive(Clone, PartialEq, Message)]
struct IpnsEntry {
    #[prost(bytes = "bytes", optional, tag = "1")]
    value: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    signature_v1: Option<Bytes>,
    #[prost(int32, optional, tag = "3")]
    validity_type: Option<i32>,
    #[prost(bytes = "bytes", optional, tag = "4")]
    validity: Option<Bytes>,
    #[prost(uint64, optional, tag = "5")]
    sequence: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    ttl: Option<u64>,
    #[prost(bytes = "bytes", optional, tag = "7")]
    pub_key: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "8")]
    signature_v2: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "9")]
    data: Option<Bytes>,
}

/// A checked IPNS record's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpnsRecord {
    /// The path the name points to (`/ipfs/…` or `/ipns/…`).
    pub value: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// When the record stops being valid.
    pub valid_until: SystemTime,
}

/// The peer ID an IPNS name stands for: a CIDv1 with the `libp2p-key`
/// codec (`k51…`, `bafzaa…`) or a peer ID's text (`12D3KooW…`, `Qm…`).
///
/// # Errors
/// [`IpfsError::Ipns`] when `name` is neither.
pub fn name_peer_id(name: &str) -> Result<PeerId, IpfsError> {
    let bad = |reason: &str| IpfsError::Ipns {
        name: name.to_string(),
        reason: reason.to_string(),
        retryable: false,
    };
    if let Ok(cid) = parse_cid(name) {
        if cid.codec() != LIBP2P_KEY {
            return Err(bad("a CID, but not of a libp2p-key"));
        }
        return PeerId::from_multihash(*cid.hash()).map_err(|_| bad("not a peer ID multihash"));
    }
    name.parse::<PeerId>().map_err(|_| bad("not a key name"))
}

/// Whether `name` is a key name rather than a DNSLink domain.
pub fn is_key_name(name: &str) -> bool {
    name_peer_id(name).is_ok()
}

/// Checks the marshalled record `bytes` for `name` at `now`: the V2
/// signature over `"ipns-signature:" || data` by the name's key (inlined in
/// the name, or in the record's `pubKey` whose peer ID must be the name),
/// the EOL validity, and, when the V1 fields are present, that they match.
///
/// # Errors
/// [`IpfsError::Ipns`] (not retryable) for each failed check.
pub fn verify_record(name: &str, bytes: &[u8], now: SystemTime) -> Result<IpnsRecord, IpfsError> {
    let record = verify_signed(name, bytes)?;
    if record.valid_until <= now {
        return Err(IpfsError::Ipns {
            name: name.to_string(),
            reason: format!(
                "record expired at {}",
                humantime::format_rfc3339(record.valid_until)
            ),
            retryable: false,
        });
    }
    Ok(record)
}

/// Every check of [`verify_record`] but the expiry: what a gateway can get
/// wrong only by lying (a caching gateway may hold an expired record).
fn verify_signed(name: &str, bytes: &[u8]) -> Result<IpnsRecord, IpfsError> {
    let bad = |reason: String| IpfsError::Ipns {
        name: name.to_string(),
        reason,
        retryable: false,
    };
    if bytes.len() > crate::gateway::MAX_IPNS_RECORD_BYTES {
        return Err(bad("record over 10 KiB".into()));
    }
    let peer = name_peer_id(name)?;
    let entry =
        IpnsEntry::decode(bytes).map_err(|e| bad(format!("record does not decode: {e}")))?;
    let (Some(data), Some(sig)) = (&entry.data, &entry.signature_v2) else {
        return Err(bad(
            "record has no V2 signature and data (V1-only records are refused)".into(),
        ));
    };
    let key = match &entry.pub_key {
        Some(k) => PublicKey::try_decode_protobuf(k).map_err(|e| bad(format!("pubKey: {e}")))?,
        None => {
            let mh = peer.as_ref();
            if mh.code() != IDENTITY {
                return Err(bad(
                    "the name's key is not inlined and the record has no pubKey".into(),
                ));
            }
            PublicKey::try_decode_protobuf(mh.digest())
                .map_err(|e| bad(format!("name key: {e}")))?
        }
    };
    if key.to_peer_id() != peer {
        return Err(bad("the record's key is not the name's".into()));
    }
    let mut signed = b"ipns-signature:".to_vec();
    signed.extend_from_slice(data);
    if !key.verify(&signed, sig) {
        return Err(bad("signature does not verify".into()));
    }
    let fields = parse_data(data).map_err(bad)?;
    if fields.validity_type != 0 {
        return Err(bad(format!("validity type {}", fields.validity_type)));
    }
    let text =
        std::str::from_utf8(&fields.validity).map_err(|_| bad("validity is not text".into()))?;
    let valid_until = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .map_err(|e| bad(format!("validity {text:?}: {e}")))?;
    if let Some(v1) = &entry.value
        && *v1 != fields.value
    {
        return Err(bad("V1 value differs from the signed data".into()));
    }
    if let Some(v1) = &entry.validity
        && *v1 != fields.validity
    {
        return Err(bad("V1 validity differs from the signed data".into()));
    }
    let value =
        String::from_utf8(fields.value.to_vec()).map_err(|_| bad("value is not text".into()))?;
    Ok(IpnsRecord {
        value,
        sequence: fields.sequence,
        valid_until,
    })
}

struct DataFields {
    value: Bytes,
    validity: Bytes,
    validity_type: i128,
    sequence: u64,
}

/// The dag-cbor `data` map: `Value`, `Validity`, `ValidityType`, `Sequence`, `TTL`.
fn parse_data(data: &[u8]) -> Result<DataFields, String> {
    use ciborium::Value;
    let v: Value = ciborium::from_reader(data).map_err(|e| format!("data is not dag-cbor: {e}"))?;
    let Value::Map(entries) = v else {
        return Err("data is not a map".into());
    };
    let mut value = None;
    let mut validity = None;
    let mut validity_type = None;
    let mut sequence = 0u64;
    for (k, v) in entries {
        match (k.as_text(), v) {
            (Some("Value"), Value::Bytes(b)) => value = Some(Bytes::from(b)),
            (Some("Validity"), Value::Bytes(b)) => validity = Some(Bytes::from(b)),
            (Some("ValidityType"), Value::Integer(i)) => validity_type = Some(i128::from(i)),
            (Some("Sequence"), Value::Integer(i)) => sequence = u64::try_from(i).unwrap_or(0),
            _ => {}
        }
    }
    Ok(DataFields {
        value: value.ok_or("data has no Value")?,
        validity: validity.ok_or("data has no Validity")?,
        validity_type: validity_type.ok_or("data has no ValidityType")?,
        sequence,
    })
}

/// The value of a `dnslink=` TXT string, if it is one.
pub fn parse_dnslink(txt: &str) -> Option<&str> {
    let v = txt.trim().strip_prefix("dnslink=")?.trim();
    (v.starts_with("/ipfs/") || v.starts_with("/ipns/")).then_some(v)
}

async fn dnslink(domain: &str) -> Result<String, IpfsError> {
    use hickory_resolver::TokioResolver;
    use hickory_resolver::proto::rr::RData;
    let fail = |reason: String| IpfsError::DnsLink {
        domain: domain.to_string(),
        reason,
    };
    let resolver = TokioResolver::builder_tokio()
        .map_err(|e| fail(format!("system resolver: {e}")))?
        .build()
        .map_err(|e| fail(format!("system resolver: {e}")))?;
    let mut last = String::from("no TXT records");
    for query in [format!("_dnslink.{domain}."), format!("{domain}.")] {
        match resolver.txt_lookup(query.as_str()).await {
            Ok(lookup) => {
                for record in lookup.answers() {
                    if let RData::TXT(txt) = &record.data {
                        let joined: String = txt
                            .txt_data
                            .iter()
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect();
                        if let Some(v) = parse_dnslink(&joined) {
                            return Ok(v.to_string());
                        }
                    }
                }
                last = format!("no dnslink= TXT record at {query}");
            }
            Err(e) => last = format!("{query}: {e}"),
        }
    }
    Err(fail(last))
}

/// Where a name points, after following IPNS records and DNSLink.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) root: Cid,
    pub(crate) path: Vec<String>,
}

/// Resolves an IPNS name or DNSLink domain to a CID and path.
pub(crate) async fn resolve(session: &Session, name: &str) -> Result<Target, IpfsError> {
    let mut name = name.to_string();
    let mut rest: Vec<String> = Vec::new();
    for _ in 0..MAX_HOPS {
        let value = if is_key_name(&name) {
            fetch_record(session, &name).await?.value
        } else {
            dnslink(&name).await?
        };
        let addr = IpfsAddress::parse(&value).map_err(|e| IpfsError::Ipns {
            name: name.clone(),
            reason: format!("points to {value:?}: {e}"),
            retryable: false,
        })?;
        let mut path = addr.path;
        path.extend(rest);
        match addr.root {
            Root::Cid(root) => return Ok(Target { root, path }),
            Root::Ipns(next) => {
                name = next;
                rest = path;
            }
        }
    }
    Err(IpfsError::Ipns {
        name,
        reason: format!("more than {MAX_HOPS} names in a row"),
        retryable: false,
    })
}

/// The first record for `name` from the live gateways that verifies.
async fn fetch_record(session: &Session, name: &str) -> Result<IpnsRecord, IpfsError> {
    let live: Vec<_> = session
        .gateways
        .iter()
        .filter(|g| !g.is_dropped())
        .collect();
    let answers = futures::future::join_all(live.iter().map(|g| g.ipns_record(name))).await;
    let now = SystemTime::now();
    let mut best: Option<IpnsRecord> = None;
    let mut last = IpfsError::Ipns {
        name: name.to_string(),
        reason: "no gateway configured to fetch the record from".into(),
        retryable: false,
    };
    for (g, answer) in live.iter().zip(answers) {
        let bytes = match answer {
            Ok(b) => b,
            // The gateway's own error: a 404 stays not-found, a 503 retryable.
            Err(e) => {
                last = e;
                continue;
            }
        };
        match verify_signed(name, &bytes) {
            // The newest valid record wins: a stale cache must not roll the
            // name back.
            Ok(r) if r.valid_until > now => {
                if best.as_ref().is_none_or(|b| r.sequence > b.sequence) {
                    best = Some(r);
                }
            }
            Ok(r) => {
                last = IpfsError::Ipns {
                    name: name.to_string(),
                    reason: format!(
                        "{} sent a record that expired at {}",
                        g.name(),
                        humantime::format_rfc3339(r.valid_until)
                    ),
                    retryable: false,
                }
            }
            Err(e) => {
                g.drop_gateway(&e.to_string());
                last = e;
            }
        }
    }
    best.ok_or(last)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use libp2p::identity::Keypair;

    use super::*;

    /// A V1+V2 record signed by `key`, valid until `eol` (as the IPNS spec
    /// lays it out).
    fn record(key: &Keypair, value: &str, eol: SystemTime) -> Vec<u8> {
        use ciborium::Value;
        let validity = humantime::format_rfc3339_nanos(eol).to_string();
        let data = Value::Map(vec![
            (Value::Text("TTL".into()), Value::Integer(0.into())),
            (
                Value::Text("Value".into()),
                Value::Bytes(value.as_bytes().to_vec()),
            ),
            (Value::Text("Sequence".into()), Value::Integer(1.into())),
            (
                Value::Text("Validity".into()),
                Value::Bytes(validity.as_bytes().to_vec()),
            ),
            (Value::Text("ValidityType".into()), Value::Integer(0.into())),
        ]);
        let mut cbor = Vec::new();
        ciborium::into_writer(&data, &mut cbor).unwrap();
        let mut signed = b"ipns-signature:".to_vec();
        signed.extend(&cbor);
        IpnsEntry {
            value: Some(Bytes::from(value.as_bytes().to_vec())),
            signature_v1: None,
            validity_type: Some(0),
            validity: Some(Bytes::from(validity.into_bytes())),
            sequence: Some(1),
            ttl: Some(0),
            pub_key: None,
            signature_v2: Some(Bytes::from(key.sign(&signed).unwrap())),
            data: Some(Bytes::from(cbor)),
        }
        .encode_to_vec()
    }

    const VALUE: &str = "/ipfs/bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354";

    #[test]
    fn verifies_a_signed_record() {
        let key = Keypair::generate_ed25519();
        let name = key.public().to_peer_id().to_string();
        let now = SystemTime::now();
        let bytes = record(&key, VALUE, now + Duration::from_secs(3600));
        let r = verify_record(&name, &bytes, now).unwrap();
        assert_eq!(r.value, VALUE);
        assert_eq!(r.sequence, 1);
    }

    #[test]
    fn refuses_expired_foreign_and_tampered_records() {
        let key = Keypair::generate_ed25519();
        let name = key.public().to_peer_id().to_string();
        let now = SystemTime::now();
        let expired = record(&key, VALUE, now - Duration::from_secs(1));
        assert!(
            verify_record(&name, &expired, now)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        let other = Keypair::generate_ed25519();
        let foreign = record(&other, VALUE, now + Duration::from_secs(60));
        assert!(verify_record(&name, &foreign, now).is_err());
        let mut tampered = record(&key, VALUE, now + Duration::from_secs(60));
        let at = tampered.len() - 20;
        tampered[at] ^= 1;
        assert!(verify_record(&name, &tampered, now).is_err());
    }

    #[test]
    fn dnslink_values() {
        assert_eq!(parse_dnslink("dnslink=/ipfs/bafy"), Some("/ipfs/bafy"));
        assert_eq!(
            parse_dnslink("dnslink=/ipns/example.org"),
            Some("/ipns/example.org")
        );
        assert_eq!(parse_dnslink("v=spf1 -all"), None);
        assert_eq!(parse_dnslink("dnslink=https://x"), None);
    }
}
