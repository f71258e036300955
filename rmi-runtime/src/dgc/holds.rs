//! The holding side of the collector: the objects of other endpoints this endpoint holds stubs
//! for, and one keeper task per such endpoint that registers, renews and lets go of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rmi_core::{Address, EndpointId, Error, ObjectId, RemoteRef};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DGC_OBJECT, DgcClient, DgcError, Grant, period};
use crate::client::{Proxy, Stub};
use crate::endpoint::{Endpoint, EndpointInner};

/// After a failed call to an endpoint's collector, the keeper tries again this much later at most.
const RETRY: Duration = Duration::from_secs(1);
/// How long a shutdown waits for endpoints to confirm that it let go of their objects, at most.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// What this endpoint holds of other endpoints' objects.
#[derive(Default)]
pub(crate) struct Holds {
    owners: Mutex<HashMap<EndpointId, Owner>>,
}

/// The objects of one other endpoint that this endpoint holds.
struct Owner {
    /// Where to reach it, if it listens.
    address: Option<Address>,
    objects: HashMap<ObjectId, Held>,
    /// The lease it granted (until it grants one: this endpoint's own setting).
    lease: Duration,
    /// Wakes the keeper: something is to be registered or let go.
    wake: Arc<Notify>,
}

struct Held {
    /// Live stubs (each shared by its clones).
    count: usize,
    /// References to it received since the last `dirty`, to acknowledge.
    received: u32,
    state: HeldState,
    /// Until when to keep the hold after the last stub is gone: the reference was passed on.
    linger_until: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HeldState {
    /// Not registered with the owner yet.
    New,
    /// Registered: renewed with the lease, let go with `clean`.
    Registered,
    /// Needs no hold: exported for good, or not exported at all.
    Untracked,
}

/// What a keeper is to send next.
#[derive(Default)]
struct Plan {
    dirty: Vec<(ObjectId, u32)>,
    clean: Vec<(ObjectId, u32)>,
    /// Whether a lease is to be kept.
    renew: bool,
    /// The earliest end of a lingering hold.
    next_linger: Option<Instant>,
}

impl Holds {
    fn owners(&self) -> MutexGuard<'_, HashMap<EndpointId, Owner>> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A stub for the object `reference` names, of another endpoint, was made: hold it. False
    /// if it holds nothing (too many endpoints held already, or no runtime to keep the hold).
    pub(crate) fn acquire(&self, endpoint: &Arc<EndpointInner>, reference: &RemoteRef) -> bool {
        let mut owners = self.owners();
        let owner = match owners.get_mut(&reference.endpoint) {
            Some(owner) => owner,
            None => {
                if owners.len() >= endpoint.config.max_held_endpoints {
                    tracing::warn!(
                        endpoint = %reference.endpoint,
                        limit = endpoint.config.max_held_endpoints,
                        "holding objects of too many endpoints; this reference holds nothing",
                    );
                    return false;
                }
                if endpoint.stop.is_cancelled() || tokio::runtime::Handle::try_current().is_err() {
                    return false;
                }
                let wake = Arc::new(Notify::new());
                endpoint.io.spawn(keep(Arc::downgrade(endpoint), reference.endpoint, Arc::clone(&wake)));
                owners.entry(reference.endpoint).or_insert(Owner {
                    address: None,
                    objects: HashMap::new(),
                    lease: endpoint.config.dgc_lease,
                    wake,
                })
            }
        };
        if owner.address.is_none() {
            owner.address.clone_from(&reference.address);
        }
        let held = owner.objects.entry(reference.object).or_insert(Held {
            count: 0,
            received: 0,
            state: HeldState::New,
            linger_until: None,
        });
        held.count += 1;
        held.received = held.received.saturating_add(1);
        owner.wake.notify_one();
        true
    }

    /// A stub holding `object` of `owner` is gone.
    pub(crate) fn release(&self, owner: EndpointId, object: ObjectId) {
        let mut owners = self.owners();
        let Some(o) = owners.get_mut(&owner) else { return };
        let Some(held) = o.objects.get_mut(&object) else { return };
        held.count = held.count.saturating_sub(1);
        if held.count == 0 {
            o.wake.notify_one();
        }
    }

