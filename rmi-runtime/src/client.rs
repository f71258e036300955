//! The client side: proxies and the trait generated stubs implement.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use rmi_core::codec;
use rmi_core::{
    Error, Fault, Header, InterfaceDescriptor, InterfaceId, MethodDescriptor, ObjectId, OpId, Outcome,
    RemoteRef, Reply, RequestHeader, Semantics,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::RetryPolicy;
use crate::connection::{Again, Connection};
use crate::context::{CallContext, Serving};
use crate::endpoint::{Endpoint, EndpointInner};

/// Initial size of a request buffer; it grows with the arguments.
const REQUEST_BUFFER: usize = 256;

/// The untyped client half of a remote object: the object's reference, the way to reach it, and a
/// deadline for each call. Generated `{Trait}Client` stubs wrap one.
///
/// Clones share one target, and with it one hold on the object for the distributed garbage
/// collector ([`dgc`](crate::dgc)): dropping the last clone lets the object go.
#[derive(Clone)]
pub struct Proxy {
    target: Arc<Target>,
    /// The deadline of every call, overriding the method's and the endpoint's default.
    timeout: Option<Duration>,
    /// The retry policy, overriding the endpoint's.
    retry: Option<RetryPolicy>,
    /// The interface's name, for traces, when known.
    name: Option<&'static str>,
}

/// What a proxy calls: one object, reached over a connection or, for an object of this endpoint,
/// directly.
pub(crate) struct Target {
    /// The object's reference, as it travels when the proxy is sent.
    reference: RemoteRef,
    /// This endpoint.
    endpoint: Arc<EndpointInner>,
    route: Route,
    hold: Hold,
}

enum Route {
    /// An object of this endpoint: calls skip the network.
    Local,
    /// An object of another endpoint, reached over this connection once one is known.
    Remote(OnceLock<Connection>),
}

/// What the target holds for the garbage collector, to let go when it is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    None,
    /// A collected object of this endpoint.
    Local,
    /// An object of another endpoint, registered with it.
    Remote,
}

impl Target {
    /// The target of a stub for `reference`, made by `endpoint`, which received it over `via`
    /// (if it did): this endpoint's own objects are called directly; others over `via` if it leads
    /// to the object's endpoint, else any open connection to it, else by dialling its address on
    /// the first call. The stub holds the object for the garbage collector.
    pub(crate) fn resolve(
        endpoint: &Arc<EndpointInner>,
        reference: RemoteRef,
        via: Option<&Connection>,
    ) -> Self {
        if reference.endpoint == endpoint.id {
            let hold = if endpoint.exports.acquire_local(endpoint, reference.object) {
                Hold::Local
            } else {
                Hold::None
            };
            return Self { reference, endpoint: Arc::clone(endpoint), route: Route::Local, hold };
        }
        let conn = via
            .filter(|c| c.peer_endpoint() == reference.endpoint && !c.is_closed())
            .cloned()
            .or_else(|| endpoint.connection_to(reference.endpoint));
        let held = reference.collected && endpoint.holds.acquire(endpoint, &reference);
        let hold = if held { Hold::Remote } else { Hold::None };
        let route = Route::Remote(conn.map(OnceLock::from).unwrap_or_default());
        Self { reference, endpoint: Arc::clone(endpoint), route, hold }
    }

    /// A target for a collected object of this endpoint that was just exported; its first hold.
    pub(crate) fn exported(endpoint: &Arc<EndpointInner>, reference: RemoteRef) -> Self {
        Self { reference, endpoint: Arc::clone(endpoint), route: Route::Local, hold: Hold::Local }
    }

