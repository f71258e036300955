//! The binder itself: entries, leases and access rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmi_core::{BinderError, Binding, EndpointId, Error, InterfaceId, RemoteRef, Secret, Versions};
use tokio::time::Instant;

use super::{Access, BINDER_OBJECT, Binder, BinderInfo, BinderSkeleton, LeaseGrant, is_hidden_char};
use crate::context::CallContext;
use crate::endpoint::Endpoint;

/// How many lease lengths a binder remembers a lapsed lease for.
const LAPSED_MEMORY: u32 = 10;
/// The longest address an entry's reference may carry, in bytes of its text form.
const MAX_ADDRESS_LEN: usize = 512;

/// A binder's settings: its lease, its limits and who may change it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BinderConfig {
    /// How long an entry registered over the network lives without a renewal from its
    /// registrant. Default [`BinderConfig::DEFAULT_LEASE`]; the binder clamps it to
    /// [`BinderConfig::MIN_LEASE`] ..= [`BinderConfig::MAX_LEASE`].
    pub lease: Duration,
    /// The most entries the binder holds, and the most registrants it keeps leases for; a bind
    /// beyond fails with [`BinderError::Full`]. Default [`BinderConfig::DEFAULT_MAX_ENTRIES`].
    pub max_entries: usize,
    /// The longest name, in bytes (and the longest interface name an entry may carry). Default
    /// [`BinderConfig::DEFAULT_MAX_NAME_LEN`].
    pub max_name_len: usize,
    /// Who may change the binder. Default [`Access::local_only`].
    pub access: Access,
}

impl Default for BinderConfig {
    fn default() -> Self {
        Self {
            lease: Self::DEFAULT_LEASE,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_name_len: Self::DEFAULT_MAX_NAME_LEN,
            access: Access::default(),
        }
    }
}

impl BinderConfig {
    /// 30 seconds.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    /// 10,000 entries.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
    /// 256 bytes.
    pub const DEFAULT_MAX_NAME_LEN: usize = 256;
    /// The shortest lease the binder grants: renewals every third of it must stay reasonable.
    pub const MIN_LEASE: Duration = Duration::from_millis(30);
    /// The longest lease the binder grants: one day.
    pub const MAX_LEASE: Duration = Duration::from_secs(86_400);

    /// Sets [`BinderConfig::lease`] (clamped to [`BinderConfig::MIN_LEASE`] ..=
    /// [`BinderConfig::MAX_LEASE`]).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Self::MIN_LEASE, Self::MAX_LEASE);
        self
    }

    /// Sets [`BinderConfig::max_entries`].
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// Sets [`BinderConfig::max_name_len`] (at least 1).
    pub fn max_name_len(mut self, bytes: usize) -> Self {
        self.max_name_len = bytes.max(1);
        self
    }

    /// Sets [`BinderConfig::access`].
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The settings with every value in its range, whichever way the fields were set.
    fn sanitized(self) -> Self {
        let (lease, max_name_len) = (self.lease, self.max_name_len);
        self.lease(lease).max_name_len(max_name_len)
    }
}

/// A binder: the entries, the leases of their registrants and the access rules.
/// [`BinderService::serve`] exports it on an endpoint at [`BINDER_OBJECT`]; its own process uses
/// it through [`Naming::local`](super::Naming::local), as a trusted party whose entries need no
/// lease (even when it does so while serving another call).
///
/// Cloning is cheap: clones share the binder.
#[derive(Clone)]
pub struct BinderService {
    shared: Arc<Shared>,
}

struct Shared {
    config: BinderConfig,
    /// The endpoint serving the binder: the registrant of entries made in its own process.
    own: EndpointId,
    state: Mutex<State>,
}

/// The entries and leases.
///
/// Invariant: every entry that is not permanent is named in its registrant's `Lease::names`, and
/// every name there is such an entry. An entry is visible while its registrant's lease runs; when
/// a lease is found expired (`State::expire`), its entries are removed and their names move to
/// `lapsed`, which the registrant's next renewal reports so it can bind them again.
#[derive(Default)]
struct State {
    /// By name, so listings come out sorted.
    entries: BTreeMap<String, Entry>,
    /// By registrant: running leases, and lapsed ones for [`LAPSED_MEMORY`] leases after.
    leases: HashMap<EndpointId, Lease>,
    /// When expired entries are next swept out (they are invisible from the moment they expire).
    next_sweep: Option<Instant>,
}

