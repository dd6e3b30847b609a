//! The checks behind dlm's fuzz targets, one `pub fn TARGET(data: &[u8])` per
//! parser that reads the network or the disk.
//!
//! Each cargo-fuzz binary in `fuzz_targets/` calls exactly one of these, and
//! `tests/corpus.rs` feeds every file of `corpus/TARGET/` to the same function
//! on the stable toolchain, so the committed corpus is replayed on every CI
//! run whether or not libFuzzer can run. A function returns normally on any
//! input; a panic (an `assert!` of an invariant, an index out of bounds, an
//! overflow in a debug build) is a finding.
//!
//! [`TARGETS`] lists them by name; the name is the binary's, the corpus
//! directory's and the function's.

mod ftp;
mod http;
mod ipfs;
mod local;
mod s3;
mod torrent;

pub use ftp::{ftp_listing, ftp_reply};
pub use http::{content_disposition, content_range, digest};
pub use ipfs::{bitswap, car, dag_pb, ipns};
pub use local::{control_file, netrc, settings};
pub use s3::{s3_error, s3_list};
pub use torrent::{
    bencode, bt_extension, lsd, magnet, metainfo, mse_respond, tracker_reply, tracker_udp, wire,
};

/// A target's function: runs the parser on one input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target: its name (binary, corpus directory) and the function fed.
pub const TARGETS: &[(&str, Target)] = &[
    ("bencode", bencode),
    ("bitswap", bitswap),
    ("bt_extension", bt_extension),
    ("car", car),
    ("content_disposition", content_disposition),
    ("content_range", content_range),
    ("control_file", control_file),
    ("dag_pb", dag_pb),
    ("digest", digest),
    ("ftp_listing", ftp_listing),
    ("ftp_reply", ftp_reply),
    ("ipns", ipns),
    ("lsd", lsd),
    ("magnet", magnet),
    ("metainfo", metainfo),
    ("mse_respond", mse_respond),
    ("netrc", netrc),
    ("s3_error", s3_error),
    ("s3_list", s3_list),
    ("settings", settings),
    ("tracker_reply", tracker_reply),
    ("tracker_udp", tracker_udp),
    ("wire", wire),
];

/// The input split at its first `\n`: the head as text (lossy UTF-8) and
/// the rest. Targets whose parser takes a second argument (a host name, an
/// IPNS name) carry it in the head, so the corpus can pair them.
fn split_head(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (String::from_utf8_lossy(data).into_owned(), &[]),
    }
}
