//! The server side: accepting connections and serving the requests that arrive on any connection
//! (getRequest / sendReply).
//!
//! Each request is checked in the reader (object exists, interface and version match, the
//! connection is under its in-flight limit) and then starts right there: a call that completes
//! without waiting (most do) is answered by the reader, with no task of its own; a call that waits
//! goes on in a task of its own, so it does not hold up the others on the connection. (A method
//! that computes for long without awaiting holds up its connection's reader meanwhile, as it would
//! hold up any tokio worker: hand such work to `tokio::task::spawn_blocking`.) The reply frame is
//! built in one buffer: header, then the outcome the skeleton writes.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use rmi_core::codec;
use rmi_core::{CallId, Dispatch, EndpointId, Error, Fault, Flags, Header, Reply, RequestHeader, Semantics};
use tracing::Instrument;

use crate::connection::{ConnInner, Connection, handshake_within};
use crate::context::{CallContext, Serving};
use crate::endpoint::EndpointInner;
use crate::history::Begin;
use crate::transport::Listener;

impl ConnInner {
    /// Starts serving a request that arrived on this connection.
    pub(crate) fn serve(self: &Arc<Self>, request: RequestHeader, body: Bytes, args_at: usize) {
        let oneway = request.flags.contains(Flags::ONEWAY);
        let refuse = |fault: Fault| {
            tracing::debug!(call = %request.call, object = %request.object, ?fault, "refusing call");
            if !oneway {
                self.reply_fault_now(request.call, fault);
            }
        };
        let endpoint = &self.endpoint;
        if endpoint.is_shutting_down() {
            return refuse(Fault::ShuttingDown);
        }
        let Some(skeleton) = endpoint.table.get(&request.object) else {
            return refuse(Fault::NoSuchObject);
        };
        let descriptor = skeleton.descriptor();
        if descriptor.id != request.interface {
            return refuse(Fault::WrongInterface { served: descriptor.id });
        }
        if descriptor.version != request.version {
            return refuse(Fault::WrongVersion { served: descriptor.version });
        }
        if request.timeout_us == Some(0) {
            // The caller has given up already: no work, no reply.
            tracing::debug!(call = %request.call, "request without time left; dropped");
            return;
        }
        let limit = endpoint.config.max_in_flight;
        let admitted = self
            .served_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_ok();
        if !admitted {
            return refuse(Fault::Overloaded { limit: u32::try_from(limit).unwrap_or(u32::MAX) });
        }
        // From here the call holds a slot; the guard releases it however the call ends, even if
        // a cancel aborts the task before it first runs (the task then drops its future unpolled).
        let mut slot = ServedGuard { conn: Arc::clone(self), call: None, history: None };
        let semantics = Semantics::from_flags(request.flags);
        if semantics == Semantics::AtMostOnce {
            let resent = request.flags.contains(Flags::RESENT);
            match endpoint.history.begin(endpoint, self.peer, request.call, request.timeout(), resent, self) {
                Begin::Run => slot.history = Some(self.peer),
                Begin::Running => {
                    tracing::debug!(call = %request.call, "repeated request of a running call");
                    return;
                }
                Begin::Replay(reply) => {
                    tracing::debug!(call = %request.call, "repeated request answered from the reply history");
                    return self.send_now(reply);
                }
                Begin::Lost => {
                    tracing::debug!(call = %request.call, "repeated request of a call whose reply is lost");
                    return self.reply_fault_now(request.call, Fault::ReplyLost);
                }
                Begin::Acked => {
                    tracing::debug!(call = %request.call, "late copy of an acknowledged call; dropped");
                    return;
                }
            }
        }
        // An at-most-once call with a deadline outlives its connection: its reply waits in the
        // history for the caller's repeat over a new connection. Only as long as the history
        // would keep the reply: a longer call is aborted with its connection.
        let outlives_connection = slot.history.is_some()
            && request.timeout().is_some_and(|t| t <= endpoint.config.reply_history_age);
        if self.served.insert(request.call.0, Served { abort: None, outlives_connection }).is_err() {
            // Closed meanwhile, or the peer reused a call id that is still running.
            if !self.is_closed() {
                tracing::warn!(call = %request.call, "peer reused the id of a call in flight; request dropped");
            }
            if let Some(peer) = slot.history.take() {
                endpoint.history.forget(peer, request.call);
            }
            return;
        }
        slot.call = Some(request.call);
        // No span unless a subscriber wants it (see `Proxy::span`).
        let span = if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!(
                "rmi.serve",
                interface = descriptor.name,
                method = descriptor.method(request.op).map_or("?", |m| m.name),
                object = %request.object,
                call = request.call.0,
            )
        } else {
            tracing::Span::none()
        };
        let call = request.call.0;
        // The call runs here, in the reader, as far as it can without waiting: most calls end
        // there, with no task of their own (no spawn, no hand-off). One that waits goes on in a
        // task of its own, polled at once (so nothing it waits for is missed: the no-op waker of
        // this first poll is replaced).
        let mut serving = Box::pin(serve_call(slot, skeleton, request, body, args_at).instrument(span));
        if serving.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready() {
            return;
        }
        let task = endpoint.served.spawn(serving);
        // The task's own abort handle (no allocation), filled in after the spawn. Only this reader
        // inserts entries and handles cancels, so none comes in between; if the entry is gone, the
        // call has ended already, or the connection closed in between and this call escaped the
        // close's aborts.
        let entry = Served { abort: Some(task.abort_handle()), outlives_connection };
        if !self.served.replace(call, entry) && self.is_closed() && !outlives_connection {
            task.abort();
        }
    }
}

