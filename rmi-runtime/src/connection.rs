//! The communication module: one multiplexed connection per peer pair.
//!
//! A connection has one reader task and one writer task, whoever dialled it. The reader matches
//! replies to waiting calls by call id, hands requests to the server side (`server.rs`) and aborts
//! served calls on cancel. The writer drains a bounded queue of ready-made frames into a buffered
//! writer and flushes only when the queue is empty, so frames queued together leave in one write.
//!
//! Callers do not spawn tasks: a call encodes its frame, registers a oneshot under its call id,
//! sends the frame and awaits the oneshot (see [`ConnInner::round_trip`]). When the call is the
//! only one under way on the connection and the writer has nothing to write, the caller writes its
//! frame straight to the stream instead of handing it to the writer (see
//! [`ConnInner::write_now`]); so does a served call's reply. Under load, frames go through the
//! queue, so they leave together.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use std::{io, pin::Pin};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::task::AtomicWaker;
use rmi_core::codec;
use rmi_core::{Address, CallId, EndpointId, Error, Fault, Header, Hello, Reply};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::calls::CallMap;
use crate::endpoint::EndpointInner;
use crate::frame::{FrameDecoder, FrameError};
use crate::server::Served;
use crate::slots::Slots;
use crate::transport::{BoxRead, BoxWrite, Io, Origin};

/// Size of a connection's write buffer: frames queued together are written with one system call
/// up to this size.
const WRITE_BUFFER: usize = 64 * 1024;
/// Initial size of a connection's read buffer.
const READ_BUFFER: usize = 16 * 1024;
/// Frames taken off the write queue at once.
const WRITE_BATCH: usize = 64;
/// Replies of at least this many bytes are acknowledged at once rather than with the next batch.
pub(crate) const ACK_AT_ONCE: usize = 64 * 1024;

/// What a waiting call receives: the reply's payload (an encoded `Outcome`), or why none will come.
pub(crate) type ReplySlot = oneshot::Sender<Result<Bytes, Error>>;

/// A call this side issued and waits on: where its reply goes, and until when it waits.
pub(crate) struct Pending {
    slot: ReplySlot,
    deadline: Instant,
    /// The caller's timeout, for the error it gets when the deadline passes.
    timeout: Duration,
}

/// No deadline watched (in [`ConnInner::watched`]).
const NO_DEADLINE: u64 = u64::MAX;

/// The reader looks at the deadline timer when it waits for frames, and at least this often while
/// frames keep coming.
const DEADLINE_CHECK_FRAMES: u32 = 32;

/// A multiplexed connection to another endpoint.
///
/// Both ends may call objects exported by the other over the same connection, whichever of them
/// dialled it. Cloning is cheap: clones share the connection.
///
/// Get one from [`Endpoint::connect`](crate::Endpoint::connect) (dialling, pooled per address) or
/// [`Endpoint::connection_to`](crate::Endpoint::connection_to) (any open connection to a peer,
/// including ones the peer opened).
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
}

pub(crate) struct ConnInner {
    pub(crate) endpoint: Arc<EndpointInner>,
    /// Key in the endpoint's registry of open connections.
    pub(crate) id: u64,
    pub(crate) peer: EndpointId,
    label: String,
    origin: Origin,
    /// The address this endpoint dialled, its key in the connection pool; `None` if accepted.
    pub(crate) dialled: Option<Address>,
    /// Frames for the writer task.
    tx: mpsc::Sender<Bytes>,
    /// The stream's write half, shared by the writer task and the calls that write their frame
    /// straight to it ([`ConnInner::write_now`]); `None` once the writer has ended.
    output: Mutex<Option<Output>>,
    /// Whether bytes wait in the output's buffer, or ack frames in [`Output::acks`], that a
    /// straight write left for the writer to write.
    unflushed: AtomicBool,
    /// Whether the reader holds more of the peer's bytes than the frame it is handling (more
    /// frames, or part of one): then more frames of this side are likely to follow the reply to
    /// this one, and a reply is queued to leave with them rather than written on its own.
    more_to_read: AtomicBool,
    /// Calls this side issued and waits on.
    pending: CallMap<Pending>,
    /// The earliest deadline of those calls the reader's deadline timer must fire at, in
    /// nanoseconds since `epoch` ([`NO_DEADLINE`]: none): at most that deadline, so a call whose
    /// deadline is not earlier (the usual case: calls with one timeout, issued in order) costs one
    /// atomic load, and no timer of its own.
    watched: AtomicU64,
    /// When the connection started: the origin of `watched`.
    epoch: Instant,
    /// Slots for calls this side issues (`max_in_flight`).
    outgoing: Slots,
    /// Calls this side serves, for cancel.
    /// Each entry is made before the call's task is spawned and filled in with its abort handle
    /// right after; the task removes it as it ends.
    pub(crate) served: CallMap<Served>,
    pub(crate) served_count: AtomicUsize,
    /// Replies the reader could not queue at once and a task is still sending.
    overflow: AtomicUsize,
    closed: CancellationToken,
    reason: OnceLock<String>,
    /// Wakes the reader task when the connection closes. (Cheaper to poll on every frame than a
    /// cancellation future, which takes two locks per poll.)
    reader_wake: AtomicWaker,
    /// Wakes the writer task when the connection closes or acknowledgements start to wait.
    writer_wake: AtomicWaker,
    /// Held while the connection is open, if a listener accepted it (`max_connections`).
    accept_permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// The reader and writer tasks, to abort them if they outlive a shutdown's grace.
    tasks: OnceLock<[tokio::task::AbortHandle; 2]>,
    /// Replies of at-most-once calls received and not yet acknowledged to the peer.
    acks: Acks,
}