struct Lease {
    end: Instant,
    /// The registrant's entries.
    names: BTreeSet<String>,
    /// Entries dropped when the lease ran out, which the registrant may bind again.
    lapsed: BTreeSet<String>,
}

struct Entry {
    reference: RemoteRef,
    interface_name: String,
    registrant: EndpointId,
    /// Made in the binder's own process: no lease.
    permanent: bool,
}

/// Who asks: a peer (from the call's context) or the binder's own process.
struct Caller {
    /// `None` in the binder's own process.
    context: Option<CallContext>,
}

impl Caller {
    /// The binder's own process.
    const OWN: Caller = Caller { context: None };

    fn registrant(&self, own: EndpointId) -> EndpointId {
        self.context.as_ref().map_or(own, CallContext::peer_endpoint)
    }
}

impl BinderService {
    /// Creates a binder and exports it on `endpoint` at [`BINDER_OBJECT`], where clients
    /// ([`Naming::connect`](super::Naming::connect)) find it by the endpoint's address alone.
    ///
    /// # Errors
    /// [`Error::ObjectIdInUse`] if the endpoint already exports a binder.
    pub fn serve(endpoint: &Endpoint, config: BinderConfig) -> Result<BinderService, Error> {
        let config = config.sanitized();
        let service = BinderService {
            shared: Arc::new(Shared { config, own: endpoint.id(), state: Mutex::default() }),
        };
        endpoint
            .export_with_id(
                BINDER_OBJECT,
                BinderSkeleton::new(Acting { service: service.clone(), for_peers: true }),
            )
            .ok_or(Error::ObjectIdInUse(BINDER_OBJECT))?;
        Ok(service)
    }

    /// The binder's settings.
    pub fn config(&self) -> &BinderConfig {
        &self.shared.config
    }

