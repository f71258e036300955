//! The binder itself: entries, leases and access rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmi_core::{BinderError, Binding, EndpointId, Error, InterfaceId, RemoteRef, Secret, Versions};
use tokio::time::Instant;

use super::{Access, BINDER_OBJECT, Binder, BinderInfo, BinderSkeleton, LeaseGrant};
use crate::context::CallContext;
use crate::endpoint::Endpoint;

/// How many lease lengths a binder remembers a lapsed lease for.
const LAPSED_MEMORY: u32 = 10;

/// A binder's settings: its lease, its limits and who may change it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BinderConfig {
    /// How long an entry registered over the network lives without a renewal from its
    /// registrant. Default [`BinderConfig::DEFAULT_LEASE`].
    pub lease: Duration,
    /// The most entries the binder holds; a bind beyond fails with [`BinderError::Full`]. Default
    /// [`BinderConfig::DEFAULT_MAX_ENTRIES`].
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
    /// The longest address an entry's reference may carry, in bytes of its text form.
    const MAX_ADDRESS_LEN: usize = 512;

    /// Sets [`BinderConfig::lease`] (at least [`BinderConfig::MIN_LEASE`]).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Self::MIN_LEASE);
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
}

/// A binder: the entries, the leases of their registrants and the access rules. It implements
/// [`Binder`]; [`BinderService::serve`] exports it on an endpoint at [`BINDER_OBJECT`].
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

#[derive(Default)]
struct State {
    /// By name, so listings come out sorted.
    entries: BTreeMap<String, Entry>,
    /// The registrants that hold a lease: when it ends, and the names of their entries. A
    /// registrant keeps its lease until it runs out, even with no entries left, so that its
    /// renewals learn that its entries are gone rather than binding them again.
    leases: HashMap<EndpointId, Lease>,
    /// When expired entries are next swept out (they are invisible from the moment they expire).
    next_sweep: Option<Instant>,
}

#[derive(Default)]
struct Lease {
    end: Option<Instant>,
    names: BTreeSet<String>,
}

struct Entry {
    reference: RemoteRef,
    interface_name: String,
    registrant: EndpointId,
    /// Made in the binder's own process: no lease.
    permanent: bool,
}

/// Who asks: a peer (from the call's context) or the binder's own process.
pub(super) struct Caller {
    /// `None` in the binder's own process.
    context: Option<CallContext>,
}

impl Caller {
    /// The binder's own process, calling the service directly.
    pub(super) const OWN: Caller = Caller { context: None };

    /// Whoever made the call being served, or the binder's own process outside a served call.
    fn current() -> Self {
        Caller { context: CallContext::current() }
    }

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
        let service = BinderService {
            shared: Arc::new(Shared { config, own: endpoint.id(), state: Mutex::default() }),
        };
        endpoint
            .export_with_id(BINDER_OBJECT, BinderSkeleton::new(service.clone()))
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

    /// Checks a change's name, reference and access.
    fn admit(
        &self,
        caller: &Caller,
        name: &str,
        entry: Option<(&RemoteRef, &str)>,
        secret: Option<&Secret>,
    ) -> Result<(), BinderError> {
        let config = &self.shared.config;
        config.access.check(caller.context.as_ref().map(CallContext::origin), secret)?;
        let limit = config.max_name_len;
        check_text("name", name, limit)?;
        if let Some((reference, interface_name)) = entry {
            if !interface_name.is_empty() {
                check_text("interface name", interface_name, limit)?;
            }
            let address_len = reference.address.as_ref().map_or(0, |a| a.to_string().len());
            if address_len > BinderConfig::MAX_ADDRESS_LEN {
                return Err(BinderError::Invalid(format!(
                    "the reference's address is {address_len} bytes long, over the limit of {}",
                    BinderConfig::MAX_ADDRESS_LEN
                )));
            }
        }
        Ok(())
    }

    pub(super) fn put(
        &self,
        caller: Caller,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
        replace: bool,
    ) -> Result<Duration, BinderError> {
        self.admit(&caller, &name, Some((&reference, &interface_name)), secret.as_ref())?;
        let config = &self.shared.config;
        let now = Instant::now();
        let mut state = self.state();
        state.sweep(now, config.lease, config.max_entries, false);
        if state.entries.len() >= config.max_entries && !state.entries.contains_key(&name) {
            // Full, perhaps only of expired entries: make room before refusing.
            state.sweep(now, config.lease, config.max_entries, true);
        }
        match state.entries.get(&name) {
            Some(existing) if !replace && state.is_live(existing, now) => {
                return Err(BinderError::NameTaken(name));
            }
            Some(_) => {}
            None if state.entries.len() >= config.max_entries => {
                return Err(BinderError::Full {
                    limit: u64::try_from(config.max_entries).unwrap_or(u64::MAX),
                });
            }
            None => {}
        }
        let registrant = caller.registrant(self.shared.own);
        let permanent = caller.context.is_none();
        if let Some(replaced) = state.entries.remove(&name) {
            state.forget(&name, &replaced);
        }
        if !permanent {
            let lease = state.leases.entry(registrant).or_default();
            lease.end = Some(now + config.lease);
            lease.names.insert(name.clone());
        }
        tracing::debug!(%name, %reference, %registrant, "bound");
        state.entries.insert(name, Entry { reference, interface_name, registrant, permanent });
        Ok(config.lease)
    }

    fn binding(&self, state: &State, name: &str, entry: &Entry, now: Instant) -> Binding {
        Binding {
            name: name.to_owned(),
            reference: entry.reference.clone(),
            interface_name: entry.interface_name.clone(),
            registrant: entry.registrant,
            expires_in: (!entry.permanent)
                .then(|| state.lease_end(entry.registrant).map_or(Duration::ZERO, |end| end - now)),
        }
    }

