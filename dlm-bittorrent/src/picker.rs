//! `PiecePicker`: the torrent's [`Scheduler`] — which pieces each peer
//! connection fetches next.
//!
//! - **Strict priority** for pieces a failed chunk left behind (their peer
//!   dropped or choked us mid-piece), so started work finishes first.
//! - **Rarest first** (BEP 3's recommendation, libtorrent's default): among
//!   the pieces the connection's peer has and nobody is fetching, the ones
//!   fewest connected peers have, ties broken at random. The chosen piece is
//!   extended with the following equally rare pieces (up to
//!   [`MAX_EXTENT_BYTES`]), so one peer's request pipeline runs across
//!   piece boundaries (like libtorrent's "piece extent affinity").
//! - **Sequential** (streaming): the first missing pieces in order.
//! - **Endgame**: when every missing piece is being fetched, an idle
//!   connection takes over the back half of the slowest-looking chunk
//!   (beyond the piece its peer is on and the one it requested ahead), and
//!   [`PiecePicker::endgame`] tells the source to race idle peers for the
//!   last pieces, cancelling the loser's requests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dlm_core::scheduler::{Assignment, Availability, ChunkEvent, ChunkMap, ConnInfo};
use dlm_core::{ByteRange, Scheduler};

use crate::peer::PieceCounts;

/// One assignment covers consecutive pieces up to 1/32 of the torrent,
/// between these bounds. A peer's request pipeline runs across the pieces
/// of one assignment but drains between assignments, so on fast links
/// longer runs are faster (measured on loopback: 4 MiB runs of 1 MiB
/// pieces, 184 MiB/s; 32 MiB, see the README's table), while 1/32 keeps
/// many runs for many peers on small torrents.
pub const MIN_EXTENT_BYTES: u64 = 4 << 20;
/// See [`MIN_EXTENT_BYTES`].
pub const MAX_EXTENT_BYTES: u64 = 32 << 20;

/// The torrent's piece picker.
#[derive(Debug)]
pub struct PiecePicker {
    piece_length: u64,
    len: u64,
    counts: Arc<PieceCounts>,
    sequential: bool,
    started: BTreeSet<usize>,
    endgame: Arc<AtomicBool>,
    rng: fastrand::Rng,
}

impl PiecePicker {
    /// A picker for a byte space of `len` bytes in pieces of `piece_length`
    /// bytes, reading availability from `counts`.
    pub fn new(piece_length: u64, len: u64, counts: Arc<PieceCounts>, sequential: bool) -> Self {
        Self {
            piece_length: piece_length.max(1),
            len,
            counts,
            sequential,
            started: BTreeSet::new(),
            endgame: Arc::new(AtomicBool::new(false)),
            // Seeded per picker: clients that broke ties alike would all want
            // the same pieces first.
            rng: fastrand::Rng::new(),
        }
    }

    /// Uses `flag` as the endgame flag (shared with the fetching side).
    pub fn sharing_endgame(mut self, flag: Arc<AtomicBool>) -> Self {
        self.endgame = flag;
        self
    }

    /// Set while every missing piece is already being fetched.
    pub fn endgame(&self) -> Arc<AtomicBool> {
        self.endgame.clone()
    }

    fn piece_range(&self, i: usize) -> ByteRange {
        let start = i as u64 * self.piece_length;
        ByteRange::new(start, (start + self.piece_length).min(self.len))
    }

    /// Pieces wholly unassigned and servable by `avail`, in order.
    fn candidates(&self, avail: &Availability, map: &ChunkMap) -> Vec<usize> {
        let mut out = Vec::new();
        for gap in map.unassigned() {
            let first = gap.start.div_ceil(self.piece_length) as usize;
            let mut i = first;
            loop {
                let p = self.piece_range(i);
                if p.is_empty() || p.end > gap.end {
                    break;
                }
                if avail.covers(p) {
                    out.push(i);
                }
                i += 1;
            }
        }
        out
    }