    /// How many live entries the binder holds.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        let state = self.state();
        state.entries.values().filter(|e| state.is_live(e, now)).count()
    }

    /// Whether the binder holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_access(&self, caller: &Caller, secret: Option<&Secret>) -> Result<(), BinderError> {
        self.shared.config.access.check(caller.context.as_ref().map(CallContext::origin), secret)
    }

    fn put(
        &self,
        caller: &Caller,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
        replace: bool,
    ) -> Result<Duration, BinderError> {
        self.check_access(caller, secret.as_ref())?;
        let config = &self.shared.config;
        check_text("name", &name, config.max_name_len)?;
        if !interface_name.is_empty() {
            check_text("interface name", &interface_name, config.max_name_len)?;
        }
        if let Some(address) = &reference.address {
            check_text("reference's address", &address.to_string(), MAX_ADDRESS_LEN)?;
        }
        let registrant = caller.registrant(self.shared.own);
        let permanent = caller.context.is_none();
        let now = Instant::now();
        let mut state = self.state();
        state.sweep(now, config, false);
        let full = |state: &State| {
            let new_entry = !state.entries.contains_key(&name);
            let new_lease = !permanent && !state.leases.contains_key(&registrant);
            (new_entry && state.entries.len() >= config.max_entries)
                || (new_lease && state.leases.len() >= config.max_entries)
        };
        if full(&state) {
            // Full, perhaps only of expired entries and lapsed leases: make room before refusing.
            state.sweep(now, config, true);
            if full(&state) {
                return Err(BinderError::Full {
                    limit: u64::try_from(config.max_entries).unwrap_or(u64::MAX),
                });
            }
        }
        if !permanent {
            // A registrant whose lease ran out starts a new one: its old entries go first.
            state.expire(registrant, now);
        }
        if let Some(existing) = state.entries.get(&name) {
            if !replace && state.is_live(existing, now) {
                return Err(BinderError::NameTaken(name));
            }
            if let Some(replaced) = state.entries.remove(&name) {
                state.forget(&name, &replaced);
            }
        }
        if !permanent {
            let lease = state.leases.entry(registrant).or_insert_with(|| Lease {
                end: now,
                names: BTreeSet::new(),
                lapsed: BTreeSet::new(),
            });
            lease.end = now + config.lease;
            lease.lapsed.remove(&name);
            lease.names.insert(name.clone());
        }
        tracing::debug!(%name, %reference, %registrant, "bound");
        state.entries.insert(name, Entry { reference, interface_name, registrant, permanent });
        Ok(config.lease)
    }

    fn remove(&self, caller: &Caller, name: String, secret: Option<Secret>) -> Result<(), BinderError> {
        self.check_access(caller, secret.as_ref())?;
        let now = Instant::now();
        let mut state = self.state();
        let Some(entry) = state.entries.remove(&name) else {
            return Err(BinderError::NotBound(name));
        };
        let live = state.is_live(&entry, now);
        state.forget(&name, &entry);
        if !live {
            return Err(BinderError::NotBound(name));
        }
        tracing::debug!(%name, "unbound");
        Ok(())
    }

    fn get(&self, name: String) -> Result<Binding, BinderError> {
        let now = Instant::now();
        let state = self.state();
        match state.entries.get(&name) {
            Some(entry) if state.is_live(entry, now) => Ok(state.binding(&name, entry, now)),
            _ => Err(BinderError::NotBound(name)),
        }
    }

    fn select(&self, keep: impl Fn(&Entry) -> bool) -> Vec<Binding> {
        let now = Instant::now();
        let state = self.state();
        state
            .entries
            .iter()
            .filter(|(_, e)| state.is_live(e, now) && keep(e))
            .map(|(name, e)| state.binding(name, e, now))
            .collect()
    }

    fn renew_lease(&self, caller: &Caller, secret: Option<Secret>) -> Result<LeaseGrant, BinderError> {
        self.check_access(caller, secret.as_ref())?;
        let registrant = caller.registrant(self.shared.own);
        let duration = self.shared.config.lease;
        let now = Instant::now();
        let mut state = self.state();
        if !state.leases.contains_key(&registrant) {
            return Err(BinderError::NoLease);
        }
        state.expire(registrant, now);
        let State { entries, leases, .. } = &mut *state;
        let Some(lease) = leases.get_mut(&registrant) else {
            return Err(BinderError::NoLease);
        };
        lease.end = now + duration;
        // A lapsed name someone else has bound since is theirs now.
        lease.lapsed.retain(|name| !entries.contains_key(name));
        Ok(LeaseGrant {
            duration,
            names: lease.names.iter().cloned().collect(),
            lapsed: lease.lapsed.iter().cloned().collect(),
        })
    }

    fn withdraw_all(&self, caller: &Caller, secret: Option<Secret>) -> Result<u64, BinderError> {
        self.check_access(caller, secret.as_ref())?;
        let registrant = caller.registrant(self.shared.own);
        let mut state = self.state();
        let Some(lease) = state.leases.remove(&registrant) else {
            return Ok(0);
        };
        let mut removed = 0u64;
        for name in &lease.names {
            if state.entries.get(name).is_some_and(|e| e.registrant == registrant && !e.permanent) {
                state.entries.remove(name);
                removed += 1;
            }
        }
        tracing::debug!(%registrant, removed, "registrant withdrew");
        Ok(removed)
    }

    fn info(&self) -> BinderInfo {
        let config = &self.shared.config;
        BinderInfo {
            entries: u64::try_from(self.len()).unwrap_or(u64::MAX),
            max_entries: u64::try_from(config.max_entries).unwrap_or(u64::MAX),
            lease: config.lease,
        }
    }
}

impl State {
    fn is_live(&self, entry: &Entry, now: Instant) -> bool {
        entry.permanent || self.leases.get(&entry.registrant).is_some_and(|lease| lease.end > now)
    }

    fn binding(&self, name: &str, entry: &Entry, now: Instant) -> Binding {
        let end = (!entry.permanent).then(|| self.leases.get(&entry.registrant).map(|l| l.end));
        Binding {
            name: name.to_owned(),
            reference: entry.reference.clone(),
            interface_name: entry.interface_name.clone(),
            registrant: entry.registrant,
            expires_in: end.map(|end| end.map_or(Duration::ZERO, |end| end.saturating_duration_since(now))),
        }
    }

