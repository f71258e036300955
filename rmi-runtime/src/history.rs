//! The duplicate filter and reply history of at-most-once calls, on the serving side.
//!
//! Every at-most-once request is entered under its caller's endpoint id and call id before it runs.
//! A repeat of the same call (resent after a broken connection, or duplicated on the way) finds the
//! entry: while the call runs, the repeat only redirects the reply to the connection it came on;
//! once it has replied, the repeat is answered with the stored reply frame; the method never runs
//! twice. The caller acknowledges each reply it received (`Header::Ack`), which removes the entry
//! (the request-reply-acknowledge exchange).
//!
//! The history is bounded. An entry lives at most until its caller's deadline (after it, the
//! caller does not resend) and at most [`Config::reply_history_age`](crate::Config); beyond
//! [`Config::max_reply_history`](crate::Config) entries or
//! [`Config::max_reply_history_bytes`](crate::Config) bytes the oldest go first. Forgetting an
//! unacknowledged entry raises its caller's *floor*: a later request of that caller with a call id
//! at or below it that is not in the history is answered `Fault::ReplyLost`, never run, because it
//! may be a repeat of a call that ran. Call ids of one endpoint only grow, so this costs a new call
//! nothing. The floor is remembered while the forgotten calls' callers may still resend (until
//! their deadlines), and at least another `reply_history_age`; at most 1,024 callers per shard and
//! one day.
//!
//! An acknowledged call leaves no entry, only a *mark* in a short list (the latest
//! [`MARKS_PER_SHARD`] × 16 acknowledged calls), so a late copy of its request is dropped without
//! keeping an entry per call at high call rates.
//!
//! A stored reply of up to [`INLINE_REPLY`] bytes lives inside its entry; a larger one below
//! [`SHARE_FROM`] is copied into an allocation of its own, so it does not keep a larger buffer it was
//! written into alive; a larger one still is kept as it is.
//!
//! The history is sharded by call, like the call maps; each lock is held for one map operation and
//! a few steps of pruning.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rmi_core::{CallId, EndpointId};
use tokio::time::Instant;

use crate::config::Config;
use crate::connection::{ConnInner, Connection};
use crate::endpoint::EndpointInner;

const SHARDS: usize = 16;
/// Most callers whose forgotten calls a shard remembers (a floor each).
const MAX_FLOORS: usize = 1024;
/// Longest a floor is remembered, however long its caller's deadline.
const MAX_FLOOR_LIFE: Duration = Duration::from_secs(24 * 3600);
/// Acknowledged calls a shard remembers, to drop late copies of their requests.
pub(crate) const MARKS_PER_SHARD: usize = 64;
/// Most bytes of a reply frame stored inside its history entry.
pub(crate) const INLINE_REPLY: usize = 46;
/// Reply frames from this size on are kept as they are (sharing their buffer); smaller ones are
/// copied, so a small reply never keeps a frame buffer's spare room alive.
pub(crate) const SHARE_FROM: usize = 8 * 1024;

type Key = (EndpointId, u64);

/// What to do with an at-most-once request.
pub(crate) enum Begin {
    /// A new call: run it, then [`History::complete`] it.
    Run,
    /// A repeat of a call still running: its reply goes to the repeat's connection.
    Running,
    /// A repeat of a call that replied: send this reply frame again.
    Replay(Bytes),
    /// A repeat of a call whose reply is gone: answer `Fault::ReplyLost`.
    Lost,
    /// A late copy of a call whose caller has its reply: nothing to do.
    Acked,
}

/// A reply frame kept for repeats.
enum Stored {
    Inline { len: u8, bytes: [u8; INLINE_REPLY] },
    Shared(Bytes),
}

