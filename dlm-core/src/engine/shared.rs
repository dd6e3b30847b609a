//! State shared by the engine loop and its connection workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, broadcast, watch};

use super::events::{Event, SourceStats, Stats};
use super::handoff::Handoff;
use crate::scheduler::{Assignment, ChunkEvent, ChunkMap, ConnId, ConnInfo, InFlight, Scheduler};
use crate::{ByteRange, RateLimiter};

/// The done prefix is published to the verifier in steps of at least this
/// many bytes (its read size); the engine publishes the final prefix itself.
const PUBLISH_STEP: u64 = 1 << 20;

/// A chunk's live bounds, read by its worker on every frame.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Bytes before this offset were received (written or buffered).
    pub(crate) pos: AtomicU64,
    /// The chunk ends here; a split lowers it.
    pub(crate) end: AtomicU64,
}

/// Planning state, behind one mutex.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) map: ChunkMap,
    pub(crate) scheduler: Box<dyn Scheduler>,
    pub(crate) slots: HashMap<ConnId, Arc<Slot>>,
    pub(crate) sources: Vec<SourceStats>,
}

impl Plan {
    /// Copies live positions into the map before the scheduler looks at it.
    fn refresh(&mut self) {
        for (id, f) in self.map.in_flight.iter_mut() {
            if let Some(slot) = self.slots.get(id) {
                f.pos = slot
                    .pos
                    .load(Ordering::Relaxed)
                    .min(slot.end.load(Ordering::Relaxed));
                f.end = slot.end.load(Ordering::Relaxed);
            }
        }
    }

    /// Asks the scheduler for work for `conn` and applies it.
    pub(crate) fn assign(
        &mut self,
        conn: &ConnInfo,
        now: Instant,
    ) -> Option<(Assignment, Arc<Slot>)> {
        self.refresh();
        let a = self.scheduler.next(conn, &self.map, now)?;
        if let Assignment::Split { victim, range } = a {
            if let Some(slot) = self.slots.get(&victim) {
                slot.end.fetch_min(range.start, Ordering::Relaxed);
            }
            if let Some(f) = self.map.in_flight.get_mut(&victim) {
                f.end = f.end.min(range.start);
            }
        }
        Some((a, self.take(conn.id, a.range())))
    }

    /// Gives `r` to `conn` without asking the scheduler (whole-object streams).
    pub(crate) fn take(&mut self, conn: ConnId, r: ByteRange) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            pos: AtomicU64::new(r.start),
            end: AtomicU64::new(r.end),
        });
        self.map.in_flight.insert(
            conn,
            InFlight {
                start: r.start,
                pos: r.start,
                end: r.end,
            },
        );
        self.slots.insert(conn, slot.clone());
        slot
    }

    /// Ends `conn`'s chunk, successfully or not.
    pub(crate) fn release(&mut self, conn: ConnId, event: &ChunkEvent, now: Instant) {
        self.map.in_flight.remove(&conn);
        self.slots.remove(&conn);
        self.scheduler.on_event(event, now);
    }
}

/// Everything the engine and its workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    plan: Mutex<Plan>,
    /// Signalled when a chunk is released or the map grows, so idle workers re-ask.
    pub(crate) changed: Notify,
    /// Signalled when a chunk completes, so the engine saves resume state.
    pub(crate) save_requested: Notify,
    /// Bytes received in this session (all sources).
    pub(crate) received: AtomicU64,
    /// The contiguous done prefix, for the hasher; `true` once final.
    pub(crate) prefix: watch::Sender<(u64, bool)>,
    /// Bytes hashed so far (the hashed prefix), published by the hasher.
    pub(crate) hashed: AtomicU64,
    /// Connections the engine wants now (see `ramp`); a worker that finds
    /// more running stops before taking another chunk.
    pub(crate) wanted: AtomicU32,
    /// Workers running (each counts itself in and out).
    pub(crate) running: AtomicU32,
    /// A verifier is running: frames extending the prefix are handed to it.
    pub(crate) hashing: AtomicBool,
    /// Frames handed to the verifier while in memory.
    pub(crate) handoff: Handoff,

    pub(crate) limiter: RateLimiter,
    pub(crate) global_limiter: Option<Arc<RateLimiter>>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) stats: Mutex<Stats>,
}

impl Shared {
    pub(crate) fn new(
        plan: Plan,
        limiter: RateLimiter,
        global_limiter: Option<Arc<RateLimiter>>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        Self {
            plan: Mutex::new(plan),
            changed: Notify::new(),
            save_requested: Notify::new(),
            received: AtomicU64::new(0),
            prefix: watch::channel((0, false)).0,
            hashed: AtomicU64::new(0),
            wanted: AtomicU32::new(u32::MAX),
            running: AtomicU32::new(0),
            hashing: AtomicBool::new(false),
            handoff: Handoff::default(),

            limiter,
            global_limiter,
            events,
            stats: Mutex::new(Stats::default()),
        }
    }

    pub(crate) fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `r` as done and publishes the new contiguous prefix; `data`,
    /// the frames just written at `r` (in order), is offered to the verifier
    /// ([`Handoff`]) so it need not read them back.
    pub(crate) fn mark_done(&self, r: ByteRange, data: &[bytes::Bytes]) {
        let (before, prefix) = {
            let mut plan = self.plan();
            let before = plan.map.done.contiguous_prefix();
            plan.map.done.insert(r);
            (before, plan.map.done.contiguous_prefix())
        };
        if !data.is_empty() && self.hashing.load(Ordering::Acquire) {
            let hashed = self.hashed.load(Ordering::Acquire);
            let mut at = r.start;
            for frame in data {
                self.handoff.offer(at, frame, before, hashed);
                at += frame.len() as u64;
            }
        }
        // The verifier is woken once per read step it can take, not per write.
        self.prefix.send_if_modified(|p| {
            if prefix >= p.0 + PUBLISH_STEP {
                p.0 = prefix;
                true
            } else {
                false
            }
        });
    }

    /// Sends an event; nobody listening is fine.
    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Waits for the global and per-download limits to allow `n` more bytes.
    pub(crate) async fn throttle(&self, n: u64) {
        self.limiter.acquire(n).await;
        if let Some(g) = &self.global_limiter {
            g.acquire(n).await;
        }
    }
}