/// A connection's write half and what is being written to it.
struct Output {
    stream: BufWriter<BoxWrite>,
    /// Ack frames taken from [`Acks`] and not yet handed to `stream`.
    acks: BytesMut,
    /// Whether the writer is in the middle of a batch, from its first write to the end of its
    /// flush. Its buffer may be empty meanwhile (a frame larger than the buffer is written past
    /// it, in as many writes as the stream needs), so this, not the buffer, tells a straight
    /// write that it would land inside the writer's frames.
    writing: bool,
}

/// The acknowledgements a connection owes its peer: the writer sends them with the next frames it
/// writes, or on its own once they have waited `ack_delay`.
#[derive(Default)]
struct Acks {
    calls: Mutex<Vec<CallId>>,
    /// The list the writer drains (only the writer locks it).
    spare: Mutex<Vec<CallId>>,
    /// Whether `calls` may be non-empty (read without the lock by the writer).
    waiting: AtomicBool,
    /// Whether the writer's timer runs (or is to be armed) for them; while it does, new acks do
    /// not wake the writer.
    timed: AtomicBool,
}

impl Connection {
    /// Starts the reader and writer tasks of a connection whose handshake succeeded, and registers
    /// it with its endpoint.
    pub(crate) fn start(
        endpoint: &Arc<EndpointInner>,
        io: Io,
        peer: EndpointId,
        dialled: Option<Address>,
        accept_permit: Option<OwnedSemaphorePermit>,
    ) -> Connection {
        let config = &endpoint.config;
        let (tx, rx) = mpsc::channel(config.write_queue);
        let inner = Arc::new(ConnInner {
            endpoint: Arc::clone(endpoint),
            id: endpoint.next_connection_id(),
            peer,
            label: io.peer,
            origin: io.origin,
            dialled,
            tx,
            output: Mutex::new(Some(Output {
                stream: BufWriter::with_capacity(WRITE_BUFFER, io.writer),
                acks: BytesMut::new(),
                writing: false,
            })),
            unflushed: AtomicBool::new(false),
            more_to_read: AtomicBool::new(false),
            pending: CallMap::new(),
            watched: AtomicU64::new(NO_DEADLINE),
            epoch: Instant::now(),
            outgoing: Slots::new(config.max_in_flight),
            served: CallMap::new(),
            served_count: AtomicUsize::new(0),
            overflow: AtomicUsize::new(0),
            closed: CancellationToken::new(),
            reason: OnceLock::new(),
            reader_wake: AtomicWaker::new(),
            writer_wake: AtomicWaker::new(),
            accept_permit: Mutex::new(accept_permit),
            tasks: OnceLock::new(),
            acks: Acks::default(),
        });
        let reader = endpoint.io.spawn(read_loop(Arc::clone(&inner), io.reader));
        let writer = endpoint.io.spawn(write_loop(Arc::clone(&inner), rx));
        let _ = inner.tasks.set([reader.abort_handle(), writer.abort_handle()]);
        let conn = Connection { inner };
        if !endpoint.register(&conn) {
            conn.inner.close("endpoint is shutting down");
        }
        tracing::debug!(peer = %conn.inner.label, endpoint = %peer, dialled = conn.dialled(), "connection open");
        conn
    }

    /// The identity of the endpoint at the other end.
    pub fn peer_endpoint(&self) -> EndpointId {
        self.inner.peer
    }

    /// The other end's address as the transport reports it, for logs (for example
    /// `tcp://127.0.0.1:53122`).
    pub fn peer(&self) -> &str {
        &self.inner.label
    }

    /// Where the other end is, as the transport reports it: an IP address, this host, or unknown.
    /// Unlike [`Connection::peer_endpoint`], which the peer claims in the handshake, this comes
    /// from the operating system.
    pub fn origin(&self) -> Origin {
        self.inner.origin
    }

    /// Whether this endpoint dialled the connection (as opposed to accepting it). Either side may
    /// call the other's objects over it.
    pub fn dialled(&self) -> bool {
        self.inner.dialled.is_some()
    }

    /// Whether the connection is closed. Calls on a closed connection fail at once with
    /// [`Error::ConnectionClosed`].
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    /// Resolves when the connection is closed.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    /// Closes the connection now: calls waiting on it fail with [`Error::ConnectionClosed`], calls
    /// it serves are aborted, frames already queued are still written.
    pub fn close(&self) {
        self.inner.close("closed by this endpoint");
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.inner.label)
            .field("peer_endpoint", &self.inner.peer)
            .field("dialled", &self.dialled())
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}

impl ConnInner {
    pub(crate) fn is_closed(&self) -> bool {
        // The reason is set first thing on close: one atomic load (the token's check takes a lock).
        self.reason.get().is_some()
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::ConnectionClosed(self.reason.get().cloned().unwrap_or_else(|| "connection closed".into()))
    }