impl Stored {
    fn new(frame: &Bytes) -> Self {
        if frame.len() <= INLINE_REPLY {
            let mut bytes = [0; INLINE_REPLY];
            bytes[..frame.len()].copy_from_slice(frame);
            #[allow(clippy::cast_possible_truncation)] // at most INLINE_REPLY
            Stored::Inline { len: frame.len() as u8, bytes }
        } else if frame.len() < SHARE_FROM {
            Stored::Shared(Bytes::copy_from_slice(frame))
        } else {
            Stored::Shared(frame.clone())
        }
    }

    fn frame(&self) -> Bytes {
        match self {
            Stored::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..usize::from(*len)]),
            Stored::Shared(frame) => frame.clone(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Stored::Inline { len, .. } => usize::from(*len),
            Stored::Shared(frame) => frame.len(),
        }
    }
}

enum State {
    Running {
        /// The connection of the latest repeat, if one came: the reply goes there.
        reply_to: Option<Connection>,
    },
    Done(Stored),
    /// Abandoned (deadline, cancel) before it replied.
    Lost,
}

/// Keys come from peers: hashed with a seed of the process's own (foldhash), so a peer cannot
/// choose colliding ones.
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
struct Shard {
    entries: HashMap<Key, State, Hasher>,
    /// Keys in arrival order, for pruning, with when the entry expires and until when its caller
    /// may resend; may hold keys already removed.
    order: VecDeque<(Key, Instant, Instant)>,
    /// Reply bytes held.
    bytes: usize,
    /// Per caller: call ids at or below this may have run and are forgotten; until when.
    floors: HashMap<EndpointId, (u64, Instant), Hasher>,
    /// The latest acknowledged calls (at most [`MARKS_PER_SHARD`]), and their order.
    marks: HashSet<Key, Hasher>,
    mark_order: VecDeque<Key>,
}

/// The reply history of one endpoint.
pub(crate) struct History {
    shards: [Mutex<Shard>; SHARDS],
    max_entries: usize,
    max_bytes: usize,
    max_age: Duration,
    sweeping: AtomicBool,
}

