//! The exporting side of the collector: who holds which collected object, and when each goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rmi_core::{EndpointId, ObjectId};
use tokio::time::Instant;

use super::{DgcError, Export, Grant, period};
use crate::endpoint::EndpointInner;

/// The collected objects of an endpoint and their holders.
#[derive(Default)]
pub(crate) struct Exports {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    objects: HashMap<ObjectId, Collected>,
    holders: HashMap<EndpointId, Holder>,
    /// Whether the sweeper task runs.
    sweeping: bool,
}

/// A collected object: what keeps it.
struct Collected {
    /// Stubs for it alive in this process (each shared by its clones).
    local: usize,
    /// Peers holding it.
    holders: usize,
    /// References to it sent and not yet acknowledged by their receivers, by receiver.
    transit: Vec<Transit>,
    pinned: bool,
    /// Whether it was referenced when last looked at, to tell `unreferenced` once per change.
    referenced: bool,
    unreferenced: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// References to an object sent to one receiver (`None`: unknown) and not yet acknowledged.
struct Transit {
    to: Option<EndpointId>,
    count: u32,
    /// One lease after the last was sent: then they are taken for lost.
    until: Instant,
}

impl Collected {
    /// `count` references sent to `to` arrived.
    fn received(&mut self, to: EndpointId, count: u32) {
        if let Some(i) = self.transit.iter().position(|t| t.to == Some(to)) {
            let transit = &mut self.transit[i];
            transit.count = transit.count.saturating_sub(count);
            if transit.count == 0 {
                self.transit.swap_remove(i);
            }
        }
    }
}

/// A peer holding collected objects.
struct Holder {
    until: Instant,
    objects: HashSet<ObjectId>,
}

/// What to do once the state's lock is released: unexport objects and tell them.
#[derive(Default)]
#[must_use]
struct Aftermath {
    unexport: Vec<ObjectId>,
    notify: Vec<Arc<dyn Fn() + Send + Sync>>,
}

impl Aftermath {
    fn run(self, endpoint: &EndpointInner) {
        for object in self.unexport {
            tracing::debug!(%object, "unreferenced; unexported");
            endpoint.table.remove(&object);
        }
        for notify in self.notify {
            notify();
        }
    }
}

impl Exports {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts collecting `object`, which one stub of this process holds.
    pub(crate) fn add(&self, endpoint: &Arc<EndpointInner>, object: ObjectId, options: Export) {
        let mut state = self.state();
        state.objects.insert(
            object,
            Collected {
                local: 1,
                holders: 0,
                transit: Vec::new(),
                pinned: options.pinned,
                referenced: true,
                unreferenced: options.unreferenced,
            },
        );
        self.ensure_sweeper(&mut state, endpoint);
    }

    /// A stub of this process now holds `object` (a reference to it arrived here); whether it is
    /// a collected object (and so the stub must call [`Exports::release_local`] when it goes).
    pub(crate) fn acquire_local(&self, endpoint: &EndpointInner, object: ObjectId) -> bool {
        let mut state = self.state();
        let Some(collected) = state.objects.get_mut(&object) else { return false };
        collected.local += 1;
        collected.referenced = true;
        collected.received(endpoint.id, 1);
        true
    }

    /// A stub of this process that held `object` is gone.
    pub(crate) fn release_local(&self, endpoint: &EndpointInner, object: ObjectId) {
        let aftermath = {
            let mut state = self.state();
            let Some(collected) = state.objects.get_mut(&object) else { return };
            collected.local = collected.local.saturating_sub(1);
            settle_one(endpoint, &mut state.objects, object, Instant::now())
        };
        aftermath.run(endpoint);
    }

    /// A reference to `object` was sent to `to` (if known): it is protected until its receiver
    /// acknowledges it, for one lease at most.
    pub(crate) fn sent(&self, endpoint: &Arc<EndpointInner>, object: ObjectId, to: Option<EndpointId>) {
        let mut state = self.state();
        let Some(collected) = state.objects.get_mut(&object) else { return };
        let until = Instant::now() + endpoint.config.dgc_lease;
        match collected.transit.iter_mut().find(|t| t.to == to) {
            Some(transit) => {
                transit.count = transit.count.saturating_add(1);
                transit.until = until;
            }
            None => collected.transit.push(Transit { to, count: 1, until }),
        }
        self.ensure_sweeper(&mut state, endpoint);
    }

    /// Peer `peer` holds `objects` and received each that many times since it last said so.
    pub(crate) fn dirty(
        &self,
        endpoint: &Arc<EndpointInner>,
        peer: EndpointId,
        objects: &[(ObjectId, u32)],
    ) -> Result<Grant, DgcError> {
        let lease = endpoint.config.dgc_lease;
        let mut state = self.state();
        let limit = endpoint.config.max_dgc_holders;
        if !state.holders.contains_key(&peer) && state.holders.len() >= limit {
            return Err(DgcError::Full { limit: u64::try_from(limit).unwrap_or(u64::MAX) });
        }
        let state = &mut *state;
        let holder = state
            .holders
            .entry(peer)
            .or_insert_with(|| Holder { until: Instant::now() + lease, objects: HashSet::new() });
        holder.until = Instant::now() + lease;
        let mut grant = Grant { lease, permanent: Vec::new(), unknown: Vec::new() };
        for &(object, received) in objects {
            match state.objects.get_mut(&object) {
                Some(collected) => {
                    if holder.objects.insert(object) {
                        collected.holders += 1;
                        collected.referenced = true;
                    }
                    collected.received(peer, received);
                }
                None if endpoint.table.contains(&object) => grant.permanent.push(object),
                None => grant.unknown.push(object),
            }
        }
        self.ensure_sweeper(state, endpoint);
        Ok(grant)
    }

