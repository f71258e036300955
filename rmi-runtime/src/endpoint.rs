//! The endpoint: one process-side node that exports objects and calls others.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use rmi_core::{
    Address, AddressParseError, CallId, Dispatch, EndpointId, Error, InterfaceDescriptor, ObjectId, RemoteRef,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::binder::LeaseKeepers;
use crate::client::{Proxy, Stub, Target};
use crate::config::Config;
use crate::connection::{Connection, handshake_within};
use crate::dgc::{DgcService, DgcSkeleton, Export, Exports, Holds};
use crate::server::accept_loop;
use crate::table::ObjectTable;
use crate::transport;

/// A process-side node of rmi: it exports objects, listens for connections, and calls objects of
/// other endpoints, all over the same multiplexed connections.
///
/// Cloning is cheap: clones share the endpoint. The endpoint runs until [`Endpoint::shutdown`] or
/// until the Tokio runtime it runs on stops; dropping the handles does not stop it.
///
/// # Example
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), rmi_runtime::Error> {
/// use rmi_runtime::Endpoint;
///
/// let server = Endpoint::new();
/// let address = server.listen("tcp://127.0.0.1:0").await?;
/// let client = Endpoint::new();
/// let conn = client.connect(&address).await?;
/// assert_eq!(conn.peer_endpoint(), server.id());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

/// A slot of the connection pool: the connection to one address, dialled by the first caller.
type PoolSlot = Arc<tokio::sync::Mutex<Option<Connection>>>;

pub(crate) struct EndpointInner {
    pub(crate) id: EndpointId,
    pub(crate) config: Config,
    pub(crate) table: ObjectTable,
    next_call: AtomicU64,
    next_connection: AtomicU64,
    addresses: Mutex<Vec<Address>>,
    /// The address put into references, if set apart from the listen addresses.
    advertised: Mutex<Option<Address>>,
    /// Connections this endpoint dialled, by address.
    pool: Mutex<HashMap<Address, PoolSlot>>,
    /// Every open connection, dialled or accepted.
    open: Mutex<Registry>,
    shutting_down: AtomicBool,
    /// When the shutdown's grace ends, set by the first call to `shutdown`.
    shutdown_deadline: OnceLock<Instant>,
    /// Reader and writer tasks of the connections a shutdown closed, to abort after the grace.
    closing: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Stops the accept loops.
    pub(crate) stop: CancellationToken,
    /// Cancelled when a shutdown has finished.
    done: CancellationToken,
    /// Tasks of served calls.
    pub(crate) served: TaskTracker,
    /// Reader, writer, accept and handshake tasks.
    pub(crate) io: TaskTracker,
    /// `max_connections` permits for accepted connections.
    pub(crate) accept_permits: Arc<Semaphore>,
    /// Leases on entries this endpoint registered at binders.
    pub(crate) binder_leases: LeaseKeepers,
    /// This endpoint's collected objects and who holds them.
    pub(crate) exports: Exports,
    /// The objects of other endpoints this endpoint holds.
    pub(crate) holds: Holds,
    /// Replies of at-most-once calls served, for repeated requests.
    pub(crate) history: crate::history::History,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<u64, Connection>,
    closed: bool,
}

/// Something that names an [`Address`]: a string such as `"tcp://127.0.0.1:0"`, `"unix:///tmp/a.sock"`,
/// `"memory://name"` or a bare `"127.0.0.1:0"` (TCP), or an `Address`.
pub trait ToAddress: fmt::Display {
    /// The address.
    ///
    /// # Errors
    /// [`AddressParseError`] if the string names no address.
    fn to_address(&self) -> Result<Address, AddressParseError>;
}

impl ToAddress for str {
    fn to_address(&self) -> Result<Address, AddressParseError> {
        self.parse()
    }
}

impl ToAddress for String {
    fn to_address(&self) -> Result<Address, AddressParseError> {
        self.parse()
    }
}

impl ToAddress for Address {
    fn to_address(&self) -> Result<Address, AddressParseError> {
        Ok(self.clone())
    }
}

impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> Result<Address, AddressParseError> {
        (**self).to_address()
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint {
    /// An endpoint with a fresh random identity and the default [`Config`].
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// An endpoint with a fresh random identity and `config`.
    pub fn with_config(config: Config) -> Self {
        let config = config.sanitized();
        let inner = Arc::new_cyclic(|weak| {
            let table = ObjectTable::default();
            table.set_collector(Arc::new(DgcSkeleton::new(DgcService { endpoint: weak.clone() })));
            EndpointInner {
                id: EndpointId::random(),
                table,
                next_call: AtomicU64::new(1),
                next_connection: AtomicU64::new(1),
                addresses: Mutex::default(),
                advertised: Mutex::default(),
                pool: Mutex::default(),
                open: Mutex::default(),
                shutting_down: AtomicBool::new(false),
                shutdown_deadline: OnceLock::new(),
                closing: Mutex::default(),
                stop: CancellationToken::new(),
                done: CancellationToken::new(),
                served: TaskTracker::new(),
                io: TaskTracker::new(),
                accept_permits: Arc::new(Semaphore::new(config.max_connections.min(Semaphore::MAX_PERMITS))),
                binder_leases: LeaseKeepers::default(),
                exports: Exports::default(),
                holds: Holds::default(),
                history: crate::history::History::new(&config),
                config,
            }
        });
        Self { inner }
    }

    pub(crate) fn from_inner(inner: Arc<EndpointInner>) -> Self {
        Self { inner }
    }

    /// The endpoint's identity, sent to peers in the handshake.
    pub fn id(&self) -> EndpointId {
        self.inner.id
    }

    /// The endpoint's limits and timeouts.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Starts accepting connections on `address` and returns the address peers should use (a TCP
    /// port 0 resolved to the port chosen).
    ///
    /// `address` is `tcp://HOST:PORT` (or a bare `HOST:PORT`), `unix://PATH` or `memory://NAME`. An
    /// endpoint may listen on several addresses; [`Endpoint::address`] is the first.
    ///
    /// # Errors
    /// [`Error::Listen`] if the address is invalid or cannot be bound; [`Error::ShuttingDown`]
    /// after [`Endpoint::shutdown`].
    pub async fn listen(&self, address: impl ToAddress) -> Result<Address, Error> {
        let listen_error = |source: io::Error| Error::Listen { address: address.to_string(), source };
        let parsed =
            address.to_address().map_err(|e| listen_error(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        if self.inner.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let listener = transport::bind(&parsed).await.map_err(listen_error)?;
        let local = listener.local_address().clone();
        lock(&self.inner.addresses).push(local.clone());
        self.inner.io.spawn(accept_loop(Arc::clone(&self.inner), listener));
        Ok(local)
    }

    /// The first address this endpoint listens on, if it listens.
    pub fn address(&self) -> Option<Address> {
        lock(&self.inner.addresses).first().cloned()
    }

    /// Sets the address that references to this endpoint's objects carry (from now on), in place
    /// of [`Endpoint::address`]: for an endpoint listening on `0.0.0.0`, behind a port forward or
    /// a NAT, where the address it listens on is not one others can dial.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), rmi_runtime::Error> {
    /// use rmi_runtime::{Address, Endpoint};
    ///
    /// let endpoint = Endpoint::new();
    /// let listening = endpoint.listen("tcp://0.0.0.0:0").await?;
    /// let Address::Tcp(mut public) = listening else { unreachable!() };
    /// public.set_ip([192, 0, 2, 10].into()); // the host's address on its network
    /// endpoint.set_advertised_address(public.into());
    /// assert_eq!(endpoint.advertised_address(), Some(Address::Tcp(public)));
    /// # Ok(()) }
    /// ```
    pub fn set_advertised_address(&self, address: Address) {
        *lock(&self.inner.advertised) = Some(address);
    }

    /// The address references to this endpoint's objects carry: the one set with
    /// [`Endpoint::set_advertised_address`], else [`Endpoint::address`].
    pub fn advertised_address(&self) -> Option<Address> {
        lock(&self.inner.advertised).clone().or_else(|| self.address())
    }

    /// Every address this endpoint listens on.
    pub fn addresses(&self) -> Vec<Address> {
        lock(&self.inner.addresses).clone()
    }

    /// Exports `skeleton` under a fresh random object id and returns its reference.
    ///
    /// The reference carries [`Endpoint::advertised_address`] as it is now: export after
    /// [`Endpoint::listen`] for a reference that others can dial. A reference without an address
    /// still works over a connection this endpoint opened to the caller (callbacks).
    pub fn export<D: Dispatch>(&self, skeleton: D) -> RemoteRef {
        self.export_arc(Arc::new(skeleton))
    }

    /// Exports a shared skeleton; see [`Endpoint::export`].
    pub fn export_arc(&self, skeleton: Arc<dyn Dispatch>) -> RemoteRef {
        let object = ObjectId::random();
        let descriptor = skeleton.descriptor();
        self.inner.table.insert(object, skeleton);
        self.reference(object, descriptor, false)
    }

    /// Exports `skeleton` under a chosen object id, for well-known objects that clients reach by
    /// address and id alone (see [`Endpoint::proxy_at`]). Returns `None`, exporting nothing, if the
    /// id is already in use.
    ///
    /// A chosen id can be guessed: anyone who can reach the endpoint can call the object. Prefer
    /// [`Endpoint::export`] and hand out the reference.
    pub fn export_with_id<D: Dispatch>(&self, object: ObjectId, skeleton: D) -> Option<RemoteRef> {
        let descriptor = skeleton.descriptor();
        self.inner
            .table
            .insert_new(object, Arc::new(skeleton))
            .then(|| self.reference(object, descriptor, false))
    }

    /// Exports `skeleton` to be collected (see [`dgc`](crate::dgc)) and returns a proxy for it, the
    /// object's first holder: the object stays exported while proxies for it are alive here or
    /// held by peers, and is unexported when none is. The generated `{Trait}Client::export` calls
    /// this.
    ///
    /// Calls through the proxy, and through proxies made from it in this process, skip the network.
    /// Sending it (as an argument or result, or inside one) sends the reference.
    pub fn export_collected(&self, skeleton: Arc<dyn Dispatch>, options: Export) -> Proxy {
        let object = ObjectId::random();
        let descriptor = skeleton.descriptor();
        self.inner.table.insert(object, skeleton);
        self.inner.exports.add(&self.inner, object, options);
        let target = Target::exported(&self.inner, self.reference(object, descriptor, true));
        Proxy::from_target(target).named(descriptor.name)
    }

    /// Pins the collected object `object`: it stays exported however unreferenced, until
    /// [`Endpoint::unpin`]. Returns false if `object` is not a collected object of this endpoint
    /// (objects exported with [`Endpoint::export`] are never collected).
    pub fn pin(&self, object: ObjectId) -> bool {
        self.inner.exports.set_pinned(&self.inner, object, true)
    }

    /// Unpins the collected object `object`: if nothing references it, it is unexported now.
    /// Returns false if `object` is not a collected object of this endpoint.
    pub fn unpin(&self, object: ObjectId) -> bool {
        self.inner.exports.set_pinned(&self.inner, object, false)
    }

    /// How many objects of other endpoints this endpoint holds proxies for, registered (or being
    /// registered) with their endpoints' garbage collectors.
    pub fn held_count(&self) -> usize {
        self.inner.holds.count()
    }

    fn reference(&self, object: ObjectId, descriptor: &InterfaceDescriptor, collected: bool) -> RemoteRef {
        let address = self.advertised_address();
        if let Some(Address::Tcp(addr)) = &address
            && addr.ip().is_unspecified()
        {
            tracing::warn!(
                %addr,
                "exporting with an unspecified listen address that other hosts cannot dial; \
                 set one with Endpoint::set_advertised_address"
            );
        }
        RemoteRef {
            endpoint: self.id(),
            address,
            object,
            interface: descriptor.id,
            version: descriptor.version,
            collected,
        }
    }

    /// Stops serving `object`; later calls to it fail with [`Error::NoSuchObject`]. Calls already
    /// running finish. Returns whether the object was exported.
    pub fn unexport(&self, object: ObjectId) -> bool {
        self.inner.exports.forget(object);
        self.inner.table.remove(&object)
    }

    /// The name of the interface of the object `reference` names, if it is exported here.
    pub(crate) fn interface_name_of(&self, reference: &RemoteRef) -> Option<&'static str> {
        if reference.endpoint != self.id() {
            return None;
        }
        self.inner.table.get(&reference.object).map(|skeleton| skeleton.descriptor().name)
    }

    pub(crate) fn inner(&self) -> &Arc<EndpointInner> {
        &self.inner
    }

    /// How many objects are exported.
    pub fn exported_count(&self) -> usize {
        self.inner.table.len()
    }

    /// How many at-most-once calls this endpoint served are still in its reply history (running,
    /// or replied and not yet acknowledged by their callers): kept to answer repeated requests,
    /// bounded by [`Config::max_reply_history`] and [`Config::reply_history_age`].
    pub fn reply_history_len(&self) -> usize {
        self.inner.history.len()
    }

    /// The connection to `address`: the open one if this endpoint already dialled it, else a new
    /// one (connect and handshake within [`Config::handshake_timeout`]).
    ///
    /// # Errors
    /// [`Error::Connect`] if the transport cannot connect, [`Error::Handshake`] if the peer is not
    /// an rmi endpoint of this protocol version or too slow, [`Error::ShuttingDown`] after
    /// [`Endpoint::shutdown`].
    pub async fn connect(&self, address: &Address) -> Result<Connection, Error> {
        if self.inner.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        // One deadline for waiting on another caller's dial to the same address and for our own:
        // callers queued behind dials to a silent address do not wait one timeout each.
        let timeout = self.inner.config.handshake_timeout;
        let deadline = crate::deadline_after(timeout);
        let slot = lock(&self.inner.pool).entry(address.clone()).or_default().clone();
        let _tidy = PoolTidy { inner: &self.inner, address, slot: &slot };
        let Ok(mut slot) = tokio::time::timeout_at(deadline, slot.lock()).await else {
            return Err(not_connected_within(address, timeout));
        };
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = self.dial(address, deadline).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// The open connection this endpoint dialled to `address`, if there is one; never dials.
    pub(crate) fn pooled(&self, address: &Address) -> Option<Connection> {
        let slot = lock(&self.inner.pool).get(address).cloned()?;
        slot.try_lock().ok()?.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    async fn dial(&self, address: &Address, deadline: Instant) -> Result<Connection, Error> {
        let timeout = self.inner.config.handshake_timeout;
        let mut io = match tokio::time::timeout_at(deadline, transport::connect(address)).await {
            Ok(Ok(io)) => io,
            Ok(Err(source)) => return Err(Error::Connect { address: address.to_string(), source }),
            Err(_) => return Err(not_connected_within(address, timeout)),
        };
        let hello = handshake_within(&mut io, self.id(), deadline, timeout)
            .await
            .map_err(|reason| Error::Handshake { peer: address.to_string(), reason })?;
        Ok(Connection::start(&self.inner, io, hello.endpoint, Some(address.clone()), None))
    }

    /// An open connection to the endpoint `peer`, dialled by either side, if there is one.
    pub fn connection_to(&self, peer: EndpointId) -> Option<Connection> {
        self.inner.connection_to(peer)
    }

    /// Every open connection, dialled or accepted.
    pub fn connections(&self) -> Vec<Connection> {
        lock(&self.inner.open).connections.values().cloned().collect()
    }

    /// A client stub of type `C` for the object `reference` names.
    ///
    /// The stub uses an open connection to the object's endpoint if there is one (even one that
    /// endpoint opened, so a server can call back a client that does not listen), else dials the
    /// reference's address.
    ///
    /// # Errors
    /// [`Error::WrongInterface`] / [`Error::WrongVersion`] if the reference is not of `C`'s
    /// interface and version; [`Error::Connect`] if the reference has no address and no connection
    /// to its endpoint is open; otherwise the errors of [`Endpoint::connect`].
    pub async fn proxy<C: Stub>(&self, reference: &RemoteRef) -> Result<C, Error> {
        check_interface(C::DESCRIPTOR, reference)?;
        let target = Target::resolve(&self.inner, reference.clone(), None);
        let proxy = Proxy::from_target(target).named(C::DESCRIPTOR.name);
        if !proxy.is_local() && proxy.connection().is_none() {
            // Dial now, so an unreachable endpoint is reported here rather than at the first call.
            proxy.target().connection().await?;
        }
        Ok(C::from_proxy(proxy))
    }

    /// A client stub of type `C` for the object `object` of the endpoint listening at `address`,
    /// assumed to implement `C`'s interface and version (the server checks both on every call:
    /// [`Error::WrongInterface`] / [`Error::WrongVersion`]).
    ///
    /// # Errors
    /// The errors of [`Endpoint::connect`].
    pub async fn proxy_at<C: Stub>(&self, address: &Address, object: ObjectId) -> Result<C, Error> {
        let conn = self.connect(address).await?;
        let descriptor = C::DESCRIPTOR;
        let proxy = Proxy::new(conn, object, descriptor.id, descriptor.version).named(descriptor.name);
        Ok(C::from_proxy(proxy))
    }

    /// A client stub of type `C` for the object `reference` names, calling over `conn` whoever
    /// dialled it.
    ///
    /// # Errors
    /// [`Error::WrongInterface`] / [`Error::WrongVersion`] if the reference is not of `C`'s
    /// interface and version.
    pub fn proxy_over<C: Stub>(&self, conn: &Connection, reference: &RemoteRef) -> Result<C, Error> {
        check_interface(C::DESCRIPTOR, reference)?;
        let target = Target::resolve(&self.inner, reference.clone(), Some(conn));
        Ok(C::from_proxy(Proxy::from_target(target).named(C::DESCRIPTOR.name)))
    }

    /// Whether [`Endpoint::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.is_shutting_down()
    }

    /// Shuts the endpoint down gracefully.
    ///
    /// From the moment this is called (before the returned future is first polled) the endpoint
    /// stops accepting connections and answers new requests with `Fault::ShuttingDown`. The future
    /// then unbinds the entries this endpoint registered at binders and lets go of the objects of
    /// other endpoints it holds (over connections already open, best effort: leases end what this
    /// misses), waits for the calls it serves to finish, up to [`Config::shutdown_grace`], aborts any
    /// still running, and closes every connection (frames already queued are still written). Calls
    /// this endpoint was waiting on fail with [`Error::ConnectionClosed`].
    ///
    /// Calling it again returns a future that finishes the same shutdown, with the deadline the
    /// first call set, whether or not the first future is still being polled.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        inner.shutting_down.store(true, Ordering::SeqCst);
        let deadline =
            *inner.shutdown_deadline.get_or_init(|| crate::deadline_after(inner.config.shutdown_grace));
        inner.stop.cancel();
        let endpoint = self.clone();
        async move {
            // Entries at binders, and holds on other endpoints' objects, go now rather than when
            // their leases run out.
            let (inner2, endpoint2) = (Arc::clone(&endpoint.inner), endpoint.clone());
            tokio::join!(
                endpoint2.inner.binder_leases.withdraw(&endpoint2, deadline),
                inner2.holds.release_all(&inner2, deadline),
            );
            inner.finish_shutdown(deadline).await;
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.inner.id)
            .field("addresses", &*lock(&self.inner.addresses))
            .field("exported", &self.inner.table.len())
            .field("shutting_down", &self.inner.is_shutting_down())
            .finish()
    }
}

impl EndpointInner {
    /// The work of a shutdown. Every step can be repeated, so any caller of `shutdown` can
    /// drive it to the end, even after another caller's future was dropped half-way.
    async fn finish_shutdown(&self, deadline: Instant) {
        if self.done.is_cancelled() {
            return;
        }
        self.served.close();
        if tokio::time::timeout_at(deadline, self.served.wait()).await.is_err() {
            let grace = self.config.shutdown_grace;
            tracing::warn!(?grace, "calls still running after the shutdown grace; aborting them");
        }
        let connections = {
            let mut open = lock(&self.open);
            open.closed = true;
            std::mem::take(&mut open.connections)
        };
        lock(&self.closing).extend(connections.values().flat_map(|conn| conn.inner.task_handles()));
        for conn in connections.values() {
            conn.inner.close("endpoint shut down");
        }
        drop(connections);
        self.io.close();
        // Writers flush what is queued; a peer that does not read gets the rest of the grace.
        let flush_deadline = deadline.max(Instant::now() + std::time::Duration::from_millis(100));
        let flushed = tokio::time::timeout_at(flush_deadline, self.io.wait()).await.is_ok();
        let tasks = std::mem::take(&mut *lock(&self.closing));
        if !flushed {
            for task in &tasks {
                task.abort();
            }
        }
        self.done.cancel();
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// An open connection to the endpoint `peer`, dialled by either side, if there is one.
    pub(crate) fn connection_to(&self, peer: EndpointId) -> Option<Connection> {
        let open = lock(&self.open);
        open.connections.values().find(|c| c.peer_endpoint() == peer && !c.is_closed()).cloned()
    }

    pub(crate) fn next_call_id(&self) -> CallId {
        CallId(self.next_call.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds an open connection; false once shutdown has closed the registry.
    pub(crate) fn register(&self, conn: &Connection) -> bool {
        let mut open = lock(&self.open);
        if open.closed {
            return false;
        }
        open.connections.insert(conn.inner.id, conn.clone());
        true
    }

    pub(crate) fn unregister(&self, id: u64) {
        let removed = lock(&self.open).connections.remove(&id);
        // Dropped outside the lock: it may be the last handle.
        drop(removed);
    }

    /// Forgets the pooled connection `id` to `address` as it closes, unless a caller of
    /// `Endpoint::connect` holds its slot (that caller then replaces or removes it).
    pub(crate) fn unpool(&self, address: &Address, id: u64) {
        let removed = {
            let mut pool = lock(&self.pool);
            let ours = pool.get(address).is_some_and(|slot| {
                Arc::strong_count(slot) == 1
                    && slot.try_lock().is_ok_and(|conn| conn.as_ref().is_none_or(|c| c.inner.id == id))
            });
            if ours { pool.remove(address) } else { None }
        };
        drop(removed);
    }
}

/// A connection to the endpoint `peer`: any open one, else one dialled to `address`.
///
/// # Errors
/// [`Error::Connect`] if there is no open connection and no address; the errors of
/// [`Endpoint::connect`].
pub(crate) async fn route_to(
    inner: &Arc<EndpointInner>,
    peer: EndpointId,
    address: Option<&Address>,
) -> Result<Connection, Error> {
    if let Some(conn) = inner.connection_to(peer) {
        return Ok(conn);
    }
    match address {
        Some(address) => Endpoint::from_inner(Arc::clone(inner)).connect(address).await,
        None => Err(Error::Connect {
            address: format!("endpoint {peer}"),
            source: io::Error::new(
                io::ErrorKind::NotConnected,
                "the reference has no address and no connection to its endpoint is open",
            ),
        }),
    }
}

fn not_connected_within(address: &Address, timeout: std::time::Duration) -> Error {
    let source = io::Error::new(io::ErrorKind::TimedOut, format!("not connected within {timeout:?}"));
    Error::Connect { address: address.to_string(), source }
}

/// Removes a pool slot, when a `connect` ends however it ends (error, cancel or success), if no
/// other caller holds it and it holds no open connection: the pool keeps one entry per address
/// with an open connection or a dial under way, not one per address ever tried.
struct PoolTidy<'a> {
    inner: &'a EndpointInner,
    address: &'a Address,
    slot: &'a PoolSlot,
}

impl Drop for PoolTidy<'_> {
    fn drop(&mut self) {
        let removed = {
            let mut pool = lock(&self.inner.pool);
            // Clones of a slot are made under the pool's lock: two references (the map's and
            // ours) mean nobody else is waiting on it.
            let unused = pool.get(self.address).is_some_and(|s| Arc::ptr_eq(s, self.slot))
                && Arc::strong_count(self.slot) == 2
                && self.slot.try_lock().is_ok_and(|conn| conn.as_ref().is_none_or(Connection::is_closed));
            if unused { pool.remove(self.address) } else { None }
        };
        drop(removed);
    }
}

fn check_interface(descriptor: &InterfaceDescriptor, reference: &RemoteRef) -> Result<(), Error> {
    if reference.interface != descriptor.id {
        return Err(Error::WrongInterface { expected: descriptor.id, served: reference.interface });
    }
    if reference.version != descriptor.version {
        return Err(Error::WrongVersion { expected: descriptor.version, served: reference.version });
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled(endpoint: &Endpoint) -> usize {
        lock(&endpoint.inner.pool).len()
    }

    #[tokio::test]
    async fn the_pool_forgets_failed_dials_and_closed_connections() {
        let client = Endpoint::new();
        for i in 0..10 {
            let nowhere: Address = format!("memory://endpoint-unit-nobody-{i}").parse().unwrap();
            assert!(matches!(client.connect(&nowhere).await, Err(Error::Connect { .. })));
        }
        assert_eq!(pooled(&client), 0, "failed dials left pool entries");

        let server = Endpoint::new();
        let address = server.listen("memory://endpoint-unit-pool").await.unwrap();
        let conn = client.connect(&address).await.unwrap();
        assert_eq!(pooled(&client), 1);
        conn.close();
        assert_eq!(pooled(&client), 0, "a closed connection stayed pooled");

        // Closed by the peer: the reader closes it, and the pool forgets it.
        let conn = client.connect(&address).await.unwrap();
        server.shutdown().await;
        conn.closed().await;
        assert_eq!(pooled(&client), 0, "a connection the peer closed stayed pooled");
    }
}