    /// A reference to `object` of `owner` was passed on: keep holding it for one more lease, until
    /// its receiver has registered it.
    pub(crate) fn linger(&self, owner: EndpointId, object: ObjectId) {
        let mut owners = self.owners();
        let Some(o) = owners.get_mut(&owner) else { return };
        let until = Instant::now() + o.lease;
        if let Some(held) = o.objects.get_mut(&object) {
            held.linger_until = Some(until);
        }
    }

    /// How many objects of other endpoints are held.
    pub(crate) fn count(&self) -> usize {
        self.owners().values().map(|o| o.objects.len()).sum()
    }

    /// Decides what the keeper of `owner` sends next, forgetting objects let go; `None` when it
    /// holds nothing more and the keeper is to end.
    fn plan(&self, owner: EndpointId, now: Instant) -> Option<(Plan, Option<Address>, Duration)> {
        let mut owners = self.owners();
        let o = owners.get_mut(&owner)?;
        let mut plan = Plan::default();
        o.objects.retain(|object, held| {
            if held.count > 0 {
                match held.state {
                    // Registered or not, receipts are acknowledged: the owner protects a
                    // reference in transit until its receiver says it arrived.
                    HeldState::New | HeldState::Registered if held.received > 0 => {
                        plan.dirty.push((*object, held.received));
                    }
                    _ => {}
                }
                plan.renew |= held.state == HeldState::Registered;
                return true;
            }
            if let Some(until) = held.linger_until.filter(|until| *until > now) {
                plan.next_linger = Some(plan.next_linger.map_or(until, |t| t.min(until)));
                plan.renew |= held.state == HeldState::Registered;
                return true;
            }
            if held.state == HeldState::Registered || held.received > 0 {
                plan.clean.push((*object, held.received));
            }
            false
        });
        if o.objects.is_empty() && plan.clean.is_empty() {
            owners.remove(&owner);
            return None;
        }
        Some((plan, o.address.clone(), o.lease))
    }

    /// Records what the owner said to a `dirty`.
    fn registered(&self, owner: EndpointId, grant: &Grant, sent: &[(ObjectId, u32)]) {
        let mut owners = self.owners();
        let Some(o) = owners.get_mut(&owner) else { return };
        o.lease = grant.lease;
        for (object, received) in sent {
            if let Some(held) = o.objects.get_mut(object) {
                held.received = held.received.saturating_sub(*received);
                if held.state == HeldState::New {
                    let untracked = grant.permanent.contains(object) || grant.unknown.contains(object);
                    held.state = if untracked { HeldState::Untracked } else { HeldState::Registered };
                }
            }
        }
    }