    /// The connection to the object's endpoint: the known one if it is open, else any open
    /// connection to that endpoint, else a dialled one.
    pub(crate) async fn connection(&self) -> Result<Cow<'_, Connection>, Error> {
        let Route::Remote(known) = &self.route else {
            unreachable!("local targets have no connection");
        };
        if let Some(conn) = known.get()
            && !conn.is_closed()
        {
            return Ok(Cow::Borrowed(conn));
        }
        let conn = crate::endpoint::route_to(
            &self.endpoint,
            self.reference.endpoint,
            self.reference.address.as_ref(),
        )
        .await?;
        if known.set(conn.clone()).is_ok() {
            return Ok(Cow::Borrowed(known.get().expect("just set")));
        }
        Ok(Cow::Owned(conn))
    }

    /// An open connection to the object's endpoint, if one is known without dialling.
    fn open_connection(&self) -> Option<Cow<'_, Connection>> {
        let Route::Remote(known) = &self.route else { return None };
        match known.get() {
            Some(conn) if !conn.is_closed() => Some(Cow::Borrowed(conn)),
            _ => self.endpoint.connection_to(self.reference.endpoint).map(Cow::Owned),
        }
    }

    /// The reference to send for this target: this endpoint's current address for its own objects.
    pub(crate) fn reference(&self) -> RemoteRef {
        match self.route {
            Route::Local => RemoteRef {
                address: Endpoint::from_inner(Arc::clone(&self.endpoint)).advertised_address(),
                ..self.reference.clone()
            },
            Route::Remote(_) => self.reference.clone(),
        }
    }

    /// The reference is being sent: protect the object until its receiver registers it.
    pub(crate) fn sent(&self) {
        match self.hold {
            Hold::Local => {
                let to = crate::context::destination();
                self.endpoint.exports.sent(&self.endpoint, self.reference.object, to);
            }
            Hold::Remote => self.endpoint.holds.linger(self.reference.endpoint, self.reference.object),
            Hold::None => {}
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        match self.hold {
            Hold::Local => self.endpoint.exports.release_local(&self.endpoint, self.reference.object),
            Hold::Remote => self.endpoint.holds.release(self.reference.endpoint, self.reference.object),
            Hold::None => {}
        }
    }
}

/// A call prepared before its future is first polled: arguments encoded.
enum Prepared {
    Remote(Request),
    Local(BytesMut),
}

/// A request frame, and what it takes to send it again.
struct Request {
    header: RequestHeader,
    frame: Bytes,
    /// Where the arguments start in `frame`.
    args_at: usize,
}