    /// Closes the connection for `reason`; the first reason wins.
    pub(crate) fn close(&self, reason: impl Into<String>) {
        // Only the caller that sets the reason goes on (and for it, `get` is `Some`).
        if self.reason.set(reason.into()).is_err() {
            return;
        }
        let Some(reason) = self.reason.get() else { return };
        self.closed.cancel();
        self.reader_wake.wake();
        self.writer_wake.wake();
        self.outgoing.close();
        for pending in self.pending.close() {
            let _ = pending.slot.send(Err(Error::ConnectionClosed(reason.clone())));
        }
        // At-most-once calls run on: their replies wait in the history for the caller's repeat.
        for call in self.served.close() {
            if let (Some(abort), false) = (call.abort, call.outlives_connection) {
                abort.abort();
            }
        }
        self.accept_permit.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.endpoint.unregister(self.id);
        if let Some(address) = &self.dialled {
            self.endpoint.unpool(address, self.id);
        }
        tracing::debug!(peer = %self.label, %reason, "connection closed");
    }

    /// The reader and writer tasks, to abort if they outlive a shutdown's grace.
    pub(crate) fn task_handles(&self) -> impl Iterator<Item = tokio::task::AbortHandle> + '_ {
        self.tasks.get().into_iter().flatten().cloned()
    }

    /// Queues a frame from a task that must not wait (the reader): if the queue is full, a task
    /// finishes the send, so the reader keeps reading and two peers flooding each other cannot
    /// deadlock. At most `max_in_flight` such sends wait at once; beyond that the peer is not
    /// reading its replies and further ones are dropped.
    pub(crate) fn send_now(self: &Arc<Self>, frame: Bytes) {
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                let limit = self.endpoint.config.max_in_flight;
                let admitted = self
                    .overflow
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
                    .is_ok();
                if !admitted {
                    tracing::debug!(peer = %self.label, "write queue full; reply dropped");
                    return;
                }
                let conn = Arc::clone(self);
                self.endpoint.io.spawn(async move {
                    let _ = conn.tx.send(frame).await;
                    conn.overflow.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Whether calls other than the one a frame just came from are under way on this connection
    /// (issued or served): then more frames are likely to be queued in a moment.
    fn is_busy(&self) -> bool {
        let issued = self.outgoing.used();
        issued + self.served_count.load(Ordering::Relaxed) > 1
    }

    /// Queues a frame if the writer's queue has room, without waiting.
    pub(crate) fn queue(&self, frame: Bytes) -> Result<(), Error> {
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::WriteQueueFull {
                limit: u32::try_from(self.endpoint.config.write_queue).unwrap_or(u32::MAX),
            },
            mpsc::error::TrySendError::Closed(_) => self.closed_error(),
        })
    }

    /// Sends a frame without waiting: writes it straight to the stream when the connection is idle
    /// ([`ConnInner::write_now`]), or queues it if the writer's queue has room. Gives it back if
    /// the queue is full or closed.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), Bytes> {
        if self.write_now(&frame) {
            return Ok(());
        }
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(frame) | mpsc::error::TrySendError::Closed(frame) => frame,
        })
    }

    /// Writes a frame straight to the stream, from the task that made it, if the frame is the
    /// only one to write: no other call is under way on the connection and the reader has no
    /// further frames in hand (so no other frame is about to join it in a batch), the writer's
    /// queue is empty, it is not in the middle of a batch, and no one else holds the stream. That
    /// saves the hand-off to the writer task, twice per round trip when calls go one at a time.
    /// Returns whether the frame was taken.
    ///
    /// Acknowledgements owed go along in the same write. What the stream does not take at once
    /// stays in the buffer for the writer, which is woken to write it.
    ///
    /// Only a call's first frame (a request, or a served call's reply) comes this way. On a
    /// multi-threaded runtime it may overtake frames the writer has just taken off its queue and
    /// not yet buffered, none of which concerns the same call. The acks it takes along may
    /// overtake a resend of their call that way; the peer then drops the resend as a late copy of
    /// an acknowledged call, which it is: this side has the reply.
    fn write_now(&self, frame: &[u8]) -> bool {
        if frame.len() >= WRITE_BUFFER
            || self.is_busy()
            || self.more_to_read.load(Ordering::Relaxed)
            || self.tx.capacity() < self.tx.max_capacity()
            || self.unflushed.load(Ordering::Acquire)
        {
            return false;
        }
        let Ok(mut output) = self.output.try_lock() else { return false };
        let Some(out) = output.as_mut() else { return false };
        if out.writing || !out.stream.buffer().is_empty() || self.is_closed() {
            return false;
        }
        self.take_acks(&mut out.acks);
        let mut cx = Context::from_waker(Waker::noop());
        let mut stream = Pin::new(&mut out.stream);
        // The empty buffer takes the acks and the frame without writing (acks that would not fit
        // stay in `out.acks` for the writer); then one write. The acks go first, so the peer's
        // reader has no more bytes in hand once it meets the frame (see `more_to_read`).
        if out.acks.len() + frame.len() <= WRITE_BUFFER
            && let Poll::Ready(Ok(n)) = stream.as_mut().poll_write(&mut cx, &out.acks)
        {
            out.acks.advance(n);
        }
        let copied = stream.as_mut().poll_write(&mut cx, frame);
        debug_assert!(
            matches!(copied, Poll::Ready(Ok(n)) if n == frame.len()),
            "a frame shorter than the buffer"
        );
        // A stream that is not ready keeps the rest in the buffer; the writer reports any error.
        let flushed = matches!(stream.poll_flush(&mut cx), Poll::Ready(Ok(()))) && out.acks.is_empty();
        if !flushed {
            // Left for the writer, which writes it with its own waker.
            self.unflushed.store(true, Ordering::Release);
        }
        drop(output);
        if !flushed {
            self.writer_wake.wake();
        }
        true
    }

    /// Polls `f` with the stream's write half locked (once per poll: the lock is not held while
    /// waiting), until it is ready.
    fn with_output<'a, T>(
        &'a self,
        mut f: impl FnMut(&mut Output, &mut Context<'_>) -> Poll<io::Result<T>> + 'a,
    ) -> impl Future<Output = io::Result<T>> + 'a {
        std::future::poll_fn(move |cx| {
            let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
            match output.as_mut() {
                Some(out) => f(out, cx),
                None => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the writer has ended"))),
            }
        })
    }

    /// Hands the frames of `batch` to the stream's buffer (writing when it fills), and empties it.
    async fn write_frames(&self, batch: &mut Vec<Bytes>) -> io::Result<()> {
        let (mut next, mut at) = (0, 0);
        let frames = &*batch;
        self.with_output(|out, cx| {
            out.writing = true;
            while let Some(frame) = frames.get(next) {
                while at < frame.len() {
                    match ready!(Pin::new(&mut out.stream).poll_write(cx, &frame[at..])) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) => at += n,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                (next, at) = (next + 1, 0);
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        batch.clear();
        Ok(())
    }

    /// Writes the acknowledgements owed and everything buffered.
    async fn flush(&self) -> io::Result<()> {
        let mut acks_taken = false;
        self.with_output(|out, cx| {
            if !acks_taken {
                out.writing = true;
                // Anything a straight write left is written here.
                self.unflushed.store(false, Ordering::Release);
                self.take_acks(&mut out.acks);
                acks_taken = true;
            }
            while !out.acks.is_empty() {
                match ready!(Pin::new(&mut out.stream).poll_write(cx, &out.acks)) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => out.acks.advance(n),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let flushed = ready!(Pin::new(&mut out.stream).poll_flush(cx));
            out.writing = false;
            Poll::Ready(flushed)
        })
        .await
    }

    /// Queues a frame, waiting while the writer's queue is full.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), Error> {
        self.tx.send(frame).await.map_err(|_| self.closed_error())
    }

    /// Queues a reply to `call` carrying `fault`, from the reader.
    pub(crate) fn reply_fault_now(self: &Arc<Self>, call: CallId, fault: Fault) {
        let mut buf = BytesMut::with_capacity(64);
        let start = codec::begin_frame(&mut buf, &Header::Reply(call));
        Reply::new(&mut buf).fault(fault);
        if codec::finish_frame(&mut buf, start, self.endpoint.config.max_frame_len).is_ok() {
            self.send_now(buf.freeze());
        }
    }

    /// Tells the peer, best effort, that this side gave up on `call`.
    fn send_cancel(&self, call: CallId) {
        let mut buf = BytesMut::with_capacity(16);
        let start = codec::begin_frame(&mut buf, &Header::Cancel(call));
        if codec::finish_frame(&mut buf, start, self.endpoint.config.max_frame_len).is_ok() {
            // Best effort: if the queue is full the peer finishes the call for nothing.
            let _ = self.tx.try_send(buf.freeze());
        }
    }

    /// Owes the peer an acknowledgement of the reply to at-most-once call `call` (the RRA
    /// exchange): it leaves with the next frames written, or within `ack_delay`.
    ///
    /// The ack of a large reply (`reply_len` of [`ACK_AT_ONCE`] bytes or more) is queued at once
    /// instead, so the peer can free the reply before this side's next request arrives. It still
    /// follows any resend of the call already queued: the queue keeps its order.
    pub(crate) fn ack(&self, call: CallId, reply_len: usize) {
        if reply_len >= ACK_AT_ONCE {
            let max_frame_len = self.endpoint.config.max_frame_len;
            let (frame, _) =
                crate::frame::build(|buf| codec::ack_frame(buf, &mut std::iter::once(call), max_frame_len));
            if self.queue(frame).is_ok() {
                return;
            }
        }
        self.acks.calls.lock().unwrap_or_else(PoisonError::into_inner).push(call);
        self.acks.waiting.store(true, Ordering::SeqCst);
        if !self.acks.timed.swap(true, Ordering::SeqCst) {
            self.writer_wake.wake();
        }
    }

    /// Appends Ack frames for the acknowledgements owed, if any.
    fn take_acks(&self, out: &mut BytesMut) {
        if !self.acks.waiting.swap(false, Ordering::SeqCst) {
            return;
        }
        // The list is swapped with the writer's spare one, so neither is reallocated per batch.
        let mut spare = self.acks.spare.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *spare, &mut *self.acks.calls.lock().unwrap_or_else(PoisonError::into_inner));
        let mut calls = spare.drain(..);
        while codec::ack_frame(out, &mut calls, self.endpoint.config.max_frame_len) > 0 {}
    }

    /// The client half of a call (doOperation): waits for an in-flight slot, registers the call,
    /// queues its request frame and waits for the reply's payload, all before `deadline`.
    ///
    /// A request that had to wait for its slot is rebuilt by `again(Again::Stale)`, so the
    /// time its caller still waits is told right. With `resend` set, the request is queued again
    /// (with the frame `again(Again::NoReply)` makes) each time that long passes without a reply,
    /// until `again` gives no frame.
    ///
    /// # Cancel safety
    /// Dropping the future forgets the call and sends the peer a cancel for it.
    pub(crate) async fn round_trip(
        &self,
        call: CallId,
        mut frame: Bytes,
        deadline: Instant,
        timeout: Duration,
        resend: Option<Duration>,
        mut again: impl FnMut(Again) -> Option<Bytes>,
    ) -> Result<Bytes, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        // The usual path awaits only the reply, and arms no timer: the reader's deadline timer
        // ends the wait with `Timeout` (see `watch`). Waiting for a slot, for room in the write
        // queue or to resend are boxed and bounded by timers of their own, so the call's future
        // (moved a few times per call) stays small.
        let timed_out = |_| Error::Timeout(timeout);
        let _slot = match self.outgoing.try_take() {
            Some(slot) => slot,
            None => {
                let acquire = tokio::time::timeout_at(deadline, self.outgoing.take());
                let slot = Box::pin(acquire).await.map_err(timed_out)?.map_err(|_| self.closed_error())?;
                frame = again(Again::Stale).ok_or(Error::Timeout(timeout))?;
                slot
            }
        };
        let (slot, mut reply) = oneshot::channel();
        if self.pending.insert(call.0, Pending { slot, deadline, timeout }).is_err() {
            return Err(self.closed_error());
        }
        let mut guard = PendingGuard { conn: self, call, armed: true };
        self.watch(deadline);
        if let Err(frame) = self.try_send(frame) {
            Box::pin(tokio::time::timeout_at(deadline, self.send(frame))).await.map_err(timed_out)??;
        }
        let result = match resend {
            None => (&mut reply).await,
            Some(after) => {
                let resending = self.resending(call, after, &mut reply, &mut again);
                Box::pin(tokio::time::timeout_at(deadline, resending)).await.map_err(timed_out)??
            }
        };
        guard.armed = false;
        result.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// Makes sure the reader's deadline timer fires by `deadline`, the deadline of a call just
    /// entered in `pending`.
    fn watch(&self, deadline: Instant) {
        let at = self.ticks(deadline);
        // Usually not earlier than what is watched: one load. Otherwise the reader re-arms.
        if at < self.watched.load(Ordering::Acquire) && at < self.watched.fetch_min(at, Ordering::AcqRel) {
            self.reader_wake.wake();
        }
    }

    /// `at` in nanoseconds since the connection started (before it: 0).
    fn ticks(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NO_DEADLINE - 1)
    }

    /// Ends the calls whose deadline has passed with `Timeout` (telling the peer), and sets
    /// `watched` to the earliest deadline left.
    fn expire_calls(&self) {
        // Cleared first: a call entered meanwhile lowers it again, so no deadline is missed.
        self.watched.store(NO_DEADLINE, Ordering::SeqCst);
        let now = Instant::now();
        let mut earliest = NO_DEADLINE;
        let expired = self.pending.sweep(
            |pending| pending.deadline <= now,
            |pending| earliest = earliest.min(self.ticks(pending.deadline)),
        );
        self.watched.fetch_min(earliest, Ordering::SeqCst);
        for (call, pending) in expired {
            let _ = pending.slot.send(Err(Error::Timeout(pending.timeout)));
            self.send_cancel(CallId(call));
        }
    }

    /// Waits for `reply`, queuing the request again (the frame `again(Again::NoReply)` makes) each
    /// time `after` passes without one, until `again` gives no frame.
    async fn resending(
        &self,
        call: CallId,
        after: Duration,
        reply: &mut oneshot::Receiver<Result<Bytes, Error>>,
        again: &mut impl FnMut(Again) -> Option<Bytes>,
    ) -> Result<Result<Result<Bytes, Error>, oneshot::error::RecvError>, Error> {
        loop {
            match tokio::time::timeout(after, &mut *reply).await {
                Ok(result) => return Ok(result),
                Err(_) => match again(Again::NoReply) {
                    Some(frame) => {
                        tracing::debug!(%call, "no reply yet; request sent again");
                        self.send(frame).await?;
                    }
                    None => return Ok(reply.await),
                },
            }
        }
    }

    /// Handles one frame from the peer; an error is a protocol violation that closes the connection.
    fn on_frame(self: &Arc<Self>, body: Bytes) -> Result<(), String> {
        let (header, payload) = codec::split_frame(&body).map_err(|e| e.to_string())?;
        let offset = body.len() - payload.len();
        match header {
            Header::Reply(call) => match self.pending.remove(call.0) {
                Some(pending) => {
                    let _ = pending.slot.send(Ok(body.slice(offset..)));
                }
                None => tracing::trace!(%call, "reply to a call no longer waited for"),
            },
            Header::Request(request) => self.serve(request, body, offset),
            Header::Cancel(call) => {
                // The entry stays until the call's task ends and removes it, so the id counts as
                // in use until then and no other call's entry can be removed in its name.
                if let Some(served) = self.served.get(call.0).and_then(|s| s.abort) {
                    tracing::debug!(%call, "peer cancelled the call");
                    served.abort();
                }
            }
            Header::Ack => {
                let history = &self.endpoint.history;
                for call in codec::ack_ids(payload) {
                    history.ack(self.peer, call.map_err(|e| e.to_string())?);
                }
            }
            other => return Err(format!("unsupported frame {other:?}")),
        }
        Ok(())
    }
}