    /// `first` and the candidates right after it (`ok` says which), up to
    /// 1/32 of the torrent within [`MIN_EXTENT_BYTES`]..[`MAX_EXTENT_BYTES`].
    fn extent(&self, first: usize, cands: &[usize], ok: impl Fn(usize) -> bool) -> ByteRange {
        let bytes = (self.len / 32).clamp(MIN_EXTENT_BYTES, MAX_EXTENT_BYTES);
        let most = (bytes / self.piece_length).max(1) as usize;
        let mut last = first;
        let at = cands.partition_point(|c| *c <= first);
        for c in &cands[at..] {
            if *c != last + 1 || last + 1 - first >= most || !ok(*c) {
                break;
            }
            last = *c;
        }
        ByteRange::new(self.piece_range(first).start, self.piece_range(last).end)
    }

    /// The back half of another connection's chunk, beyond the piece its
    /// peer is on and the one requested ahead.
    fn split(&self, conn: &ConnInfo, map: &ChunkMap) -> Option<Assignment> {
        let pl = self.piece_length;
        map.in_flight
            .iter()
            .filter(|(id, _)| **id != conn.id)
            .filter_map(|(victim, f)| {
                let from = (f.pos / pl + 2) * pl;
                let pieces = f.end.saturating_sub(from).div_ceil(pl);
                let at = from + pieces / 2 * pl;
                let tail = ByteRange::new(at, f.end);
                (at < f.end && conn.availability.covers(tail)).then_some((*victim, tail))
            })
            .max_by_key(|(_, tail)| tail.len())
            .map(|(victim, range)| Assignment::Split { victim, range })
    }
}