impl Request {
    /// The frame to send again: the same call id and arguments, and the time left before
    /// `deadline` as the caller's patience; marked [`Flags::RESENT`] if it is a resend (not the
    /// first transmission, rebuilt after waiting). `None` once the deadline has passed.
    fn again(&self, deadline: Instant, max_frame_len: usize, resent: bool) -> Option<Bytes> {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        let mut flags = self.header.flags;
        if resent {
            flags = rmi_core::Flags(flags.0 | rmi_core::Flags::RESENT.0);
        }
        let header =
            Header::Request(RequestHeader { timeout_us: Some(micros(left)), flags, ..self.header.clone() });
        let mut buf = BytesMut::with_capacity(self.frame.len() + 8);
        let start = codec::begin_frame(&mut buf, &header);
        buf.extend_from_slice(&self.frame[self.args_at..]);
        codec::finish_frame(&mut buf, start, max_frame_len).ok()?;
        Some(buf.freeze())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Proxy {
    /// A proxy for `object`, implementing `interface` at `version`, reached over `conn`. Calls get
    /// the endpoint's default deadline ([`Config::call_timeout`](crate::Config::call_timeout)).
    ///
    /// It holds nothing for the garbage collector: use it for objects exported for good
    /// (well-known objects). [`Endpoint::proxy`](crate::Endpoint::proxy) makes proxies that hold
    /// the object.
    pub fn new(conn: Connection, object: ObjectId, interface: InterfaceId, version: u32) -> Self {
        let endpoint = Arc::clone(&conn.inner.endpoint);
        let reference = RemoteRef {
            endpoint: conn.peer_endpoint(),
            address: conn.inner.dialled.clone(),
            object,
            interface,
            version,
            collected: false,
        };
        let target =
            Target { reference, endpoint, route: Route::Remote(OnceLock::from(conn)), hold: Hold::None };
        Self::from_target(target)
    }

    pub(crate) fn from_target(target: Target) -> Self {
        Self { target: Arc::new(target), timeout: None, retry: None, name: None }
    }

    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// The same proxy with another deadline for each call, overriding the method's own
    /// (`#[op(timeout = "...")]`) and the endpoint's default
    /// ([`Config::call_timeout`](crate::Config::call_timeout)): the time allowed for dialling,
    /// waiting for an in-flight slot, sending the request (and resending it) and receiving the
    /// reply. The server is told, and gives up on the call when it passes.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same proxy with another retry policy, overriding the endpoint's
    /// ([`Config::retry`](crate::Config::retry)).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The deadline of calls to `method`: the proxy's own ([`Proxy::with_timeout`]), else the
    /// method's, else the endpoint's default.
    pub fn timeout_for(&self, method: &MethodDescriptor) -> Duration {
        self.timeout.or(method.timeout).unwrap_or(self.target.endpoint.config.call_timeout)
    }

    /// The retry policy of calls through this proxy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry.unwrap_or(self.target.endpoint.config.retry)
    }

    /// The object called.
    pub fn object(&self) -> ObjectId {
        self.target.reference.object
    }

    /// The interface the proxy calls.
    pub fn interface(&self) -> InterfaceId {
        self.target.reference.interface
    }

    /// The interface version the proxy calls.
    pub fn version(&self) -> u32 {
        self.target.reference.version
    }

    /// The reference to the object, as it travels when the proxy is sent: its endpoint's identity
    /// and address, its id and interface.
    pub fn reference(&self) -> RemoteRef {
        self.target.reference()
    }

    /// Whether the object belongs to this proxy's own endpoint, so calls skip the network (their
    /// arguments and results are still copied, as if they travelled).
    pub fn is_local(&self) -> bool {
        matches!(self.target.route, Route::Local)
    }

    /// The connection calls go over, once one is known: `None` for an object of this endpoint
    /// (called without the network) and for a proxy that has not dialled its object's endpoint yet.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.target.route {
            Route::Local => None,
            Route::Remote(conn) => conn.get(),
        }
    }

    /// The target, for sending the proxy as a reference.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Encodes a request for `method` with `args` into one frame.
    fn request(
        &self,
        method: &MethodDescriptor,
        semantics: Semantics,
        timeout: Duration,
        args: &(impl Serialize + ?Sized),
    ) -> Result<Request, Error> {
        let endpoint = &self.target.endpoint;
        let header = RequestHeader {
            call: endpoint.next_call_id(),
            object: self.object(),
            interface: self.interface(),
            version: self.version(),
            op: method.op,
            flags: semantics.flags(),
            timeout_us: Some(micros(timeout)),
        };
        let (frame, args_at) = crate::frame::build(|buf| {
            let start = codec::begin_frame(buf, &Header::Request(header.clone()));
            let args_at = buf.len() - start;
            codec::encode_into(buf, args)?;
            codec::finish_frame(buf, start, endpoint.config.max_frame_len)?;
            Ok::<_, Error>(args_at)
        });
        Ok(Request { header, frame, args_at: args_at? })
    }

    fn span(&self, method: &'static str) -> tracing::Span {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            // No span at all, rather than a disabled one: with `tracing`'s `log` feature on (some
            // other crate may turn it on), a disabled span still logs every enter and exit.
            return tracing::Span::none();
        }
        match self.name {
            Some(name) => tracing::debug_span!("rmi.call", interface = name, method, object = %self.object()),
            None => {
                tracing::debug_span!("rmi.call", interface = %self.interface(), method, object = %self.object())
            }
        }
    }

    /// Calls `method` with the encoded `args` and waits for the outcome: `Ok(Ok(value))`,
    /// `Ok(Err(application error))`, or `Err(system error)`, within the call's deadline
    /// ([`Proxy::timeout_for`]). A transport failure is retried by the proxy's
    /// [`RetryPolicy`] unless the method is one-way; an at-most-once request keeps its call id, so
    /// the server answers a repeat from its reply history.
    ///
    /// The arguments are encoded before this returns; the returned future does not borrow them.
    ///
    /// # Errors
    /// Every [`Error`] but the handshake ones: the call could not be encoded or sent, the
    /// connection closed (and retries did not help), the deadline passed, or the server reported
    /// a fault.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the call and tells the server, which drops its work.
    #[doc(hidden)]
    pub fn call<'p, A, T, E>(
        &'p self,
        method: &'static MethodDescriptor,
        args: &A,
    ) -> impl Future<Output = Result<Result<T, E>, Error>> + Send + use<'p, A, T, E>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        // A call that waits for its reply is not one-way, whatever the descriptor says.
        let semantics = match method.semantics {
            Semantics::Maybe => Semantics::AtMostOnce,
            semantics => semantics,
        };
        let timeout = self.timeout_for(method);
        let deadline = crate::deadline_after(timeout);
        let prepared = self.prepare(method, semantics, timeout, args);
        let span = self.span(method.name);
        async move {
            let op = method.op;
            let payload = match prepared {
                Ok(Prepared::Remote(request)) => {
                    let (payload, conn) = self.exchange(semantics, &request, deadline, timeout).await?;
                    if semantics == Semantics::AtMostOnce {
                        conn.inner.ack(request.header.call, payload.len());
                    }
                    let context = CallContext::remote(conn.into_owned());
                    return self.outcome(op, context.decoding(|| codec::decode::<Outcome<T, E>>(&payload)));
                }
                Ok(Prepared::Local(args)) => self.call_local(op, args.freeze(), deadline, timeout).await?,
                Err(error) => return Err(error),
            };
            let context = CallContext::local(Arc::clone(&self.target.endpoint));
            self.outcome(op, context.decoding(|| codec::decode::<Outcome<T, E>>(&payload)))
        }
        .instrument(span)
    }

    /// Sends `request` and waits for its reply's payload, resending it on transport failures as
    /// the retry policy allows, all before `deadline`. Returns the payload and the connection it
    /// came on.
    async fn exchange(
        &self,
        semantics: Semantics,
        request: &Request,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Bytes, Cow<'_, Connection>), Error> {
        // The usual case, kept lean (its future is part of every call's): the connection is known
        // and open, and no resend on a live connection is asked for. One attempt, exactly as the
        // first one in `exchange_again`, which goes on from its failure.
        if let Route::Remote(known) = &self.target.route
            && let Some(conn) = known.get()
            && !conn.is_closed()
            && self.retry_policy().resend_after.is_none()
        {
            let max_frame_len = self.target.endpoint.config.max_frame_len;
            let again = |_| request.again(deadline, max_frame_len, false);
            let first = conn.inner.round_trip(
                request.header.call,
                request.frame.clone(),
                deadline,
                timeout,
                None,
                again,
            );
            return match first.await {
                Ok(payload) => Ok((payload, Cow::Borrowed(conn))),
                Err(error) => {
                    let failed = Some((error, conn.peer_endpoint()));
                    Box::pin(self.exchange_again(semantics, request, deadline, timeout, failed)).await
                }
            };
        }
        Box::pin(self.exchange_again(semantics, request, deadline, timeout, None)).await
    }

    /// The general case of [`Proxy::exchange`]: dials if need be, resends on a live connection
    /// (`resend_after`), retries transport failures. `failed` is the failure of a first attempt
    /// made already, and the endpoint it was sent to.
    async fn exchange_again(
        &self,
        semantics: Semantics,
        request: &Request,
        deadline: Instant,
        timeout: Duration,
        mut failed: Option<(Error, rmi_core::EndpointId)>,
    ) -> Result<(Bytes, Cow<'_, Connection>), Error> {
        let policy = self.retry_policy();
        let max_frame_len = self.target.endpoint.config.max_frame_len;
        let call = request.header.call;
        let retries = AtomicU32::new(0);
        let allowed = if semantics == Semantics::Maybe { 0 } else { policy.retries };
        let mut frame = request.frame.clone();
        // The first failure after which the request may have arrived: what the caller sees if
        // the retries fail in ways that prove nothing about the earlier attempt.
        let mut sent: Option<Error> = None;
        let first_peer = OnceLock::new();
        if let Some((_, peer)) = &failed {
            let _ = first_peer.set(*peer);
        }
        // Whether an earlier attempt queued the request (later ones are resends).
        let sent_before = AtomicBool::new(false);
        loop {
            let attempt = async {
                let conn = self.connection_before(deadline, timeout).await?;
                // A resend on the live connection, when no reply came in time (`resend_after`).
                // A resend goes to the endpoint of the first attempt, never to another one found at
                // the same address (a restarted endpoint has no history of the call).
                let peer = conn.peer_endpoint();
                if *first_peer.get_or_init(|| peer) != peer {
                    tracing::debug!(%call, "the object's address now leads to another endpoint");
                    return Err(Error::NoSuchObject(self.object()));
                }
                let again = |why| {
                    let resent = matches!(why, Again::NoReply);
                    if resent {
                        if retries.load(Ordering::Relaxed) >= allowed {
                            return None;
                        }
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    request.again(deadline, max_frame_len, resent || sent_before.load(Ordering::Relaxed))
                };
                let payload =
                    conn.inner.round_trip(call, frame, deadline, timeout, policy.resend_after, again).await?;
                Ok((payload, conn))
            };
            let outcome = match failed.take() {
                Some((error, _)) => Err(error),
                None => attempt.await,
            };
            let error = match outcome {
                Ok(done) => return Ok(done),
                Err(Error::NoSuchObject(_)) if sent.is_some() => {
                    // The object's endpoint is gone: the request may have run there.
                    return Err(Error::ConnectionClosed(format!(
                        "the endpoint of object {} is gone (its address leads to another endpoint); \
                         the call may have run there and was not resent",
                        self.object()
                    )));
                }
                Err(error) if error.is_transport() && retries.load(Ordering::Relaxed) < allowed => error,
                // A request that may have arrived earlier must not end in an error that says it
                // did not run (a refused dial after a broken connection).
                Err(error) if error.did_not_run() => return Err(sent.unwrap_or(error)),
                Err(error) => return Err(error),
            };
            let may_have_arrived = matches!(error, Error::ConnectionClosed(_));
            retries.fetch_add(1, Ordering::Relaxed);
            let wait = policy.backoff(retries.load(Ordering::Relaxed), call.0);
            if may_have_arrived {
                sent_before.store(true, Ordering::Relaxed);
            }
            if Instant::now().checked_add(wait).is_none_or(|at| at >= deadline) {
                return Err(if error.did_not_run() { sent.unwrap_or(error) } else { error });
            }
            tracing::debug!(%call, retry = retries.load(Ordering::Relaxed), %error, ?wait, "transport failed; resending the request");
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let Some(again) = request.again(deadline, max_frame_len, sent_before.load(Ordering::Relaxed))
            else {
                return Err(if error.did_not_run() { sent.unwrap_or(error) } else { error });
            };
            frame = again;
            if may_have_arrived && sent.is_none() {
                sent = Some(error);
            }
        }
    }

    /// The connection to the object's endpoint, dialled if need be, before `deadline`.
    async fn connection_before(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Cow<'_, Connection>, Error> {
        if let Route::Remote(known) = &self.target.route
            && let Some(conn) = known.get()
            && !conn.is_closed()
        {
            // The usual case: no dial, so no timer.
            return Ok(Cow::Borrowed(conn));
        }
        // Boxed: dialling is rare, and its future would make every call's future larger.
        match Box::pin(tokio::time::timeout_at(deadline, self.target.connection())).await {
            Ok(conn) => conn,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Encodes a call: a request frame for a remote object, the arguments alone for a local one.
    fn prepare(
        &self,
        method: &MethodDescriptor,
        semantics: Semantics,
        timeout: Duration,
        args: &(impl Serialize + ?Sized),
    ) -> Result<Prepared, Error> {
        // References among the arguments are protected until this callee says they arrived.
        crate::context::encoding_for(self.target.reference.endpoint, || match self.target.route {
            Route::Remote(_) => self.request(method, semantics, timeout, args).map(Prepared::Remote),
            Route::Local => {
                let mut buf = BytesMut::with_capacity(REQUEST_BUFFER);
                codec::encode_into(&mut buf, args)?;
                Ok(Prepared::Local(buf))
            }
        })
    }

    fn outcome<T, E>(&self, op: OpId, decoded: Result<Outcome<T, E>, Error>) -> Result<Result<T, E>, Error> {
        match decoded? {
            Outcome::Ok(value) => Ok(Ok(value)),
            Outcome::Err(error) => Ok(Err(error)),
            Outcome::Fault(fault) => {
                Err(Error::from_fault(fault, self.object(), self.interface(), self.version(), op))
            }
        }
    }

    /// Runs a call to an object of this endpoint in the caller's task, without the network: the
    /// same checks, deadline and panic handling as a served call. Returns the encoded outcome.
    async fn call_local(
        &self,
        op: OpId,
        args: Bytes,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<BytesMut, Error> {
        let endpoint = &self.target.endpoint;
        let fault = |fault| Error::from_fault(fault, self.object(), self.interface(), self.version(), op);
        if endpoint.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let skeleton = endpoint.table.get(&self.object()).ok_or_else(|| fault(Fault::NoSuchObject))?;
        let descriptor = skeleton.descriptor();
        if descriptor.id != self.interface() {
            return Err(fault(Fault::WrongInterface { served: descriptor.id }));
        }
        if descriptor.version != self.version() {
            return Err(fault(Fault::WrongVersion { served: descriptor.version }));
        }
        let mut buf = BytesMut::with_capacity(REQUEST_BUFFER);
        let context = CallContext::local(Arc::clone(endpoint));
        let run = AssertUnwindSafe(Serving::new(context, skeleton.dispatch(op, args, Reply::new(&mut buf))))
            .catch_unwind();
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(())) => Ok(buf),
            Ok(Err(panic)) => Err(Error::ServantPanicked(crate::server::panic_message(&*panic))),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Sends a one-way call to `method` (maybe semantics): the request is queued on the open
    /// connection to the object's endpoint, and the call returns without waiting for the network.
    /// If no connection is open, it is dialled in the background (within the method's deadline)
    /// and the request sent then; a failure there is only logged. An object of this endpoint runs
    /// the call in a task of its own. No result, no remote error, no retry.
    ///
    /// # Errors
    /// The request could not be encoded, or the connection's write queue is full
    /// ([`Error::WriteQueueFull`]).
    #[doc(hidden)]
    pub fn call_oneway<'p, A>(
        &'p self,
        method: &'static MethodDescriptor,
        args: &A,
    ) -> impl Future<Output = Result<(), Error>> + Send + use<'p, A>
    where
        A: Serialize + ?Sized,
    {
        let timeout = self.timeout_for(method);
        let deadline = crate::deadline_after(timeout);
        let prepared = self.prepare(method, Semantics::Maybe, timeout, args);
        let span = self.span(method.name);
        async move {
            let endpoint = &self.target.endpoint;
            match prepared? {
                Prepared::Remote(request) => {
                    if let Some(conn) = self.target.open_connection() {
                        return conn.inner.queue(request.frame);
                    }
                    let target = Arc::clone(&self.target);
                    let work = async move {
                        let conn = target.connection().await?;
                        conn.inner.send(request.frame).await
                    };
                    endpoint.io.spawn(
                        async move {
                            match tokio::time::timeout_at(deadline, work).await {
                                Ok(Ok(())) => {}
                                Ok(Err(error)) => tracing::debug!(%error, "one-way call not sent"),
                                Err(_) => tracing::debug!("one-way call not sent within its deadline"),
                            }
                        }
                        .in_current_span(),
                    );
                    Ok(())
                }
                // Maybe semantics in-process too: the caller neither waits nor sees the outcome.
                Prepared::Local(args) => {
                    let proxy = self.clone();
                    endpoint.served.spawn(
                        async move {
                            let _ = proxy.call_local(method.op, args.freeze(), deadline, timeout).await;
                        }
                        .in_current_span(),
                    );
                    Ok(())
                }
            }
        }
        .instrument(span)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("interface", &self.name.map_or_else(|| self.interface().to_string(), str::to_owned))
            .field("version", &self.version())
            .field("object", &self.object())
            .field("endpoint", &self.target.reference.endpoint)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("conn", &self.connection())
            .finish()
    }
}

/// A typed client stub: implemented by the `{Trait}Client` that `#[remote]` generates, whose methods
/// call the remote object through the [`Proxy`] it wraps.
pub trait Stub: Clone + Send + Sync + Sized + 'static {
    /// The interface the stub calls.
    const DESCRIPTOR: &'static InterfaceDescriptor;

    /// A stub calling through `proxy`.
    fn from_proxy(proxy: Proxy) -> Self;

    /// The proxy the stub calls through.
    fn proxy(&self) -> &Proxy;

    /// The same stub with another deadline for each call, overriding the methods' own and the
    /// endpoint's default ([`Proxy::with_timeout`]).
    fn with_timeout(&self, timeout: Duration) -> Self {
        Self::from_proxy(self.proxy().clone().with_timeout(timeout))
    }

    /// The same stub with another retry policy ([`Proxy::with_retry`]).
    fn with_retry(&self, policy: RetryPolicy) -> Self {
        Self::from_proxy(self.proxy().clone().with_retry(policy))
    }

    /// The reference to the object, as it travels when the stub is sent.
    fn reference(&self) -> RemoteRef {
        self.proxy().reference()
    }
}

/// Writes the reference of the object `proxy` calls: how a stub travels (by reference). Used by
/// the `Serialize` impl of generated stubs.
///
/// The object is protected from the garbage collector until the receiver has registered the
/// reference (for one lease at most).
#[doc(hidden)]
pub fn serialize_proxy<S: serde::Serializer>(proxy: &Proxy, serializer: S) -> Result<S::Ok, S::Error> {
    let target = proxy.target();
    target.sent();
    target.reference().serialize(serializer)
}

/// Reads a reference to an object of `descriptor`'s interface and makes a proxy for it, bound to
/// the connection the bytes came from. Used by the `Deserialize` impl of generated stubs.
///
/// # Errors
/// The reference is of another interface or version, or the bytes are not being decoded by rmi
/// (in a call's arguments or result).
#[doc(hidden)]
pub fn deserialize_proxy<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    descriptor: &'static InterfaceDescriptor,
) -> Result<Proxy, D::Error> {
    use serde::Deserialize;
    use serde::de::Error as _;

    let reference = RemoteRef::deserialize(deserializer)?;
    if reference.interface != descriptor.id || reference.version != descriptor.version {
        let reason = format!(
            "a reference to an object of interface {} v{} where {} ({}) v{} was expected",
            reference.interface, reference.version, descriptor.name, descriptor.id, descriptor.version,
        );
        let error = D::Error::custom(&reason);
        crate::context::refuse_reference(reason);
        return Err(error);
    }
    crate::context::with_decode_context(|context| match context {
        Some(context) => {
            let target = Target::resolve(context.endpoint(), reference, context.connection());
            Ok(Proxy::from_target(target).named(descriptor.name))
        }
        None => {
            let reason =
                "a remote reference can only be decoded by rmi, in the arguments or the result of a call";
            crate::context::refuse_reference(reason.to_owned());
            Err(D::Error::custom(reason))
        }
    })
}