/// Why [`ConnInner::round_trip`] wants a request frame again.
pub(crate) enum Again {
    /// The request waited for an in-flight slot: the same request, telling the time left.
    Stale,
    /// No reply came within `resend_after`: a resend, if the retry policy allows one.
    NoReply,
}

/// Forgets a call that is dropped or timed out before its reply came, and tells the peer.
struct PendingGuard<'a> {
    conn: &'a ConnInner,
    call: CallId,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed && self.conn.pending.remove(self.call.0).is_some() {
            self.conn.send_cancel(self.call);
        }
    }
}

/// Exchanges handshake preambles on a fresh stream: both sides write theirs at once, then read the
/// peer's. The caller bounds it with the handshake timeout.
pub(crate) async fn handshake(io: &mut Io, ours: EndpointId) -> Result<Hello, String> {
    io.writer
        .write_all(&Hello::new(ours).encode())
        .await
        .map_err(|e| format!("cannot send the handshake preamble: {e}"))?;
    io.writer.flush().await.map_err(|e| format!("cannot send the handshake preamble: {e}"))?;
    let mut theirs = [0u8; Hello::LEN];
    io.reader.read_exact(&mut theirs).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "peer closed the connection during the handshake".to_owned(),
        _ => format!("cannot read the handshake preamble: {e}"),
    })?;
    Hello::decode(&theirs).map_err(|e| e.to_string())
}