impl Scheduler for PiecePicker {
    fn next(&mut self, conn: &ConnInfo, map: &ChunkMap, _now: Instant) -> Option<Assignment> {
        let cands = self.candidates(&conn.availability, map);
        if cands.is_empty() {
            if !map.unassigned().is_empty() || map.in_flight.is_empty() {
                // Missing pieces this peer lacks: not endgame, just a poor peer.
                return None;
            }
            let split = self.split(conn, map);
            // Endgame proper: nothing left to split, every chunk is on its last pieces.
            let pl = self.piece_length;
            let last_pieces = map
                .in_flight
                .values()
                .all(|f| f.end.saturating_sub(f.pos) <= 2 * pl);
            self.endgame
                .store(split.is_none() && last_pieces, Ordering::Relaxed);
            return split;
        }
        self.endgame.store(false, Ordering::Relaxed);
        if let Some(first) = self
            .started
            .iter()
            .copied()
            .find(|p| cands.binary_search(p).is_ok())
        {
            return Some(Assignment::Range(
                self.extent(first, &cands, |p| self.started.contains(&p)),
            ));
        }
        if self.sequential {
            return Some(Assignment::Range(self.extent(cands[0], &cands, |_| true)));
        }
        let rarest = cands.iter().map(|p| self.counts.get(*p)).min()?;
        let ties: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|p| self.counts.get(*p) == rarest)
            .collect();
        let first = ties[self.rng.usize(..ties.len())];
        Some(Assignment::Range(
            self.extent(first, &cands, |p| self.counts.get(p) == rarest),
        ))
    }

    fn on_event(&mut self, event: &ChunkEvent, _now: Instant) {
        let pl = self.piece_length;
        match event {
            ChunkEvent::Failed { range, .. } if !range.is_empty() => {
                let first = (range.start / pl) as usize;
                let last = ((range.end - 1) / pl) as usize;
                self.started.extend(first..=last);
            }
            ChunkEvent::Done { range, .. } if !range.is_empty() => {
                let first = (range.start / pl) as usize;
                let last = ((range.end - 1) / pl) as usize;
                self.started.retain(|p| *p < first || *p > last);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use dlm_core::RangeSet;
    use dlm_core::scheduler::{ConnId, InFlight};

    use super::*;

    const PL: u64 = 1 << 20;

    fn picker(pieces: usize, counts: &[u16], sequential: bool) -> PiecePicker {
        let c = Arc::new(PieceCounts::new(pieces));
        for (i, n) in counts.iter().enumerate() {
            for _ in 0..*n {
                c.add(i);
            }
        }
        PiecePicker::new(PL, pieces as u64 * PL - 100, c, sequential)
    }

    fn conn(id: u32, pieces: &[usize]) -> ConnInfo {
        let set = RangeSet::from_ranges(
            pieces
                .iter()
                .map(|p| ByteRange::new(*p as u64 * PL, (*p as u64 + 1) * PL)),
        );
        ConnInfo {
            id: ConnId(id),
            availability: Availability::Ranges(set),
        }
    }

    fn map(pieces: usize) -> ChunkMap {
        ChunkMap::new(pieces as u64 * PL - 100, RangeSet::new())
    }

    #[test]
    fn picks_the_rarest_piece_the_peer_has_and_extends_it() {
        let mut p = picker(10, &[3, 3, 1, 1, 3, 2, 2, 2, 2, 1], false);
        // The peer lacks piece 9: the rarest it has are 2 and 3. Starting from
        // 2 (a random tie-break) takes both; starting from 3 takes 3 alone.
        let a = p.next(&conn(0, &[0, 1, 2, 3, 4, 5]), &map(10), Instant::now());
        assert!(
            a == Some(Assignment::Range(ByteRange::new(2 * PL, 4 * PL)))
                || a == Some(Assignment::Range(ByteRange::new(3 * PL, 4 * PL))),
            "{a:?}"
        );
    }

    #[test]
    fn the_last_piece_is_short_and_whole_space_peers_get_it() {
        let mut p = picker(3, &[2, 2, 1], false);
        let whole = ConnInfo {
            id: ConnId(0),
            availability: Availability::Whole,
        };
        let a = p.next(&whole, &map(3), Instant::now()).unwrap();
        assert_eq!(a.range(), ByteRange::new(2 * PL, 3 * PL - 100));
    }

    #[test]
    fn sequential_mode_goes_in_order() {
        let mut p = picker(8, &[1, 5, 1, 1, 1, 1, 1, 1], true);
        let a = p.next(&conn(0, &[1, 2, 3]), &map(8), Instant::now());
        assert_eq!(a, Some(Assignment::Range(ByteRange::new(PL, 4 * PL))));
    }

    #[test]
    fn pieces_of_a_failed_chunk_come_first() {
        let mut p = picker(8, &[1; 8], false);
        p.on_event(
            &ChunkEvent::Failed {
                conn: ConnId(3),
                range: ByteRange::new(5 * PL, 6 * PL),
            },
            Instant::now(),
        );
        let a = p.next(&conn(0, &[0, 1, 2, 3, 4, 5, 6, 7]), &map(8), Instant::now());
        assert_eq!(a, Some(Assignment::Range(ByteRange::new(5 * PL, 6 * PL))));
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut p = picker(64, &[1; 64], false);
        let all: Vec<usize> = (0..64).collect();
        let starts: BTreeSet<u64> = (0..20)
            .map(|_| {
                p.next(&conn(0, &all), &map(64), Instant::now())
                    .unwrap()
                    .range()
                    .start
            })
            .collect();
        assert!(starts.len() > 5, "{starts:?}");
    }

    #[test]
    fn endgame_takes_the_back_of_another_chunk() {
        let mut p = picker(12, &[1; 12], false);
        let mut m = map(12);
        m.in_flight.insert(
            ConnId(1),
            InFlight {
                start: 0,
                pos: PL / 2,
                end: 12 * PL - 100,
            },
        );
        let all: Vec<usize> = (0..12).collect();
        let a = p.next(&conn(0, &all), &m, Instant::now());
        // Pieces 0 and 1 stay with the victim; 2..12 remain, the back half from 7.
        assert_eq!(
            a,
            Some(Assignment::Split {
                victim: ConnId(1),
                range: ByteRange::new(7 * PL, 12 * PL - 100),
            })
        );
        assert!(
            !p.endgame().load(Ordering::Relaxed),
            "there was a tail to take"
        );
        // A peer without those pieces cannot take them.
        assert_eq!(p.next(&conn(2, &[0]), &m, Instant::now()), None);
        // Once every chunk is on its last pieces, endgame: the source races them.
        m.in_flight.insert(
            ConnId(1),
            InFlight {
                start: 0,
                pos: 11 * PL,
                end: 12 * PL - 100,
            },
        );
        assert_eq!(p.next(&conn(0, &all), &m, Instant::now()), None);
        assert!(p.endgame().load(Ordering::Relaxed));
    }
}
