//! The libp2p node behind [`Bitswap`](super::Bitswap): the swarm task,
//! the per-peer outbound stream writers and the inbound stream readers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use cid::Cid;
use futures::StreamExt;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, multiaddr::Protocol};
use tokio::sync::mpsc;

use super::message::{Message, PresenceType, cid_of};
use super::wire::{read_message, write_message};
use super::{Shared, message::Entry};
use crate::block::{DAG_PB, SHA2_256};
use crate::{IpfsConfig, IpfsError};

/// Bitswap protocol ids, newest first.
const PROTOCOLS: [StreamProtocol; 3] = [
    StreamProtocol::new("/ipfs/bitswap/1.2.0"),
    StreamProtocol::new("/ipfs/bitswap/1.1.0"),
    StreamProtocol::new("/ipfs/bitswap/1.0.0"),
];

/// The public DHT's bootstrap peers (as kubo ships them), used with `dht`.
const BOOTSTRAP: &[&str] = &[
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx1BHJX9KZT5TBtq5KJHdmFLjP2C",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
];

/// Requests to the swarm task.
pub(super) enum Command {
    /// Look up providers of a CID in the DHT and dial them.
    FindProviders(Cid),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    stream: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
}

/// Aborts the node's tasks when dropped.
pub(super) struct TaskGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Builds the swarm (a new identity, logged), dials the configured peers
/// and spawns its tasks.
pub(super) fn spawn(
    config: &IpfsConfig,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
) -> Result<TaskGuard, IpfsError> {
    let fail = |e: String| IpfsError::Bitswap(format!("starting the libp2p node: {e}"));
    let dht = config.dht;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            yamux_config,
        )
        .map_err(|e| fail(e.to_string()))?
        .with_dns()
        .map_err(|e| fail(e.to_string()))?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let kad = dht.then(|| {
                let mut k = kad::Behaviour::new(peer, kad::store::MemoryStore::new(peer));
                k.set_mode(Some(kad::Mode::Client));
                k
            });
            Behaviour {
                stream: libp2p_stream::Behaviour::new(),
                identify: identify::Behaviour::new(
                    identify::Config::new("/ipfs/id/1.0.0".into(), key.public())
                        .with_agent_version(format!("dlm/{}", env!("CARGO_PKG_VERSION"))),
                ),
                kad: kad.into(),
            }
        })
        .map_err(|e| fail(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let mut control = swarm.behaviour().stream.new_control();
    let mut tasks = Vec::new();
    for protocol in PROTOCOLS {
        let mut incoming = control.accept(protocol).map_err(|e| fail(e.to_string()))?;
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                tokio::spawn(read_stream(shared.clone(), peer, stream));
            }
        }));
    }
    for addr in &config.peers {
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut()
            && let Some(peer) = peer_of(addr)
        {
            kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "cannot dial bitswap peer");
        }
    }
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        for b in BOOTSTRAP {
            if let Ok(addr) = b.parse::<Multiaddr>()
                && let Some(peer) = peer_of(&addr)
            {
                kad.add_address(&peer, addr);
            }
        }
        let _ = kad.bootstrap();
    }
    tasks.push(tokio::spawn(run(swarm, control, shared, commands)));
    Ok(TaskGuard(tasks))
}

/// Streams per connection, chosen so no stream's receive window can pass
/// 1 MiB. rust-yamux grows a stream's window (from 256 KiB) out of what its
/// 1 GiB connection window has left after reserving 256 KiB per allowed
/// stream, but refuses frames over 1 MiB; js-libp2p (Helia) fills a whole
/// window in one frame, so with the defaults (512 streams) its first 2 MiB
/// frame closes the connection (`FrameTooLarge`). 4,093 × 256 KiB leaves
/// 768 KiB to grow into: one stream reaches 1 MiB, the rest stay at 256 KiB.
/// libp2p-yamux exposes only the stream limit, hence this arithmetic.
const YAMUX_MAX_STREAMS: usize = 4093;

fn yamux_config() -> libp2p::yamux::Config {
    let mut c = libp2p::yamux::Config::default();
    c.set_max_num_streams(YAMUX_MAX_STREAMS);
    c
}

/// The peer id at the end of a multiaddr (`/p2p/…`).
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