/// Bounds `handshake` by `timeout`.
pub(crate) async fn handshake_within(
    io: &mut Io,
    ours: EndpointId,
    deadline: Instant,
    timeout: Duration,
) -> Result<Hello, String> {
    match tokio::time::timeout_at(deadline, handshake(io, ours)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no handshake preamble within {timeout:?}")),
    }
}

/// What wakes the reader.
enum Event {
    Closed,
    /// The deadline to watch changed.
    Watch(u64),
    /// The deadline timer fired.
    Deadline,
    Frame(Option<Result<Bytes, FrameError>>),
}

/// Ready once `ready()` holds; whoever makes it hold wakes `wake` after.
fn signalled<'a>(wake: &'a AtomicWaker, ready: impl Fn() -> bool + 'a) -> impl Future<Output = ()> + 'a {
    std::future::poll_fn(move |cx| {
        if !ready() {
            wake.register(cx.waker());
            // Checked again after registering: a wake in between is not lost.
            if !ready() {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    })
}

async fn read_loop(conn: Arc<ConnInner>, reader: BoxRead) {
    let decoder = FrameDecoder::new(conn.endpoint.config.max_frame_len);
    let mut frames = FramedRead::with_capacity(reader, decoder, READ_BUFFER);
    // The deadline timer of the calls this side waits on (`ConnInner::watch`), set to `watching`.
    let mut deadline = std::pin::pin!(tokio::time::sleep_until(conn.epoch));
    let mut watching = NO_DEADLINE;
    // Frames taken since the deadline timer was last looked at.
    let mut unchecked = 0;
    let violation = loop {
        let event = std::future::poll_fn(|cx| {
            if conn.is_closed() {
                return Poll::Ready(Event::Closed);
            }
            let watched = conn.watched.load(Ordering::Acquire);
            if watched != watching {
                return Poll::Ready(Event::Watch(watched));
            }
            let frames_first = unchecked < DEADLINE_CHECK_FRAMES;
            if frames_first && let Poll::Ready(next) = frames.poll_next_unpin(cx) {
                unchecked += 1;
                return Poll::Ready(Event::Frame(next));
            }
            unchecked = 0;
            if watching != NO_DEADLINE && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Deadline);
            }
            if !frames_first && let Poll::Ready(next) = frames.poll_next_unpin(cx) {
                unchecked = 1;
                return Poll::Ready(Event::Frame(next));
            }
            conn.reader_wake.register(cx.waker());
            // Looked at again once registered: a wake in between is not lost.
            if conn.is_closed() || conn.watched.load(Ordering::Acquire) != watching {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await;
        let next = match event {
            Event::Closed => return,
            Event::Watch(watched) => {
                watching = watched;
                if watched != NO_DEADLINE {
                    deadline.as_mut().reset(conn.epoch + Duration::from_nanos(watched));
                }
                continue;
            }
            Event::Deadline => {
                conn.expire_calls();
                continue;
            }
            Event::Frame(next) => next,
        };
        match next {
            Some(Ok(body)) => {
                conn.more_to_read.store(!frames.read_buffer().is_empty(), Ordering::Relaxed);
                if let Err(reason) = conn.on_frame(body) {
                    break reason;
                }
            }
            Some(Err(FrameError::Io(e))) => {
                tracing::debug!(peer = %conn.label, error = %e, "read failed");
                conn.close(format!("read failed: {e}"));
                return;
            }
            Some(Err(e)) => break e.to_string(),
            None => {
                conn.close("peer closed the connection");
                return;
            }
        }
    };
    tracing::warn!(peer = %conn.label, reason = %violation, "closing connection");
    conn.close(violation);
}

async fn write_loop(conn: Arc<ConnInner>, mut rx: mpsc::Receiver<Bytes>) {
    // The stream is dropped when the writer ends, however it ends (aborted at shutdown too).
    let _release = ReleaseOutput(&conn);
    let ack_delay = conn.endpoint.config.ack_delay;
    let closing = || signalled(&conn.writer_wake, || conn.is_closed());
    let work = async {
        // Acknowledgements owed leave with the frames of each batch; this timer sends those that
        // wait `ack_delay` with nothing else to go with.
        let mut ack_timer = std::pin::pin!(tokio::time::sleep(ack_delay));
        let mut ack_timed = false;
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        loop {
            // Frames still queued are written before a close takes effect. `n` is the number of
            // frames received (0: the queue closed), `usize::MAX` when there is only something
            // else to write: what a straight write left, or acks that waited long enough.
            let n = tokio::select! {
                biased;
                n = rx.recv_many(&mut batch, WRITE_BATCH) => n,
                () = closing() => break,
                () = signalled(&conn.writer_wake, || conn.unflushed.load(Ordering::Acquire)) => usize::MAX,
                () = signalled(&conn.writer_wake, || conn.acks.timed.load(Ordering::SeqCst)), if !ack_timed => {
                    ack_timer.as_mut().reset(Instant::now() + ack_delay);
                    ack_timed = true;
                    continue;
                }
                () = &mut ack_timer, if ack_timed => {
                    ack_timed = false;
                    conn.acks.timed.store(false, Ordering::SeqCst);
                    // Acks owed from before the store go now, after any frame queued (an ack never
                    // overtakes a resend of its call); later ones wake the writer again.
                    usize::MAX
                }
            };
            if n == 0 {
                break;
            }
            conn.write_frames(&mut batch).await?;
            if conn.is_busy() {
                // Other calls are under way: let the tasks that are ready to queue frames (callers
                // woken by replies, served calls finishing) run first, so their frames leave in
                // this write rather than one write each. (Meanwhile the buffer is not empty, so
                // their frames are queued, not written straight.)
                tokio::task::yield_now().await;
            }
            drain_queue(&conn, &mut rx, &mut batch).await?;
            conn.flush().await?;
        }
        rx.close();
        drain_queue(&conn, &mut rx, &mut batch).await?;
        // Acks owed leave too: the peer can forget those replies now rather than at their expiry.
        conn.flush().await?;
        conn.with_output(|out, cx| Pin::new(&mut out.stream).poll_shutdown(cx)).await
    };
    // Once closed, a peer that does not read gets `close_linger` to take the last frames; then
    // the stream is dropped rather than kept open by a blocked write.
    let linger = async {
        closing().await;
        tokio::time::sleep(conn.endpoint.config.close_linger).await;
    };
    let result = tokio::select! {
        result = work => result,
        () = linger => Err(io::Error::new(io::ErrorKind::TimedOut, "peer did not read the last frames")),
    };
    if let Err(e) = result {
        if !conn.is_closed() {
            tracing::debug!(peer = %conn.label, error = %e, "write failed");
        }
        conn.close(format!("write failed: {e}"));
    }
}

/// Hands the frames still queued to the stream, a batch at a time.
async fn drain_queue(
    conn: &ConnInner,
    rx: &mut mpsc::Receiver<Bytes>,
    batch: &mut Vec<Bytes>,
) -> io::Result<()> {
    loop {
        while batch.len() < WRITE_BATCH
            && let Ok(frame) = rx.try_recv()
        {
            batch.push(frame);
        }
        if batch.is_empty() {
            return Ok(());
        }
        conn.write_frames(batch).await?;
    }
}

/// Drops a connection's stream (its write half) when its writer ends.
struct ReleaseOutput<'a>(&'a ConnInner);

impl Drop for ReleaseOutput<'_> {
    fn drop(&mut self) {
        let output = self.0.output.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{self, Io};
    use crate::{Config, Endpoint};

    /// A connection of `endpoint` over an in-memory pipe of `pipe` bytes, and the peer's end.
    fn over_pipe(
        endpoint: &Endpoint,
        pipe: usize,
        writes: Arc<AtomicUsize>,
    ) -> (Connection, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(pipe);
        let (reader, writer) = tokio::io::split(ours);
        let io = Io::new(reader, CountingWriter { inner: writer, writes }, "pipe");
        (Connection::start(endpoint.inner(), io, EndpointId::random(), None, None), theirs)
    }

    /// Counts the writes that reach the stream.
    struct CountingWriter<W> {
        inner: W,
        writes: Arc<AtomicUsize>,
    }

    impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
            self.writes.fetch_add(1, Ordering::Relaxed);
            Poll::Ready(written)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// What the peer can read right now, without waiting.
    fn readable_now(stream: &mut tokio::io::DuplexStream) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut read = tokio::io::ReadBuf::new(&mut buf);
        let mut cx = Context::from_waker(Waker::noop());
        match tokio::io::AsyncRead::poll_read(Pin::new(stream), &mut cx, &mut read) {
            Poll::Ready(result) => {
                result.unwrap();
                read.filled().to_vec()
            }
            Poll::Pending => Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_lone_frame_is_written_by_its_sender_with_the_acks_owed() {
        let endpoint = Endpoint::new();
        let (conn, mut peer) = over_pipe(&endpoint, 4096, Arc::default());
        conn.inner.ack(CallId(7), 10);
        let frame = Bytes::from_static(&[0, 0, 0, 3, 2, 0xac, 0x02]);
        conn.inner.try_send(frame.clone()).unwrap();
        // This runtime has one thread and the test has not yielded: the writer task has not run.
        let ack = [0, 0, 0, 2, 3, 7];
        assert_eq!(readable_now(&mut peer), [&ack[..], &frame[..]].concat(), "acks first, then the frame");
    }

    #[tokio::test]
    async fn what_a_full_stream_does_not_take_is_written_by_the_writer_before_later_frames() {
        let endpoint = Endpoint::new();
        let (conn, mut peer) = over_pipe(&endpoint, 1024, Arc::default());
        let first = Bytes::from((0..3000u32).map(|i| i as u8).collect::<Vec<_>>());
        let second = Bytes::from(vec![0xee; 500]);
        conn.inner.try_send(first.clone()).unwrap();
        assert_eq!(readable_now(&mut peer).len(), 1024, "the pipe took what it holds at once");
        conn.inner.try_send(second.clone()).unwrap();
        let mut rest = vec![0u8; first.len() + second.len() - 1024];
        peer.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, [&first[1024..], &second[..]].concat());
    }

    #[tokio::test]
    async fn a_lone_frame_waits_for_a_large_frame_the_writer_is_still_writing() {
        let endpoint = Endpoint::new();
        let (conn, mut peer) = over_pipe(&endpoint, 1024, Arc::default());
        // Larger than the write buffer: the writer writes it past the buffer, which stays empty.
        let large = Bytes::from((0..WRITE_BUFFER * 3).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let small = Bytes::from_static(&[0, 0, 0, 3, 2, 0xac, 0x02]);
        conn.inner.try_send(large.clone()).unwrap();
        // Once the writer has filled the pipe, some room is made: the writer is mid-frame.
        let mut start = vec![0u8; 100];
        peer.read_exact(&mut start).await.unwrap();
        conn.inner.try_send(small.clone()).unwrap();
        let mut rest = vec![0u8; large.len() + small.len() - start.len()];
        peer.read_exact(&mut rest).await.unwrap();
        start.extend_from_slice(&rest);
        assert!(start[..large.len()] == large[..], "the large frame arrived whole, first");
        assert_eq!(start[large.len()..], small[..]);
    }

    const NOTHING: rmi_core::OpId = rmi_core::OpId::from_name("nothing");
    static IDLE: rmi_core::InterfaceDescriptor = rmi_core::InterfaceDescriptor {
        name: "Idle",
        id: rmi_core::InterfaceId::from_name("Idle"),
        version: 1,
        methods: &[rmi_core::MethodDescriptor::new("nothing", NOTHING)],
    };

    /// Answers every call at once.
    struct Idle;

    impl rmi_core::Dispatch for Idle {
        fn descriptor(&self) -> &'static rmi_core::InterfaceDescriptor {
            &IDLE
        }

        fn dispatch<'a>(
            &'a self,
            _: rmi_core::OpId,
            _: Bytes,
            reply: Reply<'a>,
        ) -> rmi_core::BoxFuture<'a, ()> {
            Box::pin(async move { reply.ok(&()) })
        }
    }

    #[tokio::test]
    async fn replies_to_requests_that_arrive_together_leave_together() {
        let server = Endpoint::new();
        let object = server.export(Idle).object;
        let writes = Arc::new(AtomicUsize::new(0));
        let (_conn, mut peer) = over_pipe(&server, 64 * 1024, Arc::clone(&writes));
        let calls = 32;
        let mut frames = BytesMut::new();
        for call in 1..=calls {
            let header = Header::Request(rmi_core::RequestHeader {
                call: CallId(call),
                object,
                interface: IDLE.id,
                version: 1,
                op: NOTHING,
                flags: rmi_core::Flags::IDEMPOTENT,
                timeout_us: None,
            });
            let start = codec::begin_frame(&mut frames, &header);
            codec::finish_frame(&mut frames, start, 1 << 20).unwrap();
        }
        peer.write_all(&frames).await.unwrap();
        let reply_len = 4 + 1 + 1 + 1; // length, Reply, call id (< 128), Ok(())
        let mut replies = vec![0u8; reply_len * usize::try_from(calls).unwrap()];
        peer.read_exact(&mut replies).await.unwrap();
        // Each reply written on its own would take 32 writes.
        assert!(writes.load(Ordering::Relaxed) <= 2, "{} writes", writes.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_drops_its_stream_after_the_configured_linger() {
        let linger = Duration::from_secs(1);
        let server = Endpoint::with_config(Config::default().close_linger(linger));
        let address = server.listen("memory://connection-unit-linger").await.unwrap();
        let mut io = transport::connect(&address).await.unwrap();
        handshake(&mut io, EndpointId::random()).await.unwrap();
        // Virtual time moves on only when every task waits: the server has registered it by then.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let conn = server.connections().pop().expect("the server side of the connection");
        // Twice what the pipe holds, queued before the close, to a peer that does not read yet.
        let queued = 2 * 256 * 1024;
        for _ in 0..queued / 4096 {
            conn.inner.send(Bytes::from(vec![0u8; 4096])).await.unwrap();
        }
        conn.close();
        tokio::time::sleep(linger * 2).await;
        let mut received = Vec::new();
        io.reader.read_to_end(&mut received).await.unwrap();
        assert!(received.len() < queued, "the writer was still there after its linger");
    }

    #[tokio::test]
    async fn handshake_rejects_bad_magic_and_versions() {
        let (a, b) = tokio::io::duplex(1024);
        let (ar, mut aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let mut io = Io::new(br, bw, "test");
        aw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let err = handshake(&mut io, EndpointId::random()).await.unwrap_err();
        assert!(err.contains("not an rmi endpoint"), "{err}");
        drop(ar);

        let (a, b) = tokio::io::duplex(1024);
        let (_ar, mut aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let mut io = Io::new(br, bw, "test");
        let mut hello = Hello::new(EndpointId::random()).encode();
        hello[5] = 9;
        aw.write_all(&hello).await.unwrap();
        let err = handshake(&mut io, EndpointId::random()).await.unwrap_err();
        assert!(err.contains("version 9"), "{err}");
    }
}