/// A call being served, in its connection's table: how to abort it (on cancel, or when the
/// connection closes), once its task is spawned.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) abort: Option<tokio::task::AbortHandle>,
    /// Whether it runs on when the connection closes (at-most-once calls with a deadline).
    pub(crate) outlives_connection: bool,
}

/// A served call's slot: its entry in the connection's table of served calls and its place in the
/// in-flight count, and for an at-most-once call its entry in the reply history. Dropping it
/// releases them, so it lives in the call's future from the start: a task aborted before its first
/// poll still drops it.
struct ServedGuard {
    conn: Arc<ConnInner>,
    /// The entry in `served`, once it is made.
    call: Option<CallId>,
    /// The caller, if the call is entered in the reply history.
    history: Option<EndpointId>,
}

impl Drop for ServedGuard {
    fn drop(&mut self) {
        if let Some(call) = self.call {
            self.conn.served.remove(call.0);
            if let Some(peer) = self.history {
                // Ended without a reply: deadline passed, cancelled, or aborted at shutdown.
                self.conn.endpoint.history.abandon(peer, call);
            }
        }
        self.conn.served_count.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_call(
    mut slot: ServedGuard,
    skeleton: Arc<dyn Dispatch>,
    request: RequestHeader,
    mut body: Bytes,
    args_at: usize,
) {
    let conn = &slot.conn;
    let max_frame_len = conn.endpoint.config.max_frame_len;
    let mut buf = crate::frame::buffer();
    let start = codec::begin_frame(&mut buf, &Header::Reply(request.call));
    let header_end = buf.len();

    // The caller's patience bounds the whole call, queuing the reply included: a peer that does
    // not read its replies cannot keep the call's slot and its reply buffer beyond it. It runs
    // from when the call first has to wait: a call that completes at once reads no clock.
    let mut deadline = None;
    let outcome = {
        // The arguments are handed to the skeleton, which drops them once decoded.
        body.advance(args_at);
        let reply = Reply::new(&mut buf);
        let context = CallContext::remote(Connection { inner: Arc::clone(conn) });
        let run = AssertUnwindSafe(Serving::new(context, skeleton.dispatch(request.op, body, reply)))
            .catch_unwind();
        let mut run = std::pin::pin!(run);
        match std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => match request.timeout() {
                Some(timeout) => {
                    let at = crate::deadline_after(timeout);
                    deadline = Some(at);
                    match tokio::time::timeout_at(at, run).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::debug!("the caller's deadline passed; call abandoned");
                            return;
                        }
                    }
                }
                None => run.await,
            },
        }
    };
    if let Err(panic) = outcome {
        let message = panic_message(&*panic);
        tracing::warn!(panic = %message, "servant panicked");
        buf.truncate(header_end);
        Reply::new(&mut buf).fault(Fault::ServantPanicked(message));
    }
    if request.flags.contains(Flags::ONEWAY) {
        return;
    }
    if let Err(Error::FrameTooLarge { size, limit }) = codec::finish_frame(&mut buf, start, max_frame_len) {
        tracing::warn!(size, limit, "reply too large");
        buf.truncate(header_end);
        Reply::new(&mut buf).fault(Fault::ReplyTooLarge { size, limit });
        if codec::finish_frame(&mut buf, start, max_frame_len).is_err() {
            return;
        }
    }
    let frame = buf.freeze();
    // An at-most-once reply goes into the history first, and also to the connection of the
    // latest repeat of the request, if one came on another connection while the call ran.
    // (Once completed, the guard's `abandon` finds the entry done and leaves it.)
    // Completed, the entry needs no `abandon` from the guard.
    let redirect =
        slot.history.take().and_then(|peer| conn.endpoint.history.complete(peer, request.call, &frame));
    if let Some(other) = redirect
        && !other.is_closed()
        && !Arc::ptr_eq(&other.inner, conn)
    {
        other.inner.send_now(frame.clone());
    }
    if conn.is_closed() {
        return;
    }
    let Err(frame) = conn.try_send(frame) else { return };
    let deadline = deadline.or_else(|| request.timeout().map(crate::deadline_after));
    // Boxed: a full write queue is rare, and this future would make every call's larger.
    Box::pin(queue_within(conn, frame, deadline)).await;
}

