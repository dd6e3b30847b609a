//! Initiator against responder over `tokio::io::duplex`, for each policy
//! pair, and a responder fed garbage.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::dh::{KEY_LEN, KeyPair};
use super::handshake::{MAX_PAD, REQ1_SEARCH};
use super::*;
use crate::InfoHash;

const T: Duration = Duration::from_secs(5);
const HASH: InfoHash = InfoHash([0xAB; 20]);

type Pair = (
    Result<MseStream<DuplexStream>, MseError>,
    Result<(MseStream<DuplexStream>, InfoHash), MseError>,
);

async fn run(out: Encryption, inc: Encryption, ia: &[u8]) -> Pair {
    let (a, b) = tokio::io::duplex(64 << 10);
    let ia = ia.to_vec();
    let a = tokio::spawn(async move { initiate_with_payload(a, HASH, out, &ia, T).await });
    let b = respond(b, &[InfoHash([1; 20]), HASH], inc, T).await;
    if b.is_err() {
        // The responder dropped its end: the initiator ends too.
    }
    (a.await.unwrap(), b)
}

/// Both ends exchange bytes after the handshake, in both directions.
async fn talk(mut a: MseStream<DuplexStream>, mut b: MseStream<DuplexStream>, ia: &[u8]) {
    let mut got = vec![0u8; ia.len()];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(got, ia);
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let sent = big.clone();
    let w = tokio::spawn(async move {
        a.write_all(&sent).await.unwrap();
        a.flush().await.unwrap();
        let mut back = [0u8; 5];
        a.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
    });
    let mut got = vec![0u8; big.len()];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(got, big);
    b.write_all(b"hello").await.unwrap();
    w.await.unwrap();
}

#[tokio::test]
async fn prefer_to_prefer_obfuscates_and_selects_plaintext() {
    let (a, b) = run(Encryption::Prefer, Encryption::Prefer, b"IA bytes").await;
    let (a, (b, ih)) = (a.unwrap(), b.unwrap());
    assert_eq!(ih, HASH);
    assert!(!a.is_encrypted() && !b.is_encrypted());
    talk(a, b, b"IA bytes").await;
}

#[tokio::test]
async fn require_on_either_side_selects_rc4() {
    for (out, inc) in [
        (Encryption::Require, Encryption::Prefer),
        (Encryption::Prefer, Encryption::Require),
        (Encryption::Require, Encryption::Require),
    ] {
        let (a, b) = run(out, inc, &[19; 68]).await;
        let (a, (b, _)) = (a.unwrap(), b.unwrap());
        assert!(a.is_encrypted() && b.is_encrypted(), "{out:?} -> {inc:?}");
        talk(a, b, &[19; 68]).await;
    }
}

#[tokio::test]
async fn disable_out_sends_plaintext_that_prefer_accepts() {
    let mut hs = vec![19u8];
    hs.extend_from_slice(crate::wire::PROTOCOL);
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&HASH.0);
    hs.extend_from_slice(&[7; 20]);
    let (a, b) = run(Encryption::Disable, Encryption::Prefer, &hs).await;
    let (a, (b, ih)) = (a.unwrap(), b.unwrap());
    assert_eq!(ih, HASH);
    assert!(!a.is_encrypted() && !b.is_encrypted());
    // The sniffed handshake is read again, whole.
    talk(a, b, &hs).await;
}

#[tokio::test]
async fn refusals_by_policy() {
    let mut hs = vec![19u8];
    hs.extend_from_slice(crate::wire::PROTOCOL);
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&HASH.0);
    hs.extend_from_slice(&[7; 20]);
    let (_, b) = run(Encryption::Disable, Encryption::Require, &hs).await;
    assert!(matches!(b, Err(MseError::PlaintextRefused)), "{b:?}");
    let (a, b) = run(Encryption::Prefer, Encryption::Disable, b"").await;
    assert!(matches!(b, Err(MseError::EncryptionRefused)), "{b:?}");
    // The initiator sees the connection closed, and may retry in plaintext.
    let a = a.unwrap_err();
    assert!(a.may_retry_plaintext(), "{a:?}");
}

#[tokio::test]
async fn a_torrent_we_do_not_serve_is_refused() {
    let (a, b) = tokio::io::duplex(64 << 10);
    let a = tokio::spawn(initiate(a, InfoHash([9; 20]), Encryption::Prefer, T));
    let b = respond(b, &[HASH], Encryption::Prefer, T).await;
    assert!(matches!(b, Err(MseError::UnknownInfoHash)), "{b:?}");
    assert!(a.await.unwrap().is_err());
}