    /// Takes the entry `name`, replaced or removed, off its registrant's lease.
    fn forget(&mut self, name: &str, entry: &Entry) {
        if let Some(lease) = self.leases.get_mut(&entry.registrant).filter(|_| !entry.permanent) {
            lease.names.remove(name);
        }
    }

    /// If `registrant`'s lease has run out, removes its entries and records their names as
    /// lapsed.
    fn expire(&mut self, registrant: EndpointId, now: Instant) {
        let Some(lease) = self.leases.get_mut(&registrant).filter(|lease| lease.end <= now) else {
            return;
        };
        for name in std::mem::take(&mut lease.names) {
            if self.entries.get(&name).is_some_and(|e| e.registrant == registrant && !e.permanent) {
                self.entries.remove(&name);
                lease.lapsed.insert(name);
            }
        }
    }

    /// Expires the leases that ran out, at most about four times per lease (their entries are
    /// invisible anyway: this frees memory), and forgets lapsed leases after [`LAPSED_MEMORY`]
    /// leases, or at once when more registrants than `max_entries` have leases.
    fn sweep(&mut self, now: Instant, config: &BinderConfig, now_anyway: bool) {
        if !now_anyway && self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + config.lease / 4);
        let expired: Vec<EndpointId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.end <= now && !l.names.is_empty())
            .map(|(r, _)| *r)
            .collect();
        for registrant in expired {
            self.expire(registrant, now);
        }
        let memory = config.lease.saturating_mul(LAPSED_MEMORY);
        self.leases.retain(|_, l| l.end + memory > now);
        if self.leases.len() >= config.max_entries {
            self.leases.retain(|_, l| l.end > now);
        }
    }
}

/// Checks a name or address for the binder: not empty, within `limit` bytes, and free of control
/// and invisible formatting characters (which would let an entry pass for another in a listing).
fn check_text(what: &str, text: &str, limit: usize) -> Result<(), BinderError> {
    if text.is_empty() {
        return Err(BinderError::Invalid(format!("the {what} is empty")));
    }
    if text.len() > limit {
        return Err(BinderError::Invalid(format!(
            "the {what} is {} bytes long, over the limit of {limit}",
            text.len()
        )));
    }
    if text.chars().any(is_hidden_char) {
        return Err(BinderError::Invalid(format!(
            "the {what} contains control or invisible formatting characters"
        )));
    }
    Ok(())
}

/// The binder as one party uses it: the peers that call it over the network (each call acts for
/// the peer that made it), or its own process (trusted, entries without lease).
#[derive(Clone, Debug)]
pub(super) struct Acting {
    service: BinderService,
    for_peers: bool,
}

impl Acting {
    /// The binder used directly by its own process.
    pub(super) fn own(service: &BinderService) -> Acting {
        Acting { service: service.clone(), for_peers: false }
    }

    fn caller(&self) -> Caller {
        if self.for_peers { Caller { context: CallContext::current() } } else { Caller::OWN }
    }
}

impl Binder for Acting {
    async fn bind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError> {
        self.service.put(&self.caller(), name, reference, interface_name, secret, false)
    }

    async fn rebind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError> {
        self.service.put(&self.caller(), name, reference, interface_name, secret, true)
    }

    async fn unbind(&self, name: String, secret: Option<Secret>) -> Result<(), BinderError> {
        self.service.remove(&self.caller(), name, secret)
    }

    async fn lookup(&self, name: String) -> Result<Binding, BinderError> {
        self.service.get(name)
    }

    async fn list(&self) -> Vec<Binding> {
        self.service.select(|_| true)
    }

    async fn lookup_interface(&self, interface: InterfaceId, versions: Versions) -> Vec<Binding> {
        self.service.select(|e| e.reference.interface == interface && versions.contains(e.reference.version))
    }

    async fn renew(&self, secret: Option<Secret>) -> Result<LeaseGrant, BinderError> {
        self.service.renew_lease(&self.caller(), secret)
    }

    async fn withdraw(&self, secret: Option<Secret>) -> Result<u64, BinderError> {
        self.service.withdraw_all(&self.caller(), secret)
    }

    async fn info(&self) -> BinderInfo {
        self.service.info()
    }
}

impl fmt::Debug for BinderService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinderService")
            .field("entries", &self.len())
            .field("config", &self.shared.config)
            .finish()
    }
}
