//! The client side of a binder: [`Naming`], and the lease keepers that renew its entries.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmi_core::{Address, BinderError, Binding, Error, InterfaceId, RemoteRef, Secret, Versions};
use tokio::time::Instant;

use super::service::Acting;
use super::{BINDER_OBJECT, Binder, BinderClient, BinderInfo, BinderService};
use crate::client::{Proxy, Stub};
use crate::endpoint::{Endpoint, ToAddress};

/// How often a lease keeper renews, at most: a guard against a binder granting tiny leases.
const MIN_RENEW_PERIOD: Duration = Duration::from_millis(10);
/// How long a shutdown waits for binders to confirm its unbinds, at most.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(1);

/// A handle on a binder, for an endpoint: register its objects, look up others'.
///
/// [`Naming::connect`] reaches a binder over the network; [`Naming::local`] uses one in this
/// process. Both offer the same operations. Objects registered through a remote binder are kept
/// alive there by a lease that the endpoint renews on its own (see [the module docs](super)).
///
/// Lookups return client stubs that call the object's own host directly; stubs for objects on the
/// same endpoint share one connection.
#[derive(Clone, Debug)]
pub struct Naming {
    endpoint: Endpoint,
    target: Target,
    secret: Option<Secret>,
}

#[derive(Clone, Debug)]
enum Target {
    /// A binder at this address.
    Remote(Address),
    /// A binder in this process.
    Local(Acting),
}

/// Calls a binder operation on whichever binder the handle names: `remote` with the binder's
/// client stub, `local` with the service.
macro_rules! on_binder {
    ($self:ident, |$client:ident| $remote:expr, |$service:ident| $local:expr) => {
        match &$self.target {
            Target::Remote(address) => {
                let $client = $self.client(address).await?;
                $remote
            }
            Target::Local($service) => $local,
        }
    };
}