impl History {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::default()),
            max_entries: config.max_reply_history.div_ceil(SHARDS).max(1),
            max_bytes: config.max_reply_history_bytes.div_ceil(SHARDS).max(1),
            max_age: config.reply_history_age,
            sweeping: AtomicBool::new(false),
        }
    }

    fn shard(&self, key: Key) -> MutexGuard<'_, Shard> {
        let mixed = (key.0.as_u128() as u64) ^ key.1;
        let index = (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % SHARDS;
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a request of `peer`'s call `call`, arrived on `conn`, whose caller waits `timeout`;
    /// `resent` if the caller marked it as a resend.
    ///
    /// Floors apply to resends only: a first transmission cannot repeat a call that ran, and a
    /// call id taken long before it was sent (or a peer claiming another's identity and raising
    /// its floors) must not make a new call fail.
    pub(crate) fn begin(
        &self,
        endpoint: &Arc<EndpointInner>,
        peer: EndpointId,
        call: CallId,
        timeout: Option<Duration>,
        resent: bool,
        conn: &Arc<ConnInner>,
    ) -> Begin {
        let key = (peer, call.0);
        let now = Instant::now();
        let begin = {
            let mut guard = self.shard(key);
            let shard = &mut *guard;
            match shard.entries.entry(key) {
                Entry::Occupied(mut entry) => match entry.get_mut() {
                    State::Running { reply_to } => {
                        *reply_to = Some(Connection { inner: Arc::clone(conn) });
                        Begin::Running
                    }
                    State::Done(reply) => Begin::Replay(reply.frame()),
                    State::Lost => Begin::Lost,
                },
                Entry::Vacant(_) if shard.marks.contains(&key) => Begin::Acked,
                Entry::Vacant(_)
                    if resent && shard.floors.get(&peer).is_some_and(|&(floor, _)| call.0 <= floor) =>
                {
                    Begin::Lost
                }
                Entry::Vacant(entry) => {
                    entry.insert(State::Running { reply_to: None });
                    let patience = timeout.unwrap_or(self.max_age);
                    let expires = now + patience.min(self.max_age);
                    let resends_until = now + patience.min(MAX_FLOOR_LIFE);
                    shard.order.push_back((key, expires, resends_until));
                    shard.prune(now, self.max_age, self.max_entries, self.max_bytes);
                    Begin::Run
                }
            }
        };
        if matches!(begin, Begin::Run) {
            self.ensure_sweeper(endpoint);
        }
        begin
    }

    /// Stores the reply frame of a call that ran; returns the connection of a repeat that came
    /// meanwhile, where the reply goes instead of the original's.
    pub(crate) fn complete(&self, peer: EndpointId, call: CallId, reply: &Bytes) -> Option<Connection> {
        let key = (peer, call.0);
        let mut shard = self.shard(key);
        let entry = shard.entries.get_mut(&key)?;
        let State::Running { reply_to } = entry else { return None };
        let reply_to = reply_to.take();
        *entry = State::Done(Stored::new(reply));
        shard.bytes += reply.len();
        if shard.bytes > self.max_bytes {
            shard.prune(Instant::now(), self.max_age, self.max_entries, self.max_bytes);
        }
        reply_to
    }

    /// A call entered with [`History::begin`] ended without a reply (its deadline passed, its
    /// caller cancelled it): a repeat is answered `Fault::ReplyLost`.
    pub(crate) fn abandon(&self, peer: EndpointId, call: CallId) {
        let key = (peer, call.0);
        if let Some(entry) = self.shard(key).entries.get_mut(&key)
            && matches!(entry, State::Running { .. })
        {
            *entry = State::Lost;
        }
    }

    /// A call entered with [`History::begin`] did not start after all: forget it, so a repeat runs.
    pub(crate) fn forget(&self, peer: EndpointId, call: CallId) {
        let key = (peer, call.0);
        let mut shard = self.shard(key);
        if let Some(entry) = shard.entries.remove(&key) {
            shard.release(&entry);
        }
    }

    /// The caller received the reply of `call`: drop the entry, keep a mark that the call ran.
    pub(crate) fn ack(&self, peer: EndpointId, call: CallId) {
        let key = (peer, call.0);
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        if let Entry::Occupied(entry) = shard.entries.entry(key)
            && matches!(entry.get(), State::Done(_) | State::Lost)
        {
            let entry = entry.remove();
            shard.release(&entry);
            shard.mark(key);
        }
    }

    /// Calls held that were not acknowledged (running, or replied and waiting for an ack).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(PoisonError::into_inner);
                shard.entries.len()
            })
            .sum()
    }

    /// Prunes every shard; whether anything is left to sweep later.
    fn sweep(&self) -> bool {
        let now = Instant::now();
        let mut left = false;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.prune(now, self.max_age, self.max_entries, self.max_bytes);
            shard.floors.retain(|_, &mut (_, until)| until > now);
            left |= !shard.entries.is_empty() || !shard.floors.is_empty();
        }
        left
    }

    /// Starts the sweeper task if it does not run: it prunes expired entries once a second while
    /// the history holds any, so an idle endpoint lets them go.
    fn ensure_sweeper(&self, endpoint: &Arc<EndpointInner>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(endpoint);
        let period = (self.max_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        endpoint.io.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(endpoint) = weak.upgrade() else { return };
                if endpoint.stop.is_cancelled() {
                    endpoint.history.sweeping.store(false, Ordering::Release);
                    return;
                }
                if !endpoint.history.sweep() {
                    endpoint.history.sweeping.store(false, Ordering::Release);
                    // An entry made between the sweep and the store started no sweeper.
                    if endpoint.history.len() == 0 || endpoint.history.sweeping.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            }
        });
    }
}

impl Shard {
    fn release(&mut self, entry: &State) {
        if let State::Done(reply) = entry {
            self.bytes -= reply.len();
        }
    }

