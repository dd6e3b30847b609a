//! The want table: which blocks are wanted, which peer was asked for each,
//! and who said `DONT_HAVE`. Pure bookkeeping (no I/O): each call returns
//! the wantlist entries to send, so the rules are unit-tested without a
//! network.
//!
//! Rules: a new want goes as `WANT_BLOCK` (with `sendDontHave`) to the
//! connected peer with the fewest wants in flight that has not refused it;
//! a `DONT_HAVE` moves it to the next peer; a block fulfils every waiter and
//! cancels the want at the other peers asked; a peer that disconnects hands
//! its wants to others; a want no connected peer will serve waits for the
//! next peer to connect.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use cid::Cid;
use libp2p::PeerId;
use tokio::sync::oneshot;

use super::message::{Entry, WantType, cancel, want};

/// Delivers a block, or why there is none.
pub(crate) type Waiter = oneshot::Sender<Result<Bytes, String>>;

/// Entries to send, by peer.
pub(crate) type Sends = Vec<(PeerId, Entry)>;

#[derive(Default)]
struct Want {
    waiters: Vec<Waiter>,
    asked: Vec<PeerId>,
    refused: HashSet<PeerId>,
    /// Peers that said `HAVE`.
    haves: HashSet<PeerId>,
    /// Peers sent a `WANT_HAVE`.
    probed: HashSet<PeerId>,
}

/// Most peers sent a `WANT_HAVE` for one block at a time.
const HAVE_FANOUT: usize = 8;

/// Wants forgotten recently whose blocks are still kept if they arrive.
const FORGOTTEN_KEPT: usize = 256;

/// Most bytes of recently received blocks kept for a repeated want.
const RECENT_BYTES: usize = 32 << 20;

/// The want table.
#[derive(Default)]
pub(crate) struct Wants {
    wants: HashMap<Cid, Want>,
    in_flight: HashMap<PeerId, usize>,
    /// Wants dropped by [`Wants::forget`], oldest first.
    forgotten: std::collections::VecDeque<Cid>,
    /// Blocks received lately (for wants, current or forgotten), kept for
    /// a repeated want: peers (Helia) do not send a block again for a while
    /// after sending it, and a range cut short may have dropped it unread.
    late: HashMap<Cid, Bytes>,
    /// `late`'s blocks, oldest first, and their total size.
    late_order: std::collections::VecDeque<Cid>,
    late_bytes: usize,
}

