//! A fixed-answer HTTP tracker: every `GET` (any path) gets a BEP 23 compact peer list that the test chose, and
//! the request targets are recorded. It points a client at exactly one peer (say, dlm's listen port) without
//! opentracker, and shows what a client announces.
//!
//! aria2c has no option to connect to a given peer; `--bt-exclude-tracker='*' --bt-tracker=URL` with this
//! tracker's URL does it ([`super::Aria2Options::only_tracker`]).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::POLL_INTERVAL;

/// The announce interval the tracker asks for, in seconds.
const INTERVAL_SECS: u32 = 1800;

#[derive(Debug, Default)]
struct Shared {
    peers: Vec<SocketAddrV4>,
    requests: Vec<String>,
}

/// A running fixed-answer tracker; its thread stops on drop.
#[derive(Debug)]
pub struct StaticTracker {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticTracker {
    /// Listens on a free port of 127.0.0.1 and answers every announce with `peers`.
    ///
    /// # Panics
    ///
    /// If 127.0.0.1 cannot be bound.
    pub fn start(peers: &[SocketAddrV4]) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind static tracker");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Mutex::new(Shared {
            peers: peers.to_vec(),
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &shared),
                        Err(_) => thread::sleep(POLL_INTERVAL),
                    }
                }
            })
        };
        Self {
            port,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/announce`.
    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The request targets received so far (`/announce?info_hash=…&port=…&event=started…`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().expect("lock").requests.clone()
    }
}

impl Drop for StaticTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head and answers it; errors just drop the connection.
fn serve(mut stream: TcpStream, shared: &Mutex<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let target = line
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    let mut body = format!("d8:intervali{INTERVAL_SECS}e5:peers").into_bytes();
    {
        let mut shared = shared.lock().expect("lock");
        shared.requests.push(target);
        body.extend_from_slice(format!("{}:", shared.peers.len() * 6).as_bytes());
        for peer in &shared.peers {
            body.extend_from_slice(&peer.ip().octets());
            body.extend_from_slice(&peer.port().to_be_bytes());
        }
    }
    body.push(b'e');
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let _ = stream.write_all(&response);
}
