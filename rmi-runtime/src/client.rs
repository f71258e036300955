//! The client side: proxies and the trait generated stubs implement.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmi_core::codec;
use rmi_core::{
    CallId, Error, Flags, Header, InterfaceDescriptor, InterfaceId, ObjectId, OpId, Outcome, RequestHeader,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::connection::Connection;

/// Initial size of a request buffer; it grows with the arguments.
const REQUEST_BUFFER: usize = 256;

/// The untyped client half of a remote object: a connection, the object's id, its interface and
/// version, and a deadline for each call. Generated `{Trait}Client` stubs wrap one.
#[derive(Clone)]
pub struct Proxy {
    conn: Connection,
    object: ObjectId,
    interface: InterfaceId,
    version: u32,
    timeout: Duration,
    /// The interface's name, for traces, when known.
    name: Option<&'static str>,
}

impl Proxy {
    /// A proxy for `object`, implementing `interface` at `version`, reached over `conn`. Calls get
    /// the endpoint's default deadline ([`Config::call_timeout`](crate::Config::call_timeout)).
    pub fn new(conn: Connection, object: ObjectId, interface: InterfaceId, version: u32) -> Self {
        let timeout = conn.inner.endpoint.config.call_timeout;
        Self { conn, object, interface, version, timeout, name: None }
    }

    pub(crate) fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// The same proxy with another deadline for each call: the time allowed for waiting for an
    /// in-flight slot, sending the request and receiving the reply.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The object called.
    pub fn object(&self) -> ObjectId {
        self.object
    }

    /// The interface the proxy calls.
    pub fn interface(&self) -> InterfaceId {
        self.interface
    }

    /// The interface version the proxy calls.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The connection calls go over.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Encodes a request for `op` with `args` into one frame.
    fn request(
        &self,
        op: OpId,
        flags: Flags,
        args: &(impl Serialize + ?Sized),
    ) -> Result<(CallId, Bytes), Error> {
        let endpoint = &self.conn.inner.endpoint;
        let call = endpoint.next_call_id();
        let header = Header::Request(RequestHeader {
            call,
            object: self.object,
            interface: self.interface,
            version: self.version,
            op,
            flags,
            timeout_us: Some(u64::try_from(self.timeout.as_micros()).unwrap_or(u64::MAX)),
        });
        let mut buf = BytesMut::with_capacity(REQUEST_BUFFER);
        let start = codec::begin_frame(&mut buf, &header);
        codec::encode_into(&mut buf, args)?;
        codec::finish_frame(&mut buf, start, endpoint.config.max_frame_len)?;
        Ok((call, buf.freeze()))
    }

    fn span(&self, method: &'static str) -> tracing::Span {
        match self.name {
            Some(name) => tracing::debug_span!("rmi.call", interface = name, method, object = %self.object),
            None => {
                tracing::debug_span!("rmi.call", interface = %self.interface, method, object = %self.object)
            }
        }
    }

    /// Calls operation `op` (named `method`, for traces) with the encoded `args` and waits for the
    /// outcome: `Ok(Ok(value))`, `Ok(Err(application error))`, or `Err(system error)`.
    ///
    /// The arguments are encoded before this returns; the returned future does not borrow them.
    ///
    /// # Errors
    /// Every [`Error`] but the handshake ones: the call could not be encoded or sent, the
    /// connection closed, the deadline passed, or the server reported a fault.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the call and tells the server, which drops its work.
    #[doc(hidden)]
    pub fn call<'p, A, T, E>(
        &'p self,
        op: OpId,
        method: &'static str,
        args: &A,
    ) -> impl Future<Output = Result<Result<T, E>, Error>> + Send + use<'p, A, T, E>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        let deadline = crate::deadline_after(self.timeout);
        let request = self.request(op, Flags::default(), args);
        let span = self.span(method);
        async move {
            let (call, frame) = request?;
            let payload = self.conn.inner.round_trip(call, frame, deadline, self.timeout).await?;
            match codec::decode::<Outcome<T, E>>(&payload)? {
                Outcome::Ok(value) => Ok(Ok(value)),
                Outcome::Err(error) => Ok(Err(error)),
                Outcome::Fault(fault) => {
                    Err(Error::from_fault(fault, self.object, self.interface, self.version, op))
                }
            }
        }
        .instrument(span)
    }

    /// Sends a one-way call to operation `op`: no reply, so no result and no error beyond a local
    /// failure to encode or queue the request (maybe semantics).
    ///
    /// # Errors
    /// The request could not be encoded, the connection is closed, or the deadline passed while
    /// the connection's write queue was full.
    #[doc(hidden)]
    pub fn call_oneway<'p, A>(
        &'p self,
        op: OpId,
        method: &'static str,
        args: &A,
    ) -> impl Future<Output = Result<(), Error>> + Send + use<'p, A>
    where
        A: Serialize + ?Sized,
    {
        let deadline = crate::deadline_after(self.timeout);
        let request = self.request(op, Flags::ONEWAY, args);
        let span = self.span(method);
        async move {
            let (_, frame) = request?;
            if self.conn.is_closed() {
                return Err(self.conn.inner.closed_error());
            }
            match tokio::time::timeout_at(deadline, self.conn.inner.send(frame)).await {
                Ok(sent) => sent,
                Err(_) => Err(Error::Timeout(self.timeout)),
            }
        }
        .instrument(span)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("interface", &self.name.map_or_else(|| self.interface.to_string(), str::to_owned))
            .field("version", &self.version)
            .field("object", &self.object)
            .field("timeout", &self.timeout)
            .field("conn", &self.conn)
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

    /// The same stub with another deadline for each call.
    fn with_timeout(&self, timeout: Duration) -> Self {
        Self::from_proxy(self.proxy().clone().with_timeout(timeout))
    }
}
