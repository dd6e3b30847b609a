//! Instruction counts of dlm's hot paths, under Callgrind (gungraun).
//!
//! Counts, unlike timings, repeat on a noisy shared machine: the same binary
//! and input give the same totals within a fraction of a percent. Run with
//! `scripts/bench-instructions`, which installs the matching
//! `gungraun-runner`, runs these benches and prints each count beside the
//! committed baseline (`tests/benches/baseline.tsv`). A benchmark, not a
//! test: nothing fails on a change.
//!
//! - `range_set`: the done-range bookkeeping of every write (`RangeSet`
//!   inserts out of order, then the contiguous prefix), 20,000 ranges.
//! - `sha256`: the whole-file digest (`MultiHasher`, SHA-256), 16 MiB.
//!   Valgrind hides the CPU's SHA extensions, so this counts `sha2`'s
//!   portable code (about 52 instructions a byte), not what runs natively.
//! - `engine`: the engine's per-chunk path (scheduler, positional writes,
//!   done ranges, resume bookkeeping) over 64 MiB in 256 KiB frames from an
//!   in-memory source to a memory sink, 4 connections, with and without
//!   the SHA-256 verifier. Counts every thread.
//! - `http_body`: 32 MiB over HTTP/1.1 from a loopback server of the
//!   bench's own (one thread, `Range` support) through `dlm-http` into a
//!   memory sink, 2 connections, verifier off. Counts every thread, the
//!   server's too.
//! - `bittorrent_piece`: the peer wire's piece path: 16 pieces of 1 MiB as
//!   `piece` messages of 16 KiB, decoded, assembled and SHA-1-checked.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dlm_core::testkit::MemorySource;
use dlm_core::{
    ByteRange, DigestAlgorithm, Download, DownloadOptions, MemorySink, MultiHasher, Output,
    RangeSet,
};
use gungraun::{
    Callgrind, EntryPoint, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use sha1::Digest as _;

/// Deterministic bytes (no RNG: the same input on every run).
fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

/// Zeros, for the benches that count every instruction of the process:
/// `calloc`'s fresh pages cost no instructions, so the count is the path's.
fn zeros(len: usize) -> Bytes {
    Bytes::from(vec![0u8; len])
}

fn range_set_input() -> Vec<ByteRange> {
    // Four writers, each 256 KiB at a time, interleaved, as four connections write.
    let mut out = Vec::new();
    let step = 256 << 10;
    for i in 0..5_000u64 {
        for w in 0..4u64 {
            let at = w * 5_000 * step + i * step;
            out.push(ByteRange::new(at, at + step));
        }
    }
    out
}

#[library_benchmark]
#[bench::interleaved_20k(range_set_input())]
fn range_set(ranges: Vec<ByteRange>) -> u64 {
    let mut set = RangeSet::new();
    let mut prefix = 0;
    for r in ranges {
        set.insert(r);
        prefix = set.contiguous_prefix();
    }
    black_box(prefix)
}

#[library_benchmark]
#[bench::mib16(payload(16 << 20))]
fn sha256(data: Bytes) -> usize {
    let mut h = MultiHasher::new([DigestAlgorithm::Sha256]);
    for frame in data.chunks(256 << 10) {
        h.update(frame);
    }
    black_box(h.finalize().len())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn download(source: dlm_core::BoxSource, options: DownloadOptions) -> usize {
    runtime().block_on(async move {
        let sink = MemorySink::new();
        let output = Output::Sink {
            sink: Arc::new(sink.clone()),
            control_file: None,
        };
        Download::new(source, output)
            .with_options(options)
            .start()
            .wait()
            .await
            .expect("download");
        sink.to_vec().len()
    })
}

fn every_thread() -> LibraryBenchmarkConfig {
    let mut config = LibraryBenchmarkConfig::default();
    config.tool(Callgrind::default().entry_point(EntryPoint::None));
    config
}

#[library_benchmark(config = every_thread())]
#[bench::mib64_no_verify(zeros(64 << 20), false)]
#[bench::mib64_sha256(zeros(64 << 20), true)]
fn engine(data: Bytes, verify: bool) -> usize {
    let options = DownloadOptions::default()
        .with_connections(4)
        .with_verify(verify);
    // 256 KiB frames, as dlm-http's reads deliver a fast body.
    let source = MemorySource::new(data).with_frame_len(256 << 10);
    black_box(download(Arc::new(source), options))
}

/// A one-thread HTTP/1.1 server of `body` on 127.0.0.1 that honours
/// `Range: bytes=A-B` and keep-alive; runs until the process ends.
fn serve(body: Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().expect("clone");
                let mut reader = BufReader::new(conn);
                loop {
                    let mut range = None;
                    let mut head = false;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    head = head || line.starts_with("HEAD");
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                            let (a, b) = v.split_once('-').unwrap_or((v, ""));
                            let a: usize = a.parse().unwrap_or(0);
                            let b: usize = b.parse().unwrap_or(body.len() - 1);
                            range = Some((a, b.min(body.len() - 1)));
                        }
                    }
                    let (status, start, end) = match range {
                        Some((a, b)) => ("206 Partial Content", a, b + 1),
                        None => ("200 OK", 0, body.len()),
                    };
                    let mut reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: \"bench\"\r\n",
                        end - start
                    );
                    if range.is_some() {
                        reply.push_str(&format!(
                            "Content-Range: bytes {start}-{}/{}\r\n",
                            end - 1,
                            body.len()
                        ));
                    }
                    reply.push_str("\r\n");
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                    if !head && out.write_all(&body[start..end]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[library_benchmark(config = every_thread())]
#[bench::mib32(zeros(32 << 20))]
fn http_body(data: Bytes) -> usize {
    let addr = serve(data);
    let client = dlm_http::HttpClient::new(dlm_http::HttpConfig::default()).expect("client");
    let url = url::Url::parse(&format!("http://{addr}/data.bin")).expect("url");
    let source = dlm_http::HttpSource::new(client, url, http::HeaderMap::new()).expect("source");
    let options = DownloadOptions::default()
        .with_connections(2)
        .with_verify(false);
    black_box(download(Arc::new(source), options))
}

const PIECE: usize = 1 << 20;
const BLOCK: usize = 16 << 10;

/// 16 pieces as `piece` messages on the wire, and each piece's SHA-1.
fn piece_messages() -> (BytesMut, Vec<[u8; 20]>) {
    let data = payload(16 * PIECE);
    let mut wire = BytesMut::new();
    let mut hashes = Vec::new();
    for (index, piece) in data.chunks(PIECE).enumerate() {
        hashes.push(sha1::Sha1::digest(piece).into());
        for (b, block) in piece.chunks(BLOCK).enumerate() {
            dlm_bittorrent::wire::Message::Piece {
                index: index as u32,
                begin: (b * BLOCK) as u32,
                block: Bytes::copy_from_slice(block),
            }
            .encode(&mut wire);
        }
    }
    (wire, hashes)
}

#[library_benchmark]
#[bench::pieces16_mib1(piece_messages())]
fn bittorrent_piece(input: (BytesMut, Vec<[u8; 20]>)) -> usize {
    let (mut wire, hashes) = input;
    let mut piece = Vec::with_capacity(PIECE);
    let mut verified = 0;
    while let Ok(Some(msg)) = dlm_bittorrent::wire::Message::decode(&mut wire, 2) {
        if let dlm_bittorrent::wire::Message::Piece {
            index,
            begin,
            block,
        } = msg
        {
            debug_assert_eq!(begin as usize, piece.len());
            piece.extend_from_slice(&block);
            if piece.len() == PIECE {
                let ok = <[u8; 20]>::from(sha1::Sha1::digest(&piece)) == hashes[index as usize];
                verified += usize::from(ok);
                piece.clear();
            }
        }
    }
    black_box(verified)
}

library_benchmark_group!(
    name = hot_paths,
    benchmarks = [range_set, sha256, engine, http_body, bittorrent_piece]
);

main!(library_benchmark_groups = hot_paths);