/// Queues a reply, waiting for room in the write queue until `deadline`, if any.
async fn queue_within(conn: &ConnInner, frame: Bytes, deadline: Option<tokio::time::Instant>) {
    let send = conn.send(frame);
    match deadline {
        Some(deadline) => {
            if tokio::time::timeout_at(deadline, send).await.is_err() {
                tracing::debug!(
                    "the caller's deadline passed while the reply waited to be queued; reply dropped"
                );
            }
        }
        None => {
            let _ = send.await;
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Accepts connections until the endpoint stops, handing each to its own handshake task.
pub(crate) async fn accept_loop(endpoint: Arc<EndpointInner>, mut listener: Box<dyn Listener>) {
    let address = listener.local_address().clone();
    tracing::debug!(%address, "listening");
    let stop = endpoint.stop.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%address, error = %e, "accept failed");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(std::time::Duration::from_millis(50)) => continue,
                }
            }
        };
        match Arc::clone(&endpoint.accept_permits).try_acquire_owned() {
            Ok(permit) => {
                let endpoint2 = Arc::clone(&endpoint);
                endpoint.io.spawn(async move {
                    let mut io = io;
                    let timeout = endpoint2.config.handshake_timeout;
                    let deadline = crate::deadline_after(timeout);
                    match handshake_within(&mut io, endpoint2.id, deadline, timeout).await {
                        Ok(hello) => {
                            Connection::start(&endpoint2, io, hello.endpoint, None, Some(permit));
                        }
                        Err(reason) => {
                            tracing::warn!(peer = %io.peer, %reason, "handshake failed; closing connection");
                        }
                    }
                });
            }
            Err(_) => {
                tracing::warn!(
                    peer = %io.peer,
                    limit = endpoint.config.max_connections,
                    "too many connections; closing the new one",
                );
            }
        }
    }
    tracing::debug!(%address, "stopped listening");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::time::Duration;

    use rmi_core::{BoxFuture, EndpointId, InterfaceDescriptor, InterfaceId, MethodDescriptor, OpId};
    use tokio::io::AsyncWriteExt;

    use crate::{Config, Endpoint, transport};

    const BIG: OpId = OpId::from_name("big");
    static BIGGER: InterfaceDescriptor = InterfaceDescriptor {
        name: "Bigger",
        id: InterfaceId::from_name("Bigger"),
        version: 1,
        methods: &[MethodDescriptor::new("big", BIG)],
    };

    /// Answers every call with a 1 MiB string.
    struct Bigger;

    impl Dispatch for Bigger {
        fn descriptor(&self) -> &'static InterfaceDescriptor {
            &BIGGER
        }

        fn dispatch<'a>(&'a self, _: OpId, _: Bytes, reply: Reply<'a>) -> BoxFuture<'a, ()> {
            Box::pin(async move { reply.ok("x".repeat(1 << 20).as_str()) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_the_peer_does_not_read_gives_up_its_slot_at_the_callers_deadline() {
        let server = Endpoint::with_config(Config::default().write_queue(1));
        let address = server.listen("memory://server-unit-unread-replies").await.unwrap();
        let object = server.export(Bigger).object;
        let mut io = transport::connect(&address).await.unwrap();
        crate::connection::handshake(&mut io, EndpointId::random()).await.unwrap();
        let mut frames = BytesMut::new();
        for call in 1..=4 {
            let header = Header::Request(RequestHeader {
                call: CallId(call),
                object,
                interface: BIGGER.id,
                version: 1,
                op: BIG,
                flags: Flags::default(),
                timeout_us: Some(100_000),
            });
            let start = codec::begin_frame(&mut frames, &header);
            codec::finish_frame(&mut frames, start, 1 << 20).unwrap();
        }
        // The peer never reads: one reply fills the pipe, one the write queue, two wait to be queued.
        io.writer.write_all(&frames).await.unwrap();
        // Virtual time: it moves on only once every task waits, so the 100 ms deadlines have fired
        // and their calls have run to the end before this sleep is over.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let conn = server.connections().pop().expect("the server side of the connection");
        assert_eq!(conn.inner.served_count.load(Ordering::Acquire), 0, "calls still hold their slots");
        drop(io);
    }

    /// Tells whether the arguments it is handed are the only reference to their bytes.
    struct Holder(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<(usize, bool)>>>);

    impl Dispatch for Holder {
        fn descriptor(&self) -> &'static InterfaceDescriptor {
            &BIGGER
        }

        fn dispatch<'a>(&'a self, _: OpId, args: Bytes, reply: Reply<'a>) -> BoxFuture<'a, ()> {
            if let Some(tell) = self.0.lock().unwrap().take() {
                let _ = tell.send((args.len(), args.is_unique()));
            }
            Box::pin(async move { reply.ok(&()) })
        }
    }

    #[tokio::test]
    async fn a_large_requests_bytes_belong_to_the_skeleton_alone() {
        let server = Endpoint::new();
        let address = server.listen("memory://server-unit-large-request").await.unwrap();
        let (tell, told) = tokio::sync::oneshot::channel();
        let object = server.export(Holder(std::sync::Mutex::new(Some(tell)))).object;
        let mut io = transport::connect(&address).await.unwrap();
        crate::connection::handshake(&mut io, EndpointId::random()).await.unwrap();
        let header = Header::Request(RequestHeader {
            call: CallId(1),
            object,
            interface: BIGGER.id,
            version: 1,
            op: BIG,
            flags: Flags::default(),
            timeout_us: None,
        });
        let mut frame = BytesMut::new();
        let start = codec::begin_frame(&mut frame, &header);
        frame.extend_from_slice(&vec![5u8; 1 << 20]);
        codec::finish_frame(&mut frame, start, 2 << 20).unwrap();
        // A small frame right behind it arrives in the same reads.
        let start = codec::begin_frame(&mut frame, &Header::Ack);
        codec::finish_frame(&mut frame, start, 2 << 20).unwrap();
        io.writer.write_all(&frame).await.unwrap();
        // Dropping them when decoded frees the request's memory before the method runs.
        let (len, unique) = told.await.unwrap();
        assert_eq!(len, 1 << 20);
        assert!(unique, "the arguments share their allocation");
        drop(io);
    }

    #[test]
    fn panic_messages_are_recovered() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
        let p = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(&*p), "panic with a non-string payload");
    }
}
