//! The choking algorithm (BEP 3 "Choking and Optimistic Unchoking"):
//! which interested peers we upload to.
//!
//! Every 10 s the peers that sent us the most in the last period
//! (tit-for-tat; once we are a seed, those we uploaded to fastest) get the
//! regular upload slots; every 30 s one other interested peer, chosen at
//! random, gets the optimistic slot, so newcomers get a chance to show
//! their rate. Between rounds a slot left free is filled at once, so a
//! peer does not wait 10 s for a slot nobody uses.

use std::collections::HashSet;
use std::net::SocketAddr;

/// One peer as the choker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The peer.
    pub(crate) addr: SocketAddr,
    /// It wants our pieces.
    pub(crate) interested: bool,
    /// Bytes it sent us (leeching) or we sent it (seeding) last period.
    pub(crate) rate: u64,
}

/// The choker's memory between rounds.
#[derive(Debug, Default)]
pub(crate) struct Choker {
    /// Upload slots in all, the optimistic one included (≥ 1).
    slots: usize,
    optimistic: Option<SocketAddr>,
    rounds: u64,
    rng: fastrand::Rng,
}

impl Choker {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            slots: slots.max(1),
            optimistic: None,
            rounds: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// A full round (every 10 s): the peers to unchoke.
    pub(crate) fn round(&mut self, peers: &[Candidate]) -> HashSet<SocketAddr> {
        let rotate = self.rounds.is_multiple_of(3);
        self.rounds += 1;
        let mut interested: Vec<&Candidate> = peers.iter().filter(|p| p.interested).collect();
        interested.sort_by_key(|p| std::cmp::Reverse(p.rate));
        let regular = self.slots.saturating_sub(1).max(1);
        let mut unchoked: HashSet<SocketAddr> =
            interested.iter().take(regular).map(|p| p.addr).collect();
        let others: Vec<SocketAddr> = interested
            .iter()
            .map(|p| p.addr)
            .filter(|a| !unchoked.contains(a))
            .collect();
        let keep = self.optimistic.filter(|o| others.contains(o));
        self.optimistic = if rotate || keep.is_none() {
            (!others.is_empty()).then(|| others[self.rng.usize(..others.len())])
        } else {
            keep
        };
        if self.slots > 1 {
            unchoked.extend(self.optimistic);
        }
        unchoked
    }

    /// Between rounds: adds interested choked peers to `unchoked` while slots are free.
    pub(crate) fn fill(&self, peers: &[Candidate], unchoked: &mut HashSet<SocketAddr>) {
        let busy = peers
            .iter()
            .filter(|p| p.interested && unchoked.contains(&p.addr))
            .count();
        let free = self.slots.saturating_sub(busy);
        let waiting = peers
            .iter()
            .filter(|p| p.interested && !unchoked.contains(&p.addr))
            .map(|p| p.addr)
            .take(free)
            .collect::<Vec<_>>();
        unchoked.extend(waiting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16, interested: bool, rate: u64) -> Candidate {
        Candidate {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            interested,
            rate,
        }
    }

    #[test]
    fn the_fastest_interested_peers_get_the_regular_slots() {
        let mut c = Choker::new(4);
        let peers = [
            peer(1, true, 10),
            peer(2, true, 50),
            peer(3, false, 900),
            peer(4, true, 40),
            peer(5, true, 30),
            peer(6, true, 5),
        ];
        let u = c.round(&peers);
        for fast in [2, 4, 5] {
            assert!(u.contains(&peers.iter().find(|p| p.addr.port() == fast).unwrap().addr));
        }
        assert!(!u.contains(&peers[2].addr), "not interested");
        // One optimistic slot among the two slower ones.
        assert_eq!(u.len(), 4);
        assert!(u.contains(&peers[0].addr) ^ u.contains(&peers[5].addr));
    }

    #[test]
    fn free_slots_are_filled_between_rounds() {
        let mut c = Choker::new(4);
        let mut u = c.round(&[peer(1, true, 1)]);
        let later = [peer(1, true, 1), peer(2, true, 0), peer(3, false, 0)];
        c.fill(&later, &mut u);
        assert_eq!(u.len(), 2);
        assert!(!u.contains(&later[2].addr));
    }
}
