//! The context of a call being served (who is calling, over which connection), and the decode
//! context that turns remote references arriving in arguments and results into working proxies.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rmi_core::{EndpointId, Error};

use crate::connection::Connection;
use crate::endpoint::EndpointInner;
use crate::transport::Origin;

scoped_tls::scoped_thread_local!(
    /// The call the current poll serves; set around each poll of a served call's future.
    static SERVING: CallContext
);
scoped_tls::scoped_thread_local!(
    /// Where the bytes being decoded came from; set around the decoding of a reply.
    static DECODING: CallContext
);
scoped_tls::scoped_thread_local!(
    /// The endpoint the bytes being encoded go to; set around the encoding of a request.
    static ENCODING_FOR: EndpointId
);

thread_local! {
    /// Why the last remote reference decoded on this thread was refused: the codec keeps only
    /// that decoding failed, not the reason.
    static REFUSED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `encode` with `to` as the endpoint that receives the bytes it encodes.
pub(crate) fn encoding_for<R>(to: EndpointId, encode: impl FnOnce() -> R) -> R {
    ENCODING_FOR.set(&to, encode)
}

/// The endpoint the bytes being encoded go to, when known: the callee of a request being encoded,
/// else the caller of the call being served (whose reply is being encoded).
pub(crate) fn destination() -> Option<EndpointId> {
    if ENCODING_FOR.is_set() {
        Some(ENCODING_FOR.with(|to| *to))
    } else if SERVING.is_set() {
        Some(SERVING.with(CallContext::peer_endpoint))
    } else {
        None
    }
}

/// Records why a remote reference was refused, for the error of the decode that fails.
pub(crate) fn refuse_reference(reason: String) {
    REFUSED.with(|refused| *refused.borrow_mut() = Some(reason));
}

/// Who is calling: the connection a served call arrived on, or this endpoint itself when the call
/// came through a proxy to an object of the same endpoint (which skips the network).
///
/// The runtime sets it for the whole of every served call; a servant reads it with
/// [`CallContext::current`], for example to decide whether the caller
/// may do what it asks (the [binder](crate::binder) does so for changes).
///
/// # Example
///
/// ```
/// use rmi_runtime::{CallContext, remote};
///
/// #[remote]
/// pub trait WhoAmI {
///     /// Where the caller connects from, as the server sees it.
///     async fn origin(&self) -> String;
/// }
///
/// struct Mirror;
///
/// impl WhoAmI for Mirror {
///     async fn origin(&self) -> String {
///         CallContext::current().map_or_else(|| "not in a call".into(), |ctx| ctx.origin().to_string())
///     }
/// }
/// # #[tokio::main] async fn main() -> Result<(), rmi_runtime::Error> {
/// # let server = rmi_runtime::Endpoint::new();
/// # server.listen("tcp://127.0.0.1:0").await?;
/// # let r = server.export(WhoAmISkeleton::new(Mirror));
/// # let who: WhoAmIClient = rmi_runtime::Endpoint::new().proxy(&r).await?;
/// assert!(who.origin().await?.starts_with("127.0.0.1:"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CallContext {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// A call that arrived on this connection.
    Remote(Connection),
    /// A call through a proxy of this endpoint to one of its own objects.
    Local(Arc<EndpointInner>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Remote(conn) => f.debug_tuple("Remote").field(conn).finish(),
            Source::Local(endpoint) => f.debug_tuple("Local").field(&endpoint.id).finish(),
        }
    }
}

impl CallContext {
    pub(crate) fn remote(connection: Connection) -> Self {
        Self { source: Source::Remote(connection) }
    }

    pub(crate) fn local(endpoint: Arc<EndpointInner>) -> Self {
        Self { source: Source::Local(endpoint) }
    }

    /// The context of the call this task is serving, if it is serving one.
    ///
    /// Only the call's own task has it: a task the servant spawns does not inherit it (clone it
    /// into the task if it needs it).
    pub fn current() -> Option<CallContext> {
        SERVING.is_set().then(|| SERVING.with(Clone::clone))
    }

    /// The calling endpoint's identity, as it claimed it in the handshake (this endpoint's own for
    /// a call from this endpoint).
    pub fn peer_endpoint(&self) -> EndpointId {
        match &self.source {
            Source::Remote(conn) => conn.peer_endpoint(),
            Source::Local(endpoint) => endpoint.id,
        }
    }

    /// Where the caller is, as the operating system reports it ([`Origin::Local`] for a call from
    /// this endpoint).
    pub fn origin(&self) -> Origin {
        match &self.source {
            Source::Remote(conn) => conn.origin(),
            Source::Local(_) => Origin::Local,
        }
    }

    /// The connection the call arrived on: the way back to the caller, whoever dialled. `None` for
    /// a call from this endpoint to one of its own objects, which does not use the network.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.source {
            Source::Remote(conn) => Some(conn),
            Source::Local(_) => None,
        }
    }

    /// Whether the call came from this endpoint itself, through a proxy to one of its own objects.
    pub fn is_local(&self) -> bool {
        matches!(self.source, Source::Local(_))
    }

    /// The endpoint serving the call.
    pub(crate) fn endpoint(&self) -> &Arc<EndpointInner> {
        match &self.source {
            Source::Remote(conn) => &conn.inner.endpoint,
            Source::Local(endpoint) => endpoint,
        }
    }

    /// Runs `decode` with this context as the origin of the bytes it decodes; a decoding error
    /// caused by a refused reference says why it was refused.
    pub(crate) fn decoding<T>(&self, decode: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        REFUSED.with(|refused| refused.borrow_mut().take());
        DECODING.set(self, decode).map_err(|error| match (error, REFUSED.with(|r| r.borrow_mut().take())) {
            (Error::Decode(message), Some(reason)) => Error::Decode(format!("{message}: {reason}")),
            (error, _) => error,
        })
    }
}

/// Calls `f` with the context the bytes being decoded came from: the reply's connection while a
/// reply is decoded, else the call being served (whose arguments are being decoded), else `None`.
pub(crate) fn with_decode_context<R>(f: impl FnOnce(Option<&CallContext>) -> R) -> R {
    if DECODING.is_set() {
        DECODING.with(|cx| f(Some(cx)))
    } else if SERVING.is_set() {
        SERVING.with(|cx| f(Some(cx)))
    } else {
        f(None)
    }
}

pin_project_lite::pin_project! {
    /// A served call's future, polled with its [`CallContext`] as the current one.
    pub(crate) struct Serving<F> {
        context: CallContext,
        #[pin]
        future: F,
    }
}

impl<F: Future> Serving<F> {
    pub(crate) fn new(context: CallContext, future: F) -> Self {
        Self { context, future }
    }
}

impl<F: Future> Future for Serving<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        SERVING.set(this.context, || future.poll(cx))
    }
}