impl Naming {
    /// A handle on the binder served by the endpoint at `address`, used from `endpoint`.
    ///
    /// # Errors
    /// The errors of [`Endpoint::connect`] if the address cannot be reached, and
    /// [`Error::NoSuchObject`] if the endpoint there serves no binder.
    pub async fn connect(endpoint: &Endpoint, address: impl ToAddress) -> Result<Naming, Error> {
        let address = address.to_address().map_err(|e| Error::Connect {
            address: address.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        let naming = Naming { endpoint: endpoint.clone(), target: Target::Remote(address), secret: None };
        naming.info().await?;
        Ok(naming)
    }

    /// A handle on `service`, a binder in this process, used from `endpoint`. Entries made through
    /// it belong to the binder's own process: they need no lease and live until unbound.
    pub fn local(endpoint: &Endpoint, service: &BinderService) -> Naming {
        Naming { endpoint: endpoint.clone(), target: Target::Local(Acting::own(service)), secret: None }
    }

    /// The handle, presenting `secret` with every change (for binders that require one).
    pub fn with_secret(mut self, secret: Secret) -> Naming {
        self.secret = Some(secret);
        self
    }

    /// The binder's address; `None` for a binder in this process.
    pub fn address(&self) -> Option<&Address> {
        match &self.target {
            Target::Remote(address) => Some(address),
            Target::Local(_) => None,
        }
    }

    async fn client(&self, address: &Address) -> Result<BinderClient, Error> {
        self.endpoint.proxy_at(address, BINDER_OBJECT).await
    }

    /// The binder's size and lease.
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn info(&self) -> Result<BinderInfo, Error> {
        on_binder!(self, |client| client.info().await, |service| Ok(Binder::info(service).await))
    }

    /// Binds `name` to the object `reference` names, unless `name` is bound already.
    ///
    /// The object may live anywhere (on this endpoint or another host): lookups return its
    /// reference as given. While this endpoint runs, it renews the entry's lease at a remote binder.
    ///
    /// # Errors
    /// [`BinderError::NameTaken`], [`BinderError::Unauthorized`], [`BinderError::Invalid`] or
    /// [`BinderError::Full`] inside [`Error::Binder`]; otherwise the call's [`Error`].
    pub async fn bind(&self, name: &str, reference: &RemoteRef) -> Result<(), Error> {
        self.put(name, reference, false).await
    }

    /// Binds `name` to the object `reference` names, replacing any entry of that name.
    ///
    /// # Errors
    /// As [`Naming::bind`], except that a taken name is not an error.
    pub async fn rebind(&self, name: &str, reference: &RemoteRef) -> Result<(), Error> {
        self.put(name, reference, true).await
    }

    async fn put(&self, name: &str, reference: &RemoteRef, replace: bool) -> Result<(), Error> {
        let interface_name = self.endpoint.interface_name_of(reference).unwrap_or_default().to_owned();
        let (name, secret) = (name.to_owned(), self.secret.clone());
        match &self.target {
            Target::Remote(address) => {
                let client = self.client(address).await?;
                let (r, i, s) = (reference.clone(), interface_name.clone(), secret.clone());
                let lease = if replace {
                    client.rebind(name.clone(), r, i, s).await??
                } else {
                    client.bind(name.clone(), r, i, s).await??
                };
                let held = Held { reference: reference.clone(), interface_name, secret, seq: 0 };
                self.endpoint.inner().binder_leases.hold(&self.endpoint, address, name, held, lease);
            }
            Target::Local(service) => {
                let object = (reference.endpoint == self.endpoint.id()).then_some(reference.object);
                let reference = reference.clone();
                if replace {
                    Binder::rebind(service, name, reference, interface_name, secret).await?;
                } else {
                    Binder::bind(service, name, reference, interface_name, secret).await?;
                }
                // A binder in this process holds no lease: a collected object bound there is
                // pinned (it stays until unpinned or unexported).
                if let Some(object) = object {
                    self.endpoint.pin(object);
                }
            }
        }
        Ok(())
    }

    /// Removes the entry `name`.
    ///
    /// # Errors
    /// [`BinderError::NotBound`] or [`BinderError::Unauthorized`] inside [`Error::Binder`];
    /// otherwise the call's [`Error`].
    pub async fn unbind(&self, name: &str) -> Result<(), Error> {
        let secret = self.secret.clone();
        match &self.target {
            Target::Remote(address) => {
                let client = self.client(address).await?;
                let unbound = client.unbind(name.to_owned(), secret).await?;
                // Renewing stops only once the binder no longer has the entry: a refused unbind
                // leaves it bound, and kept.
                if matches!(unbound, Ok(()) | Err(BinderError::NotBound(_))) {
                    self.endpoint.inner().binder_leases.release(address, name, None);
                }
                Ok(unbound?)
            }
            Target::Local(service) => Ok(Binder::unbind(service, name.to_owned(), secret).await?),
        }
    }

    /// The entry `name`, as the binder holds it.
    ///
    /// # Errors
    /// [`BinderError::NotBound`] inside [`Error::Binder`]; otherwise the call's [`Error`].
    pub async fn resolve(&self, name: &str) -> Result<Binding, Error> {
        let name = name.to_owned();
        on_binder!(self, |client| Ok(client.lookup(name).await??), |service| Ok(Binder::lookup(
            service, name
        )
        .await?))
    }

    /// A client stub for the object bound to `name`, which must implement `C`'s interface at
    /// `C`'s version: a lookup never returns a mistyped stub.
    ///
    /// # Errors
    /// [`BinderError::NotBound`], [`BinderError::WrongInterface`] or [`BinderError::WrongVersion`]
    /// inside [`Error::Binder`]; the errors of [`Endpoint::proxy`] if the object's host cannot be
    /// reached; otherwise the call's [`Error`].
    pub async fn lookup<C: Stub>(&self, name: &str) -> Result<C, Error> {
        let binding = self.resolve(name).await?;
        let descriptor = C::DESCRIPTOR;
        let reference = &binding.reference;
        if reference.interface != descriptor.id {
            let (expected, bound) = (descriptor.id, reference.interface);
            let (expected_name, bound_name) = (descriptor.name.to_owned(), binding.interface_name);
            return Err(BinderError::WrongInterface {
                name: binding.name,
                expected,
                expected_name,
                bound,
                bound_name,
            }
            .into());
        }
        if reference.version != descriptor.version {
            let (expected, bound) = (descriptor.version, reference.version);
            return Err(BinderError::WrongVersion { name: binding.name, expected, bound }.into());
        }
        self.endpoint.proxy(reference).await
    }

    /// Every entry, by name.
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn list(&self) -> Result<Vec<Binding>, Error> {
        on_binder!(self, |client| client.list().await, |service| Ok(Binder::list(service).await))
    }

    /// The entries whose objects implement `interface` at a version within `versions`, by name.
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn lookup_interface(
        &self,
        interface: InterfaceId,
        versions: impl Into<Versions>,
    ) -> Result<Vec<Binding>, Error> {
        let versions = versions.into();
        on_binder!(self, |client| client.lookup_interface(interface, versions).await, |service| Ok(
            Binder::lookup_interface(service, interface, versions).await
        ))
    }

    /// Client stubs for every bound object that implements `C`'s interface at `C`'s version, with
    /// their names, in name order (the lecture's lookup by class). Objects whose host cannot be
    /// reached now are left out (and logged).
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn lookup_all<C: Stub>(&self) -> Result<Vec<(String, C)>, Error> {
        let descriptor = C::DESCRIPTOR;
        let bindings = self.lookup_interface(descriptor.id, Versions::exactly(descriptor.version)).await?;
        let mut stubs = Vec::with_capacity(bindings.len());
        for binding in bindings {
            match self.endpoint.proxy::<C>(&binding.reference).await {
                Ok(stub) => stubs.push((binding.name, stub)),
                Err(error) => {
                    tracing::warn!(name = %binding.name, %error, "bound object unreachable; left out");
                }
            }
        }
        Ok(stubs)
    }

    /// A client stub for one bound object that implements `C`'s interface at `C`'s version: the
    /// first, in name order, whose host can be reached.
    ///
    /// # Errors
    /// [`BinderError::NoneBound`] inside [`Error::Binder`] if there is none; otherwise the call's
    /// [`Error`].
    pub async fn lookup_any<C: Stub>(&self) -> Result<C, Error> {
        let descriptor = C::DESCRIPTOR;
        let versions = Versions::exactly(descriptor.version);
        for binding in self.lookup_interface(descriptor.id, versions).await? {
            match self.endpoint.proxy::<C>(&binding.reference).await {
                Ok(stub) => return Ok(stub),
                Err(error) => tracing::debug!(name = %binding.name, %error, "bound object unreachable; next"),
            }
        }
        Err(BinderError::NoneBound { interface: descriptor.id, versions }.into())
    }
}

/// An entry a lease keeper holds at its binder.
#[derive(Clone)]
struct Held {
    reference: RemoteRef,
    interface_name: String,
    /// The secret it was bound with, to bind it again.
    secret: Option<Secret>,
    /// When it was (last) bound, in the keeper's count: tells a hold from a later one of the
    /// same name.
    seq: u64,
}

/// One binder's lease, kept by an endpoint: the entries it registered there.
#[derive(Clone, Default)]
struct Keeper {
    held: BTreeMap<String, Held>,
    next_seq: u64,
}

impl Keeper {
    /// A secret to present for the lease as a whole (renewals, withdrawal).
    fn secret(&self) -> Option<Secret> {
        self.held.values().find_map(|h| h.secret.clone())
    }

    /// Whether `name` is still held as it was in `snapshot`.
    fn holds(&self, name: &str, snapshot: &Held) -> bool {
        self.held.get(name).is_some_and(|h| h.seq == snapshot.seq)
    }
}

/// An endpoint's lease keepers, one per binder it registered entries at. Each has a task that
/// renews the lease every third of its length while the keeper holds entries.
#[derive(Default)]
pub(crate) struct LeaseKeepers {
    by_binder: Mutex<HashMap<Address, Keeper>>,
}

impl LeaseKeepers {
    fn lock(&self) -> MutexGuard<'_, HashMap<Address, Keeper>> {
        self.by_binder.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an entry bound at `binder`, starting the binder's keeper task if it has none.
    fn hold(&self, endpoint: &Endpoint, binder: &Address, name: String, mut held: Held, lease: Duration) {
        let mut keepers = self.lock();
        let keeper = match keepers.get_mut(binder) {
            Some(keeper) => keeper,
            None => {
                endpoint.inner().io.spawn(keep(endpoint.clone(), binder.clone(), lease));
                keepers.entry(binder.clone()).or_default()
            }
        };
        keeper.next_seq += 1;
        held.seq = keeper.next_seq;
        keeper.held.insert(name, held);
    }

    /// Whether a name bound at some binder names `object` of endpoint `endpoint` (the collector
    /// keeps such an object).
    pub(crate) fn binds(&self, endpoint: rmi_core::EndpointId, object: rmi_core::ObjectId) -> bool {
        self.lock().values().any(|keeper| {
            keeper.held.values().any(|h| h.reference.endpoint == endpoint && h.reference.object == object)
        })
    }

    /// Forgets the entry `name` at `binder`: any hold, or only the hold `snapshot` if given.
    fn release(&self, binder: &Address, name: &str, snapshot: Option<&Held>) {
        if let Some(keeper) = self.lock().get_mut(binder)
            && snapshot.is_none_or(|held| keeper.holds(name, held))
        {
            keeper.held.remove(name);
        }
    }

    /// Whether `name` is still held at `binder` as in `snapshot`.
    fn holds(&self, binder: &Address, name: &str, snapshot: &Held) -> bool {
        self.lock().get(binder).is_some_and(|keeper| keeper.holds(name, snapshot))
    }

    /// Withdraws this endpoint's entries from every binder it holds a lease at, over connections
    /// already open, until `deadline` (at most [`WITHDRAW_TIMEOUT`]), and forgets them: for a
    /// shutting-down endpoint. A binder removes only the entries this endpoint still holds, not
    /// names others have rebound since.
    pub(crate) async fn withdraw(&self, endpoint: &Endpoint, deadline: Instant) {
        let keepers = std::mem::take(&mut *self.lock());
        let deadline = deadline.min(Instant::now() + WITHDRAW_TIMEOUT);
        let withdrawals = keepers.into_iter().map(|(binder, keeper)| {
            let conn = endpoint.pooled(&binder);
            async move {
                let Some(conn) = conn else { return };
                let client = binder_over(conn);
                let withdrawn = tokio::time::timeout_at(deadline, client.withdraw(keeper.secret())).await;
                match withdrawn.map(|r| r.and_then(|r| r.map_err(Error::from))) {
                    Ok(Ok(entries)) => tracing::debug!(%binder, entries, "entries withdrawn at shutdown"),
                    Ok(Err(error)) => tracing::debug!(%binder, %error, "entries not withdrawn at shutdown"),
                    Err(_) => tracing::debug!(%binder, "entries not withdrawn at shutdown in time"),
                }
            }
        });
        futures_util::future::join_all(withdrawals).await;
    }

    /// Forgets the entries of `snapshot` that are in neither sorted list (the binder no longer
    /// counts them as this endpoint's: unbound or rebound by others), unless they were bound
    /// again since `snapshot` was taken.
    fn reconcile(&self, binder: &Address, snapshot: &Keeper, names: &[String], lapsed: &[String]) {
        let mut keepers = self.lock();
        let Some(keeper) = keepers.get_mut(binder) else { return };
        for (name, held) in &snapshot.held {
            let listed = names.binary_search(name).is_ok() || lapsed.binary_search(name).is_ok();
            if !listed && keeper.holds(name, held) {
                tracing::info!(%binder, %name, "entry unbound or taken over at the binder; no longer kept");
                keeper.held.remove(name);
            }
        }
    }

    /// The keeper of `binder`, or `None` (and the keeper removed) once it holds no entries.
    fn snapshot(&self, binder: &Address) -> Option<Keeper> {
        let mut keepers = self.lock();
        let keeper = keepers.get(binder)?;
        if keeper.held.is_empty() {
            keepers.remove(binder);
            return None;
        }
        Some(keeper.clone())
    }
}

/// A binder client over `conn`, which need not be pooled (a shutting-down endpoint dials nothing).
fn binder_over(conn: crate::Connection) -> BinderClient {
    let descriptor = BinderClient::DESCRIPTOR;
    BinderClient::from_proxy(Proxy::new(conn, BINDER_OBJECT, descriptor.id, descriptor.version))
}

/// Renews this endpoint's lease at `binder` until the endpoint stops or holds no entries there;
/// binds again the entries the binder dropped or forgot.
async fn keep(endpoint: Endpoint, binder: Address, mut lease: Duration) {
    let stop = endpoint.inner().stop.clone();
    let keepers = &endpoint.inner().binder_leases;
    loop {
        let period = (lease / 3).max(MIN_RENEW_PERIOD);
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let Some(snapshot) = keepers.snapshot(&binder) else {
            tracing::debug!(%binder, "no entries left at the binder; lease keeper stops");
            return;
        };
        let client = match endpoint.proxy_at::<BinderClient>(&binder, BINDER_OBJECT).await {
            Ok(client) => client.with_timeout(period),
            Err(error) => {
                tracing::warn!(%binder, %error, "cannot reach the binder to renew the lease; will retry");
                continue;
            }
        };
        let again: Vec<(&String, &Held)> = match client.renew(snapshot.secret()).await {
            Ok(Ok(mut grant)) => {
                lease = grant.duration;
                // Sorted by the binder; sorted again, since nothing it sends is trusted.
                grant.names.sort_unstable();
                grant.lapsed.sort_unstable();
                keepers.reconcile(&binder, &snapshot, &grant.names, &grant.lapsed);
                snapshot.held.iter().filter(|(name, _)| grant.lapsed.binary_search(name).is_ok()).collect()
            }
            Ok(Err(BinderError::NoLease)) => snapshot.held.iter().collect(),
            Ok(Err(error)) => {
                tracing::warn!(%binder, %error, "lease renewal refused");
                continue;
            }
            Err(error) => {
                tracing::warn!(%binder, %error, "cannot renew the lease; will retry");
                continue;
            }
        };
        if !again.is_empty() {
            tracing::info!(%binder, entries = again.len(), "the binder dropped entries of this endpoint; binding them again");
        }
        for (name, held) in again {
            if stop.is_cancelled() {
                return;
            }
            if let Some(granted) = bind_again(&client, keepers, &binder, name, held).await {
                lease = granted;
            }
        }
    }
}

/// Binds `name` again as `held` says, unless the application let go of it meanwhile (and undoes
/// the bind if it let go while the bind was under way). Returns the lease granted.
async fn bind_again(
    client: &BinderClient,
    keepers: &LeaseKeepers,
    binder: &Address,
    name: &str,
    held: &Held,
) -> Option<Duration> {
    if !keepers.holds(binder, name, held) {
        return None;
    }
    let (reference, interface_name) = (held.reference.clone(), held.interface_name.clone());
    match client.bind(name.to_owned(), reference, interface_name, held.secret.clone()).await {
        Ok(Ok(granted)) => {
            if !keepers.holds(binder, name, held) {
                let _ = client.unbind(name.to_owned(), held.secret.clone()).await;
            }
            Some(granted)
        }
        Ok(Err(error @ BinderError::NameTaken(_))) => {
            tracing::warn!(%binder, %name, %error, "entry lost to another registrant");
            keepers.release(binder, name, Some(held));
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(%binder, %name, %error, "cannot bind the entry again");
            None
        }
        Err(error) => {
            tracing::warn!(%binder, %name, %error, "cannot bind the entry again");
            None
        }
    }
}