    /// Remembers that `key` was acknowledged, forgetting the oldest mark beyond the limit.
    fn mark(&mut self, key: Key) {
        if self.mark_order.capacity() == 0 {
            // Room for all of them at once rather than growing in steps.
            self.marks.reserve(MARKS_PER_SHARD + 1);
            self.mark_order.reserve_exact(MARKS_PER_SHARD + 1);
        }
        if self.marks.insert(key) {
            self.mark_order.push_back(key);
            if self.mark_order.len() > MARKS_PER_SHARD
                && let Some(oldest) = self.mark_order.pop_front()
            {
                self.marks.remove(&oldest);
            }
        }
    }

    /// Drops expired entries, then the oldest while over the limits, raising their callers'
    /// floors; compacts the arrival order when it holds mostly removed keys.
    fn prune(&mut self, now: Instant, max_age: Duration, max_entries: usize, max_bytes: usize) {
        while let Some(&(key, expires, resends_until)) = self.order.front() {
            let over = self.entries.len() > max_entries || self.bytes > max_bytes;
            let present = self.entries.contains_key(&key);
            if present && !over && expires > now {
                break;
            }
            self.order.pop_front();
            if present && let Some(entry) = self.entries.remove(&key) {
                self.release(&entry);
                // Remembered while the caller may still resend, and a history age beyond.
                let until = resends_until.max(now + max_age);
                if !self.floors.contains_key(&key.0) && self.floors.len() >= MAX_FLOORS {
                    // Many callers forgotten at once: the one remembered for the shortest time goes.
                    if let Some(first) =
                        self.floors.iter().min_by_key(|(_, (_, until))| *until).map(|(p, _)| *p)
                    {
                        self.floors.remove(&first);
                    }
                }
                let floor = self.floors.entry(key.0).or_insert((0, until));
                floor.0 = floor.0.max(key.1);
                floor.1 = floor.1.max(until);
            }
        }
        if self.order.len() > 64 && self.order.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.order.retain(|(key, ..)| entries.contains_key(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_replies_are_kept_inline_medium_ones_copied_and_large_ones_shared() {
        let small = Bytes::from(vec![1u8; INLINE_REPLY]);
        let stored = Stored::new(&small);
        assert!(matches!(stored, Stored::Inline { .. }));
        assert_eq!((stored.frame(), stored.len()), (small.clone(), INLINE_REPLY));

        // A medium reply does not keep the (possibly larger) buffer it was written into.
        let medium = Bytes::from(vec![2u8; INLINE_REPLY + 1]);
        let stored = Stored::new(&medium);
        assert_eq!(stored.frame(), medium);
        assert_ne!(stored.frame().as_ptr(), medium.as_ptr(), "a medium reply was not copied");

        let large = Bytes::from(vec![3u8; SHARE_FROM]);
        let stored = Stored::new(&large);
        assert_eq!(stored.frame().as_ptr(), large.as_ptr(), "a large reply was copied");
        assert_eq!(stored.len(), SHARE_FROM);
    }

    #[test]
    fn marks_of_acknowledged_calls_are_capped_and_the_oldest_go_first() {
        let mut shard = Shard::default();
        let peer = EndpointId::random();
        for call in 0..(MARKS_PER_SHARD as u64 + 10) {
            shard.mark((peer, call));
        }
        assert_eq!(shard.marks.len(), MARKS_PER_SHARD);
        assert_eq!(shard.mark_order.len(), MARKS_PER_SHARD);
        assert!(!shard.marks.contains(&(peer, 9)), "the oldest mark stayed");
        assert!(
            shard.marks.contains(&(peer, 10)) && shard.marks.contains(&(peer, MARKS_PER_SHARD as u64 + 9))
        );
        // Marking a call twice keeps one mark.
        shard.mark((peer, 10));
        assert_eq!(shard.mark_order.len(), MARKS_PER_SHARD);
    }
}