    /// The owner lost this endpoint's lease: everything registered is to be registered again.
    fn lease_lost(&self, owner: EndpointId) {
        if let Some(o) = self.owners().get_mut(&owner) {
            for held in o.objects.values_mut() {
                if held.state == HeldState::Registered {
                    held.state = HeldState::New;
                    held.received = held.received.max(1);
                }
            }
            o.wake.notify_one();
        }
    }
}

impl Holds {
    /// Lets go of everything held, at shutdown: one `clean` per endpoint over a connection already
    /// open to it (never dialling), all within `deadline` and at most [`RELEASE_TIMEOUT`]. What
    /// this misses ends with the lease.
    pub(crate) async fn release_all(&self, inner: &Arc<EndpointInner>, deadline: Instant) {
        let owners = std::mem::take(&mut *self.owners());
        let deadline = deadline.min(Instant::now() + RELEASE_TIMEOUT);
        let releases = owners.into_iter().filter_map(|(owner, o)| {
            let objects: Vec<_> = o
                .objects
                .into_iter()
                .filter(|(_, held)| held.state == HeldState::Registered || held.received > 0)
                .map(|(object, held)| (object, held.received))
                .collect();
            let conn = inner.connection_to(owner).or_else(|| {
                o.address.as_ref().and_then(|a| Endpoint::from_inner(Arc::clone(inner)).pooled(a))
            });
            let conn = conn.filter(|_| !objects.is_empty())?;
            let descriptor = DgcClient::DESCRIPTOR;
            let dgc = DgcClient::from_proxy(Proxy::new(conn, DGC_OBJECT, descriptor.id, descriptor.version));
            Some(async move {
                match tokio::time::timeout_at(deadline, dgc.clean(objects)).await {
                    Ok(Ok(())) => tracing::debug!(endpoint = %owner, "holds released at shutdown"),
                    Ok(Err(error)) => {
                        tracing::debug!(endpoint = %owner, %error, "holds not released at shutdown")
                    }
                    Err(_) => tracing::debug!(endpoint = %owner, "holds not released at shutdown in time"),
                }
            })
        });
        futures_util::future::join_all(releases).await;
    }
}

/// The keeper of this endpoint's holds on `owner`'s objects: registers new ones, renews the lease
/// every third of it, lets go of objects no stub holds, and ends when it holds nothing.
async fn keep(endpoint: Weak<EndpointInner>, owner: EndpointId, wake: Arc<Notify>) {
    let stop = match endpoint.upgrade() {
        Some(endpoint) => endpoint.stop.clone(),
        None => return,
    };
    let mut renew_at: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        let Some(inner) = endpoint.upgrade() else { return };
        let now = Instant::now();
        let Some((plan, address, lease)) = inner.holds.plan(owner, now) else { return };
        let mut next = plan.next_linger;
        let due = |at: Option<Instant>| at.is_none_or(|at| at <= now);
        if (!plan.clean.is_empty() || !plan.dirty.is_empty() || plan.renew) && due(retry_at) {
            let failed = match collector(&inner, owner, address.as_ref()).await {
                Ok(dgc) => send(&inner, &dgc, owner, &plan, &mut renew_at, lease).await.is_err(),
                Err(error) => {
                    tracing::debug!(endpoint = %owner, %error, "cannot reach the collector of a held object");
                    true
                }
            };
            retry_at = failed.then(|| Instant::now() + period(lease, 3).min(RETRY));
        }
        if let Some(at) = retry_at {
            next = Some(next.map_or(at, |t| t.min(at)));
        } else if plan.renew
            && let Some(at) = renew_at
        {
            next = Some(next.map_or(at, |t| t.min(at)));
        }
        drop(inner);
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = sleep => {}
        }
    }
}

/// Sends what `plan` says, in order: let go, register, renew.
async fn send(
    inner: &Arc<EndpointInner>,
    dgc: &DgcClient,
    owner: EndpointId,
    plan: &Plan,
    renew_at: &mut Option<Instant>,
    lease: Duration,
) -> Result<(), Error> {
    if !plan.clean.is_empty() {
        dgc.clean(plan.clean.clone()).await?;
    }
    if !plan.dirty.is_empty() {
        match dgc.dirty(plan.dirty.clone()).await? {
            Ok(grant) => {
                inner.holds.registered(owner, &grant, &plan.dirty);
                *renew_at = Some(Instant::now() + period(grant.lease, 3));
            }
            Err(refused) => {
                tracing::warn!(endpoint = %owner, %refused, "an endpoint refused to register held objects");
                return Err(Error::Protocol(refused.to_string()));
            }
        }
    }
    if plan.renew && renew_at.is_none_or(|at| at <= Instant::now()) {
        match dgc.renew().await? {
            Ok(granted) => *renew_at = Some(Instant::now() + period(granted, 3)),
            Err(DgcError::NoLease) => {
                tracing::debug!(endpoint = %owner, "lease lost; registering held objects again");
                inner.holds.lease_lost(owner);
                *renew_at = None;
            }
            Err(refused) => return Err(Error::Protocol(refused.to_string())),
        }
    } else if renew_at.is_none() {
        *renew_at = Some(Instant::now() + period(lease, 3));
    }
    Ok(())
}

/// A stub for `owner`'s collector, over any open connection to it, else dialling `address`.
async fn collector(
    inner: &Arc<EndpointInner>,
    owner: EndpointId,
    address: Option<&Address>,
) -> Result<DgcClient, Error> {
    let conn = crate::endpoint::route_to(inner, owner, address).await?;
    let descriptor = DgcClient::DESCRIPTOR;
    Ok(DgcClient::from_proxy(Proxy::new(conn, DGC_OBJECT, descriptor.id, descriptor.version)))
}