    /// Peer `peer` holds `objects` no more; it received each that many times since it last said.
    pub(crate) fn clean(&self, endpoint: &EndpointInner, peer: EndpointId, objects: &[(ObjectId, u32)]) {
        let aftermath = {
            let mut state = self.state();
            let state = &mut *state;
            let mut holder = state.holders.get_mut(&peer);
            let now = Instant::now();
            let mut aftermath = Aftermath::default();
            for &(object, received) in objects {
                let Some(collected) = state.objects.get_mut(&object) else { continue };
                if holder.as_mut().is_some_and(|holder| holder.objects.remove(&object)) {
                    collected.holders = collected.holders.saturating_sub(1);
                }
                collected.received(peer, received);
                aftermath.join(settle_one(endpoint, &mut state.objects, object, now));
            }
            aftermath
        };
        aftermath.run(endpoint);
    }

    /// Peer `peer` still holds what it registered.
    pub(crate) fn renew(&self, endpoint: &EndpointInner, peer: EndpointId) -> Result<Duration, DgcError> {
        let lease = endpoint.config.dgc_lease;
        let mut state = self.state();
        let holder = state.holders.get_mut(&peer).ok_or(DgcError::NoLease)?;
        holder.until = Instant::now() + lease;
        Ok(lease)
    }

    /// Pins or unpins `object`; false if it is not a collected object.
    pub(crate) fn set_pinned(&self, endpoint: &EndpointInner, object: ObjectId, pinned: bool) -> bool {
        let aftermath = {
            let mut state = self.state();
            let Some(collected) = state.objects.get_mut(&object) else { return false };
            collected.pinned = pinned;
            settle_one(endpoint, &mut state.objects, object, Instant::now())
        };
        aftermath.run(endpoint);
        true
    }

    /// Stops collecting `object` (it was unexported).
    pub(crate) fn forget(&self, object: ObjectId) {
        self.state().objects.remove(&object);
    }

    /// Ends the holds of peers whose leases ran out and the protection of references sent a
    /// lease ago; true while there is anything left to watch.
    fn sweep(&self, endpoint: &EndpointInner) -> bool {
        let now = Instant::now();
        let (aftermath, busy) = {
            let mut state = self.state();
            let state = &mut *state;
            let mut aftermath = Aftermath::default();
            let mut touched = Vec::new();
            state.holders.retain(|peer, holder| {
                if holder.until > now {
                    return true;
                }
                tracing::debug!(%peer, objects = holder.objects.len(), "a holder's lease ran out");
                for object in holder.objects.drain() {
                    if let Some(collected) = state.objects.get_mut(&object) {
                        collected.holders = collected.holders.saturating_sub(1);
                        touched.push(object);
                    }
                }
                false
            });
            // Objects kept by nothing but a sent reference or a binding, which end without an event.
            for (object, collected) in &state.objects {
                if collected.local == 0 && collected.holders == 0 && !collected.pinned {
                    touched.push(*object);
                }
            }
            for object in touched {
                aftermath.join(settle_one(endpoint, &mut state.objects, object, now));
            }
            let busy = !state.objects.is_empty() || !state.holders.is_empty();
            if !busy {
                state.sweeping = false;
            }
            (aftermath, busy)
        };
        aftermath.run(endpoint);
        busy
    }

    /// Starts the sweeper if it does not run (and a Tokio runtime is there to run it).
    fn ensure_sweeper(&self, state: &mut State, endpoint: &Arc<EndpointInner>) {
        if state.sweeping || endpoint.stop.is_cancelled() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        state.sweeping = true;
        let every = period(endpoint.config.dgc_lease, 8);
        let weak = Arc::downgrade(endpoint);
        let stop = endpoint.stop.clone();
        endpoint.io.spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let Some(endpoint) = Weak::upgrade(&weak) else { return };
                if !endpoint.exports.sweep(&endpoint) {
                    return;
                }
            }
        });
    }
}

impl Aftermath {
    fn join(&mut self, other: Aftermath) {
        self.unexport.extend(other.unexport);
        self.notify.extend(other.notify);
    }
}

/// Looks at `object` after a change: tells it if it became unreferenced, and lets it go unless
/// pinned.
fn settle_one(
    endpoint: &EndpointInner,
    objects: &mut HashMap<ObjectId, Collected>,
    object: ObjectId,
    now: Instant,
) -> Aftermath {
    let mut aftermath = Aftermath::default();
    let Some(collected) = objects.get_mut(&object) else { return aftermath };
    collected.transit.retain(|t| t.until > now);
    let referenced = collected.local > 0
        || collected.holders > 0
        || !collected.transit.is_empty()
        || endpoint.binder_leases.binds(endpoint.id, object);
    if referenced {
        collected.referenced = true;
        return aftermath;
    }
    if std::mem::replace(&mut collected.referenced, false)
        && let Some(notify) = &collected.unreferenced
    {
        aftermath.notify.push(Arc::clone(notify));
    }
    if !collected.pinned {
        objects.remove(&object);
        aftermath.unexport.push(object);
    }
    aftermath
}