async fn run(
    mut swarm: Swarm<Behaviour>,
    control: libp2p_stream::Control,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut searched = std::collections::HashSet::new();
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, num_established, endpoint, .. } => {
                    tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "libp2p peer connected");
                    if num_established.get() == 1 {
                        tokio::spawn(write_stream(control.clone(), shared.clone(), peer_id));
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    tracing::debug!(peer = %peer_id, "libp2p peer disconnected");
                    peer_gone(&shared, &peer_id);
                }
                SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                    tracing::debug!(peer = ?peer_id, %error, "libp2p dial failed");
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders { providers, .. })),
                    ..
                })) => {
                    for p in providers {
                        if !swarm.is_connected(&p) {
                            tracing::debug!(peer = %p, "dialling a DHT provider");
                            let _ = swarm.dial(p);
                        }
                    }
                }
                _ => {}
            },
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::FindProviders(cid)) => {
                    if searched.insert(cid)
                        && let Some(kad) = swarm.behaviour_mut().kad.as_mut()
                    {
                        kad.get_providers(kad::RecordKey::new(&cid.hash().to_bytes()));
                    }
                }
            },
        }
    }
}

fn peer_gone(shared: &Shared, peer: &PeerId) {
    shared
        .outboxes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(peer);
    let sends = shared.wants().remove_peer(peer);
    shared.send(sends);
}

/// Most wantlist entries sent in one message.
const MAX_ENTRIES_PER_MESSAGE: usize = 1024;

/// Opens our outbound bitswap stream to `peer` and writes the wantlist
/// entries queued for it, batching what is queued into one message.
async fn write_stream(mut control: libp2p_stream::Control, shared: Arc<Shared>, peer: PeerId) {
    let Some(mut stream) = open_stream(&mut control, peer).await else {
        tracing::debug!(%peer, "peer speaks no bitswap; not used for blocks");
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
    let me = shared.writers.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .outboxes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer, (me, tx));
    let sends = shared.wants().add_peer(peer);
    shared.send(sends);
    while let Some(first) = rx.recv().await {
        let mut entries = vec![first];
        while entries.len() < MAX_ENTRIES_PER_MESSAGE {
            match rx.try_recv() {
                Ok(e) => entries.push(e),
                Err(_) => break,
            }
        }
        tracing::trace!(%peer, entries = entries.len(), "bitswap message out");
        let message = Message::wants(entries);
        if let Err(e) = write_message(&mut stream, &message).await {
            // The connection may still be up (only the stream failed): one
            // new stream, and the message again; else the peer is let go.
            tracing::debug!(%peer, error = %e, "bitswap stream write failed; opening another");
            let Some(s) = open_stream(&mut control, peer).await else {
                break;
            };
            stream = s;
            if write_message(&mut stream, &message).await.is_err() {
                break;
            }
        }
    }
    let mut outboxes = shared
        .outboxes
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if outboxes.get(&peer).is_some_and(|(n, _)| *n == me) {
        outboxes.remove(&peer);
        drop(outboxes);
        let sends = shared.wants().remove_peer(&peer);
        shared.send(sends);
    }
}

/// Our outbound bitswap stream to `peer`, in the newest protocol it speaks.
async fn open_stream(control: &mut libp2p_stream::Control, peer: PeerId) -> Option<libp2p::Stream> {
    for protocol in PROTOCOLS {
        match control.open_stream(peer, protocol.clone()).await {
            Ok(s) => return Some(s),
            Err(e) => tracing::debug!(%peer, %protocol, error = %e, "bitswap stream refused"),
        }
    }
    None
}

/// Reads a stream the peer opened: blocks and presences for our wants.
/// Wants the peer sends us are ignored (dlm does not serve blocks).
async fn read_stream(shared: Arc<Shared>, peer: PeerId, stream: libp2p::Stream) {
    let mut r = futures::io::BufReader::with_capacity(256 * 1024, stream);
    loop {
        let m = match read_message(&mut r).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bitswap stream read failed");
                return;
            }
        };
        tracing::trace!(%peer, blocks = m.payload.len(), presences = m.block_presences.len(), "bitswap message in");
        // Hashed before the want table is locked: every stream and caller
        // shares that lock.
        let mut blocks = Vec::with_capacity(m.payload.len() + m.blocks.len());
        for b in m.payload {
            match cid_of(&b.prefix, &b.data) {
                Ok(cid) => blocks.push((cid, b.data)),
                Err(e) => tracing::debug!(%peer, error = %e, "unusable bitswap block"),
            }
        }
        for data in m.blocks {
            // Bitswap 1.0.0 blocks are CIDv0: dag-pb, sha2-256.
            if let Ok(cid) = cid_of(&[0, DAG_PB as u8, SHA2_256 as u8, 32], &data) {
                blocks.push((cid, data));
            }
        }
        let mut sends = Vec::new();
        {
            let mut wants = shared.wants();
            for (cid, data) in &blocks {
                sends.extend(wants.received(peer, cid, data));
            }
            for p in m.block_presences {
                let Ok((cid, _)) = crate::block::read_cid(&p.cid) else {
                    continue;
                };
                if p.r#type == PresenceType::DontHave as i32 {
                    sends.extend(wants.dont_have(peer, &cid));
                } else {
                    sends.extend(wants.have(peer, &cid));
                }
            }
        }
        shared.send(sends);
    }
}