impl Wants {
    /// Wants in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.wants.len()
    }

    /// Connected peers.
    pub(crate) fn peers(&self) -> usize {
        self.in_flight.len()
    }

    /// The connected peer to send `WANT_BLOCK` for `w`: one that said
    /// `HAVE` first, then the least loaded; never one already asked or that
    /// refused.
    fn pick(&self, w: &Want) -> Option<PeerId> {
        self.in_flight
            .iter()
            .filter(|(p, _)| !w.asked.contains(p) && !w.refused.contains(p))
            .min_by_key(|(p, n)| (!w.haves.contains(*p), **n, **p))
            .map(|(p, _)| *p)
    }

    /// Sends `WANT_HAVE` (with `sendDontHave`) for `cid` to up to
    /// [`HAVE_FANOUT`] connected peers not asked, probed or refused yet, to
    /// learn who has it.
    fn probe(&mut self, cid: &Cid, sends: &mut Sends) {
        let Some(w) = self.wants.get_mut(cid) else {
            return;
        };
        let fresh: Vec<PeerId> = self
            .in_flight
            .keys()
            .filter(|p| !w.asked.contains(p) && !w.refused.contains(p) && !w.probed.contains(p))
            .take(HAVE_FANOUT)
            .copied()
            .collect();
        for p in fresh {
            w.probed.insert(p);
            sends.push((p, want(cid, WantType::Have)));
        }
    }

    /// `peer` said `HAVE` for `cid`: remembered for picking, and asked for
    /// the block at once when no peer is being asked.
    pub(crate) fn have(&mut self, peer: PeerId, cid: &Cid) -> Sends {
        let mut sends = Vec::new();
        let Some(w) = self.wants.get_mut(cid) else {
            return sends;
        };
        w.haves.insert(peer);
        if w.asked.is_empty() {
            self.ask(cid, &mut sends);
        }
        sends
    }

    fn ask(&mut self, cid: &Cid, sends: &mut Sends) -> bool {
        let Some(w) = self.wants.get(cid) else {
            return false;
        };
        let Some(peer) = self.pick(w) else {
            return false;
        };
        if let Some(w) = self.wants.get_mut(cid) {
            w.asked.push(peer);
        }
        *self.in_flight.entry(peer).or_default() += 1;
        sends.push((peer, want(cid, WantType::Block)));
        true
    }

    fn release(&mut self, peer: &PeerId) {
        if let Some(n) = self.in_flight.get_mut(peer) {
            *n = n.saturating_sub(1);
        }
    }

    /// Adds a waiter for `cid`; a new want is sent to one peer.
    pub(crate) fn want(&mut self, cid: Cid, waiter: Waiter) -> Sends {
        if let Some(data) = self.late.get(&cid) {
            let _ = waiter.send(Ok(data.clone()));
            return Vec::new();
        }
        let mut sends = Vec::new();
        let fresh = !self.wants.contains_key(&cid);
        self.wants.entry(cid).or_default().waiters.push(waiter);
        if fresh {
            self.ask(&cid, &mut sends);
        }
        sends
    }

    /// Whether `cid` is wanted and no connected peer is being asked for it.
    pub(crate) fn stalled(&self, cid: &Cid) -> bool {
        self.wants.get(cid).is_some_and(|w| w.asked.is_empty())
    }

    /// A block arrived from `peer`: waiters get it, other asked peers get a
    /// cancel. Unwanted blocks are ignored (returns no sends).
    pub(crate) fn received(&mut self, peer: PeerId, cid: &Cid, data: &Bytes) -> Sends {
        let Some(w) = self.wants.remove(cid) else {
            if self.forgotten.contains(cid) {
                self.keep(*cid, data);
            }
            return Vec::new();
        };
        self.keep(*cid, data);
        for tx in w.waiters {
            let _ = tx.send(Ok(data.clone()));
        }
        let mut sends = Vec::new();
        for p in w.asked {
            self.release(&p);
            if p != peer {
                sends.push((p, cancel(cid)));
            }
        }
        sends
    }

    /// `peer` said it does not have `cid`: ask the next peer. When no
    /// connected peer is left to ask, the waiters are told so.
    pub(crate) fn dont_have(&mut self, peer: PeerId, cid: &Cid) -> Sends {
        let mut sends = Vec::new();
        let Some(w) = self.wants.get_mut(cid) else {
            return sends;
        };
        let was_asked = w.asked.contains(&peer);
        w.asked.retain(|p| *p != peer);
        w.refused.insert(peer);
        if was_asked {
            self.release(&peer);
        }
        let none_asked = self.wants.get(cid).is_some_and(|w| w.asked.is_empty());
        if none_asked && self.ask(cid, &mut sends) {
            self.probe(cid, &mut sends);
        } else if none_asked {
            let refused = self.wants.get(cid).map_or(0, |w| w.refused.len());
            if refused >= self.in_flight.len()
                && let Some(w) = self.wants.remove(cid)
            {
                for tx in w.waiters {
                    let _ = tx.send(Err(format!("all {refused} connected peers said DONT_HAVE")));
                }
            }
        }
        sends
    }

    /// Asks once more after a timeout: `WANT_HAVE` to peers not asked yet,
    /// and `WANT_BLOCK` to the best peer not asked yet, or else again to the
    /// peers asked (a lost message, a slow peer).
    pub(crate) fn retry(&mut self, cid: &Cid) -> Sends {
        let mut sends = Vec::new();
        let asked = self.ask(cid, &mut sends);
        self.probe(cid, &mut sends);
        if asked {
            return sends;
        }
        if let Some(w) = self.wants.get(cid) {
            for p in &w.asked {
                sends.push((*p, want(cid, WantType::Block)));
            }
        }
        sends
    }

    /// Every waiter for `cid` gave up (a range was cut short or
    /// cancelled). The want is dropped from the table but not cancelled at
    /// the peers asked: the range is usually taken over by another
    /// connection that wants the same blocks at once, and peers (Helia)
    /// answer neither a `CANCEL` crossing that new `WANT_BLOCK` nor a want
    /// repeated for a block they sent lately. So the block of one of the
    /// last [`FORGOTTEN_KEPT`] forgotten wants is kept when it arrives, and
    /// handed to the next want for it.
    pub(crate) fn forget(&mut self, cid: &Cid) {
        let Some(w) = self.wants.get(cid) else {
            return;
        };
        if w.waiters.iter().any(|t| !t.is_closed()) {
            return;
        }
        let w = self.wants.remove(cid).unwrap_or_default();
        for p in w.asked {
            self.release(&p);
        }
        if self.forgotten.len() >= FORGOTTEN_KEPT {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back(*cid);
    }

    /// Keeps a received block for a repeated want, within [`RECENT_BYTES`].
    fn keep(&mut self, cid: Cid, data: &Bytes) {
        // A copy: `data` is a slice of its message buffer (several blocks,
        // up to 8 MiB), which keeping the slice would keep whole.
        if self
            .late
            .insert(cid, Bytes::copy_from_slice(data))
            .is_none()
        {
            self.late_order.push_back(cid);
            self.late_bytes += data.len();
        }
        while self.late_bytes > RECENT_BYTES {
            let Some(old) = self.late_order.pop_front() else {
                break;
            };
            if let Some(b) = self.late.remove(&old) {
                self.late_bytes -= b.len();
            }
        }
    }

    /// A peer can take wants now: it gets every want no peer is working on.
    pub(crate) fn add_peer(&mut self, peer: PeerId) -> Sends {
        self.in_flight.entry(peer).or_default();
        let idle: Vec<Cid> = self
            .wants
            .iter()
            .filter(|(_, w)| w.asked.is_empty() && !w.refused.contains(&peer))
            .map(|(c, _)| *c)
            .collect();
        let mut sends = Vec::new();
        for cid in idle {
            self.ask(&cid, &mut sends);
        }
        sends
    }

    /// A peer went away: its wants go to others.
    pub(crate) fn remove_peer(&mut self, peer: &PeerId) -> Sends {
        self.in_flight.remove(peer);
        let orphaned: Vec<Cid> = self
            .wants
            .iter_mut()
            .filter_map(|(c, w)| {
                let before = w.asked.len();
                w.asked.retain(|p| p != peer);
                (before != w.asked.len() && w.asked.is_empty()).then_some(*c)
            })
            .collect();
        let mut sends = Vec::new();
        for cid in orphaned {
            self.ask(&cid, &mut sends);
        }
        sends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        crate::block::raw_cid(&[n])
    }

    #[test]
    fn spreads_wants_and_moves_on_dont_have() {
        let mut w = Wants::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(w.add_peer(a).is_empty());
        assert!(w.add_peer(b).is_empty());
        let (tx1, _rx1) = oneshot::channel();
        let (tx2, _rx2) = oneshot::channel();
        let s1 = w.want(cid(1), tx1);
        let s2 = w.want(cid(2), tx2);
        assert_eq!(s1.len(), 1);
        assert_eq!(s2.len(), 1);
        assert_ne!(s1[0].0, s2[0].0, "two wants go to two peers");
        let first = s1[0].0;
        let next = w.dont_have(first, &cid(1));
        assert_eq!(next.len(), 1);
        assert_ne!(next[0].0, first);
    }

    #[tokio::test]
    async fn fulfils_all_waiters_and_cancels_elsewhere() {
        let mut w = Wants::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        w.add_peer(a);
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        w.want(cid(1), tx1);
        w.want(cid(1), tx2);
        w.add_peer(b);
        let again = w.retry(&cid(1));
        assert_eq!(again[0].0, b);
        let cancels = w.received(b, &cid(1), &Bytes::from_static(b"x"));
        assert_eq!(cancels.len(), 1);
        assert_eq!(cancels[0].0, a);
        assert!(cancels[0].1.cancel);
        assert_eq!(rx1.await.unwrap().unwrap(), Bytes::from_static(b"x"));
        assert_eq!(rx2.await.unwrap().unwrap(), Bytes::from_static(b"x"));
        assert_eq!(w.len(), 0);
    }

    #[tokio::test]
    async fn fails_when_every_peer_refuses_and_waits_without_peers() {
        let mut w = Wants::default();
        let (tx, rx) = oneshot::channel();
        assert!(w.want(cid(1), tx).is_empty(), "no peer yet");
        assert!(w.stalled(&cid(1)));
        let a = PeerId::random();
        let sends = w.add_peer(a);
        assert_eq!(sends.len(), 1, "a new peer takes the waiting want");
        assert!(w.dont_have(a, &cid(1)).is_empty());
        assert!(rx.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_forgotten_want_keeps_its_late_block_for_the_next_want() {
        let mut w = Wants::default();
        let a = PeerId::random();
        w.add_peer(a);
        let (tx, rx) = oneshot::channel();
        w.want(cid(1), tx);
        drop(rx);
        w.forget(&cid(1));
        assert!(
            w.received(a, &cid(1), &Bytes::from_static(b"late"))
                .is_empty()
        );
        let (tx, rx) = oneshot::channel();
        assert!(
            w.want(cid(1), tx).is_empty(),
            "answered without asking again"
        );
        assert_eq!(rx.await.unwrap().unwrap(), Bytes::from_static(b"late"));
        // A block nobody wanted is not kept.
        w.received(a, &cid(2), &Bytes::from_static(b"x"));
        let (tx, _rx) = oneshot::channel();
        assert_eq!(w.want(cid(2), tx).len(), 1);
    }

    #[test]
    fn dont_have_probes_the_others_and_have_steers_the_next_ask() {
        let mut w = Wants::default();
        let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        for p in &peers {
            w.add_peer(*p);
        }
        let (tx, _rx) = oneshot::channel();
        let first = w.want(cid(1), tx);
        assert_eq!(
            first.len(),
            1,
            "one WANT_BLOCK, no broadcast while the first peer may have it"
        );
        let asked = first[0].0;
        let next = w.dont_have(asked, &cid(1));
        let haves = next
            .iter()
            .filter(|(_, e)| e.want_type == WantType::Have as i32)
            .count();
        let blocks = next
            .iter()
            .filter(|(_, e)| e.want_type == WantType::Block as i32)
            .count();
        assert_eq!(
            (haves, blocks),
            (2, 1),
            "WANT_BLOCK to one of the other three, WANT_HAVE to the rest"
        );
        let second = next
            .iter()
            .find(|(_, e)| e.want_type == WantType::Block as i32)
            .unwrap()
            .0;
        let holder = *peers
            .iter()
            .find(|p| **p != asked && **p != second)
            .unwrap();
        assert!(
            w.have(holder, &cid(1)).is_empty(),
            "a peer is still being asked"
        );
        let third = w.dont_have(second, &cid(1));
        assert_eq!(
            third
                .iter()
                .find(|(_, e)| e.want_type == WantType::Block as i32)
                .unwrap()
                .0,
            holder
        );
    }

    #[test]
    fn a_departing_peer_hands_over_its_wants() {
        let mut w = Wants::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        w.add_peer(a);
        let (tx, _rx) = oneshot::channel();
        w.want(cid(1), tx);
        w.add_peer(b);
        let sends = w.remove_peer(&a);
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].0, b);
    }
}