#[tokio::test]
async fn garbage_is_refused_without_hanging() {
    // Ya and 2 KiB of garbage: no HASH('req1', S) within 532 bytes.
    let (mut a, b) = tokio::io::duplex(64 << 10);
    let garbage: Vec<u8> = (0..KEY_LEN + 2048).map(|i| (i * 31 + 5) as u8).collect();
    a.write_all(&garbage).await.unwrap();
    let r = respond(b, &[HASH], Encryption::Prefer, T).await;
    assert!(
        matches!(r, Err(MseError::NoSync { limit, .. }) if limit == REQ1_SEARCH),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_short_handshake_times_out() {
    // Ya only, then silence: the limit ends it.
    let (mut a, b) = tokio::io::duplex(64 << 10);
    a.write_all(&[5u8; KEY_LEN]).await.unwrap();
    let r = respond(b, &[HASH], Encryption::Prefer, Duration::from_millis(200)).await;
    assert!(matches!(r, Err(MseError::TimedOut { .. })), "{r:?}");
    drop(a);
}

/// A's step 3 by hand, with `PadC` longer than 512 bytes: refused.
#[tokio::test]
async fn a_too_long_pad_c_is_refused() {
    let (mut a, b) = tokio::io::duplex(64 << 10);
    let xa = KeyPair::from_private(&[3; 20]);
    let xb = KeyPair::from_private(&[4; 20]);
    let s = xa.shared_secret(xb.public());
    let mut msg = xa.public().to_vec();
    msg.extend_from_slice(&[0xEE; 100]); // PadA
    msg.extend_from_slice(&cipher::req1(&s));
    msg.extend_from_slice(&cipher::req2_xor_req3(&HASH.0, &s));
    let mut enc = [0u8; 14];
    enc[8..12].copy_from_slice(&CRYPTO_RC4.to_be_bytes());
    enc[12..14].copy_from_slice(&u16::try_from(MAX_PAD + 1).unwrap().to_be_bytes());
    cipher::Rc4Stream::key_a(&s, &HASH.0).apply(&mut enc);
    msg.extend_from_slice(&enc);
    a.write_all(&msg).await.unwrap();
    let r = handshake::respond_keyed(b, &[HASH], Encryption::Prefer, Some(xb)).await;
    assert!(
        matches!(
            r,
            Err(MseError::PadTooLong {
                what: "PadC",
                len: 513
            })
        ),
        "{r:?}"
    );
}

/// The peer closing mid-handshake is an error at once, not a wait.
#[tokio::test]
async fn a_closed_connection_is_an_error() {
    let (mut a, b) = tokio::io::duplex(1024);
    a.write_all(&[1u8; 50]).await.unwrap();
    drop(a);
    let r = respond(b, &[HASH], Encryption::Prefer, T).await;
    assert!(matches!(r, Err(MseError::Closed)), "{r:?}");
}

#[test]
fn the_policy_is_set_by_a_bittorrent_option() {
    let set = |v: &str| {
        let opts = dlm_core::Options::new().with("bittorrent.encryption", v);
        dlm_core::config::apply_options(&crate::TorrentConfig::default(), "bittorrent", &opts)
            .map(|c| c.encryption)
    };
    assert_eq!(
        crate::TorrentConfig::default().encryption,
        Encryption::Prefer
    );
    assert_eq!(set("require").unwrap(), Encryption::Require);
    assert_eq!(set("disable").unwrap(), Encryption::Disable);
    assert_eq!(set("prefer").unwrap(), Encryption::Prefer);
    assert!(set("forced").is_err());
}

/// The cost of MSE, for the README: handshakes per second over an
/// in-memory duplex, and RC4 payload throughput through [`MseStream`]
/// against a plaintext one. Meaningful in release only:
/// `cargo test --release -p dlm-bittorrent mse::tests::cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand in release"]
async fn cost() {
    use std::time::Instant;
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let (a, b) = run(Encryption::Require, Encryption::Prefer, &[19; 68]).await;
        assert!(a.is_ok() && b.is_ok());
    }
    let per = started.elapsed() / n;
    println!("handshake (both sides, RC4 selected): {per:?} each");
    let dh = Instant::now();
    for _ in 0..n {
        let k = KeyPair::generate().unwrap();
        std::hint::black_box(k.shared_secret(k.public()));
    }
    println!("one side's two modpows: {:?}", dh.elapsed() / n);
    for encrypt in [false, true] {
        let (a, b) = if encrypt {
            run(Encryption::Require, Encryption::Require, b"").await
        } else {
            run(Encryption::Prefer, Encryption::Prefer, b"").await
        };
        let (mut a, (mut b, _)) = (a.unwrap(), b.unwrap());
        let total: usize = 512 << 20;
        let block = vec![0x5Au8; 64 << 10];
        let started = Instant::now();
        let w = tokio::spawn(async move {
            let mut sent = 0;
            while sent < total {
                a.write_all(&block).await.unwrap();
                sent += block.len();
            }
            a.flush().await.unwrap();
        });
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < total {
            got += b.read(&mut buf).await.unwrap();
        }
        w.await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{}: {:.0} MiB/s (512 MiB, encrypt + decrypt on 2 threads)",
            if encrypt { "RC4" } else { "plaintext" },
            total as f64 / secs / f64::from(1 << 20)
        );
    }
}
