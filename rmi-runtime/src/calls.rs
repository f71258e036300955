//! A sharded map keyed by call id, used for the calls a connection waits on (call id -> the
//! caller's wake-up) and the calls it serves (call id -> abort handle).
//!
//! Call ids come from one counter per endpoint, so consecutive calls land in different shards and
//! concurrent callers rarely meet on one lock; each lock is held for one hash-map operation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

const SHARDS: usize = 16;

/// Hashes a call id with one multiplication (Fibonacci hashing): ids are sequential, not chosen by
/// an attacker to collide in a way that matters (a peer only ever looks up its own replies).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

struct Shard<V> {
    map: HashMap<u64, V, BuildHasherDefault<IdHasher>>,
    closed: bool,
}

/// Call id -> `V`, sharded; once closed, it refuses new entries.
pub(crate) struct CallMap<V> {
    shards: [Mutex<Shard<V>>; SHARDS],
}

impl<V> CallMap<V> {
    pub(crate) fn new() -> Self {
        Self { shards: std::array::from_fn(|_| Mutex::new(Shard { map: HashMap::default(), closed: false })) }
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Shard<V>> {
        // A panic cannot leave a shard half-updated (each critical section is one map operation).
        self.shards[id as usize % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `value` under `id`. Gives the value back if the map is closed or the id is taken.
    pub(crate) fn insert(&self, id: u64, value: V) -> Result<(), V> {
        let mut shard = self.shard(id);
        if shard.closed {
            return Err(value);
        }
        match shard.map.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => Err(value),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(value);
                Ok(())
            }
        }
    }

    /// Replaces the value under `id`; false, changing nothing, if there is none.
    pub(crate) fn replace(&self, id: u64, value: V) -> bool {
        match self.shard(id).map.get_mut(&id) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<V>
    where
        V: Clone,
    {
        self.shard(id).map.get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: u64) -> Option<V> {
        self.shard(id).map.remove(&id)
    }

    /// Removes and returns the entries `expired` picks; `kept` sees every other entry.
    pub(crate) fn sweep(
        &self,
        mut expired: impl FnMut(&V) -> bool,
        mut kept: impl FnMut(&V),
    ) -> Vec<(u64, V)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            out.extend(shard.map.extract_if(|_, v| expired(v)));
            shard.map.values().for_each(&mut kept);
        }
        out
    }

    /// Refuses further inserts and returns every entry.
    pub(crate) fn close(&self) -> Vec<V> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.closed = true;
            all.extend(shard.map.drain().map(|(_, v)| v));
        }
        all
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_go_in_and_out_and_close_drains_and_refuses() {
        let map = CallMap::new();
        for id in 0..100 {
            map.insert(id, id * 2).unwrap();
        }
        assert_eq!(map.insert(5, 0), Err(0), "an id in use is refused");
        assert_eq!(map.remove(7), Some(14));
        assert!(map.replace(8, 0) && !map.replace(7, 0));
        assert_eq!(map.get(8), Some(0));
        assert_eq!(map.remove(7), None);
        assert_eq!(map.len(), 99);
        let mut drained = map.close();
        drained.sort();
        assert_eq!(drained.len(), 99);
        assert!(!map.replace(8, 1), "a closed map has no entries to replace");
        assert_eq!(map.insert(1000, 1), Err(1));
        assert_eq!(map.len(), 0);
    }
}