    fn select(&self, keep: impl Fn(&Entry) -> bool) -> Vec<Binding> {
        let now = Instant::now();
        let state = self.state();
        state
            .entries
            .iter()
            .filter(|(_, e)| state.is_live(e, now) && keep(e))
            .map(|(name, e)| self.binding(&state, name, e, now))
            .collect()
    }
}

impl State {
    fn lease_end(&self, registrant: EndpointId) -> Option<Instant> {
        self.leases.get(&registrant).and_then(|lease| lease.end)
    }

    fn is_live(&self, entry: &Entry, now: Instant) -> bool {
        entry.permanent || self.lease_end(entry.registrant).is_some_and(|end| end > now)
    }

    /// Takes the entry `name`, replaced or removed, off its registrant's lease.
    fn forget(&mut self, name: &str, entry: &Entry) {
        if let Some(lease) = self.leases.get_mut(&entry.registrant).filter(|_| !entry.permanent) {
            lease.names.remove(name);
        }
    }

    /// Drops expired entries, at most about four times per lease: they are invisible anyway,
    /// this only frees their memory. A lapsed lease is remembered, with its names, for
    /// [`LAPSED_MEMORY`] leases (fewer if more registrants than `max_leases` have one), so that
    /// its registrant learns which of its entries it may bind again.
    fn sweep(&mut self, now: Instant, lease: Duration, max_leases: usize, now_anyway: bool) {
        if !now_anyway && self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + lease / 4);
        let memory = lease.saturating_mul(LAPSED_MEMORY);
        self.leases.retain(|_, l| l.end.is_some_and(|end| end.checked_add(memory).is_none_or(|t| t > now)));
        if self.leases.len() > max_leases {
            self.leases.retain(|_, l| l.end.is_some_and(|end| end > now));
        }
        let leases = &self.leases;
        let live =
            |registrant: &EndpointId| leases.get(registrant).and_then(|l| l.end).is_some_and(|end| end > now);
        self.entries.retain(|_, e| e.permanent || live(&e.registrant));
    }
}

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
    if text.chars().any(char::is_control) {
        return Err(BinderError::Invalid(format!("the {what} contains control characters")));
    }
    Ok(())
}

impl Binder for BinderService {
    async fn bind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError> {
        self.put(Caller::current(), name, reference, interface_name, secret, false)
    }

    async fn rebind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError> {
        self.put(Caller::current(), name, reference, interface_name, secret, true)
    }

    async fn unbind(&self, name: String, secret: Option<Secret>) -> Result<(), BinderError> {
        self.remove(&Caller::current(), name, secret)
    }

    async fn lookup(&self, name: String) -> Result<Binding, BinderError> {
        self.get(name)
    }

    async fn list(&self) -> Vec<Binding> {
        self.select(|_| true)
    }

    async fn lookup_interface(&self, interface: InterfaceId, versions: Versions) -> Vec<Binding> {
        self.select(|e| e.reference.interface == interface && versions.contains(e.reference.version))
    }

    async fn renew(&self) -> Result<LeaseGrant, BinderError> {
        self.renew_lease(&Caller::current())
    }

    async fn withdraw(&self, secret: Option<Secret>) -> Result<u64, BinderError> {
        self.withdraw_all(&Caller::current(), secret)
    }

    async fn info(&self) -> BinderInfo {
        let config = &self.shared.config;
        BinderInfo {
            entries: u64::try_from(self.len()).unwrap_or(u64::MAX),
            max_entries: u64::try_from(config.max_entries).unwrap_or(u64::MAX),
            lease: config.lease,
        }
    }
}

impl BinderService {
    pub(super) fn remove(
        &self,
        caller: &Caller,
        name: String,
        secret: Option<Secret>,
    ) -> Result<(), BinderError> {
        self.admit(caller, &name, None, secret.as_ref())?;
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

    pub(super) fn get(&self, name: String) -> Result<Binding, BinderError> {
        let now = Instant::now();
        let state = self.state();
        match state.entries.get(&name) {
            Some(entry) if state.is_live(entry, now) => Ok(self.binding(&state, &name, entry, now)),
            _ => Err(BinderError::NotBound(name)),
        }
    }

    pub(super) fn renew_lease(&self, caller: &Caller) -> Result<LeaseGrant, BinderError> {
        let registrant = caller.registrant(self.shared.own);
        let duration = self.shared.config.lease;
        let now = Instant::now();
        let mut state = self.state();
        match state.leases.get_mut(&registrant) {
            Some(Lease { end: Some(end), names }) if *end > now => {
                *end = now + duration;
                Ok(LeaseGrant { duration, names: names.iter().cloned().collect() })
            }
            // An expired lease stays expired: its entries have vanished from lookups. The
            // registrant may bind again the ones nobody removed or took meanwhile.
            Some(_) => {
                let lapsed = state.leases.remove(&registrant).map(|l| l.names).unwrap_or_default();
                Err(BinderError::Lapsed { names: lapsed.into_iter().collect() })
            }
            None => Err(BinderError::NoLease),
        }
    }

    /// Removes every entry the caller registered, and its lease.
    pub(super) fn withdraw_all(&self, caller: &Caller, secret: Option<Secret>) -> Result<u64, BinderError> {
        self.shared.config.access.check(caller.context.as_ref().map(CallContext::origin), secret.as_ref())?;
        let registrant = caller.registrant(self.shared.own);
        let mut state = self.state();
        let Some(lease) = state.leases.remove(&registrant) else {
            return Ok(0);
        };
        for name in &lease.names {
            state.entries.remove(name);
        }
        tracing::debug!(%registrant, entries = lease.names.len(), "registrant withdrew");
        Ok(u64::try_from(lease.names.len()).unwrap_or(u64::MAX))
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
