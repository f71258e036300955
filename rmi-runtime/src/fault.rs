//! A fault-injecting relay, for tests that prove invocation semantics under network faults.
//!
//! A [`FaultProxy`] listens on an address of its own and relays every connection it accepts to a
//! target address, frame by frame. A [`FaultPlan`] says which frames suffer which [`FrameFault`]: they
//! can be dropped, delayed, duplicated, reordered, or the connection cut in the middle of one.
//! Faults are picked by explicit [`Rule`]s (the *n*th reply on connection 0, say) or by a seeded
//! random schedule ([`FaultPlan::random`]) that is the same for the same seed and the same traffic.
//! Every fault applied is logged ([`FaultProxy::injected`]), and a test can wait for it
//! ([`FaultProxy::wait_injected`]).
//!
//! The relay understands just enough of the wire protocol: each direction of a connection starts
//! with the fixed 24-byte handshake preamble, forwarded untouched and never faulted, then carries
//! frames, a 4-byte big-endian length and that many bytes, whose first byte tells the frame's
//! [`FrameKind`]. Forwarded frames are byte-identical. A frame longer than the limit
//! ([`FaultPlan::max_frame_len`]) closes the relayed connection.
//!
//! Dial the proxy's [`address`](FaultProxy::address) instead of the target's: for an rmi
//! endpoint, give out a reference whose address is the proxy's, or connect to the proxy directly.
//!
//! # Example
//!
//! Raw frames through a proxy that drops the first frame from the client:
//!
//! ```
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! use rmi_runtime::fault::{Direction, FrameFault, FaultPlan, FaultProxy, FrameKind, Rule};
//! use rmi_runtime::transport;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let mut server = transport::bind(&"memory://fault-doc-server".parse().unwrap()).await?;
//! let plan = FaultPlan::new().rule(Rule::new(Direction::ToServer, FrameFault::Drop));
//! let proxy = FaultProxy::start(
//!     &"memory://fault-doc-proxy".parse().unwrap(),
//!     server.local_address().clone(),
//!     plan,
//! )
//! .await?;
//!
//! let mut client = transport::connect(proxy.address()).await?;
//! client.writer.write_all(&[7; 24]).await?; // the handshake preamble
//! client.writer.write_all(&[0, 0, 0, 2, 0, b'a']).await?; // a request frame: dropped
//! client.writer.write_all(&[0, 0, 0, 2, 1, b'b']).await?; // a reply frame: relayed
//!
//! let mut accepted = server.accept().await?;
//! let mut received = [0; 24 + 6];
//! accepted.reader.read_exact(&mut received).await?;
//! assert_eq!(received[..24], [7; 24]);
//! assert_eq!(received[24..], [0, 0, 0, 2, 1, b'b']);
//!
//! proxy.wait_injected(1).await;
//! let log = proxy.injected();
//! assert_eq!((log[0].kind, log[0].fault), (FrameKind::Request, FrameFault::Drop));
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmi_core::Address;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::transport::{self, BoxRead, BoxWrite, Listener};

/// Bytes of the handshake preamble that starts each direction of a connection.
const PREAMBLE_LEN: usize = 24;
/// Bytes of a frame's length prefix.
const LEN_PREFIX: usize = 4;
/// Most bytes of a frame body read (and reserved) at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long the accept loop waits after a failed accept before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The default limit on a frame's body: 64 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// Which way a frame travels through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the dialling side (the proxy's client) to the target.
    ToServer,
    /// From the target back to the dialling side.
    ToClient,
}

/// What a frame is, from the first byte of its body (the variant of its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A call (variant 0).
    Request,
    /// The answer to a call (variant 1).
    Reply,
    /// A caller giving up on a call (variant 2).
    Cancel,
    /// An acknowledgement (variant 3).
    Ack,
    /// Anything else, an empty frame included.
    Other,
}

impl FrameKind {
    /// The kind of a frame with this body.
    fn of(body: &[u8]) -> Self {
        match body.first() {
            Some(0) => FrameKind::Request,
            Some(1) => FrameKind::Reply,
            Some(2) => FrameKind::Cancel,
            Some(3) => FrameKind::Ack,
            _ => FrameKind::Other,
        }
    }

    /// A dense index, for per-kind counters.
    fn index(self) -> usize {
        match self {
            FrameKind::Request => 0,
            FrameKind::Reply => 1,
            FrameKind::Cancel => 2,
            FrameKind::Ack => 3,
            FrameKind::Other => 4,
        }
    }
}

/// What happens to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// The frame is not forwarded.
    Drop,
    /// The frame, and everything after it in the same direction (as on a stream), is held for the
    /// duration: a slow link.
    Delay(Duration),
    /// The frame is forwarded twice.
    Duplicate,
    /// The frame is held back and forwarded right after the next frame in the same direction (or in
    /// that frame's place, if it is dropped or held back itself). If the direction ends first, the
    /// frame is lost.
    Reorder,
    /// About half of the frame's bytes (its length prefix included) are forwarded, then both streams
    /// of the relayed connection are closed.
    Cut,
}

/// An explicit fault for one frame: the `nth` frame (of a kind, or of any kind) in a direction, on
/// one relayed connection or on each.
///
/// Frames are counted from the moment the plan holding the rule took effect ([`FaultProxy::start`]
/// or [`FaultProxy::set_plan`]), or from the start of the connection if it is younger. A rule fires
/// at most once per connection: on the one connection it names, or once on every connection if it
/// names none.
///
/// ```
/// use rmi_runtime::fault::{Direction, FrameFault, FrameKind, Rule};
///
/// // Drop the second reply on the first relayed connection.
/// let rule = Rule::new(Direction::ToClient, FrameFault::Drop).connection(0).kind(FrameKind::Reply).nth(1);
/// # let _ = rule;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    direction: Direction,
    fault: FrameFault,
    connection: Option<usize>,
    kind: Option<FrameKind>,
    nth: usize,
}

impl Rule {
    /// A rule applying `fault` to the first frame of any kind in `direction`, on every connection.
    pub fn new(direction: Direction, fault: FrameFault) -> Self {
        Self { direction, fault, connection: None, kind: None, nth: 0 }
    }

    /// Only on relayed connection `index` (0-based, in the order the proxy accepted them).
    #[must_use]
    pub fn connection(mut self, index: usize) -> Self {
        self.connection = Some(index);
        self
    }

    /// Only frames of `kind`, counted among frames of that kind.
    #[must_use]
    pub fn kind(mut self, kind: FrameKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The `k`-th matching frame (0-based; the default is 0, the first).
    #[must_use]
    pub fn nth(mut self, k: usize) -> Self {
        self.nth = k;
        self
    }

    /// Whether the rule picks this frame; `seen` counts the earlier frames of the direction under
    /// the plan, of all kinds and of each kind.
    fn matches(&self, connection: usize, direction: Direction, kind: FrameKind, seen: &Seen) -> bool {
        self.direction == direction
            && self.connection.is_none_or(|c| c == connection)
            && match self.kind {
                Some(k) => k == kind && seen.of_kind[kind.index()] == self.nth,
                None => seen.all == self.nth,
            }
    }
}

/// Probabilities of the random schedule ([`FaultPlan::random`]): each frame suffers at most one
/// fault, drawn with these odds (each in `0.0..=1.0`; negative or non-finite values count as 0,
/// and once they add up to 1 the later ones, in field order, are never drawn).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Odds {
    /// Chance that a frame is dropped.
    pub drop: f64,
    /// Chance that a frame is delayed, for a uniformly drawn duration up to `max_delay`.
    pub delay: f64,
    /// The longest random delay.
    pub max_delay: Duration,
    /// Chance that a frame is duplicated.
    pub duplicate: f64,
    /// Chance that a frame is swapped with the next one.
    pub reorder: f64,
    /// Chance that the connection is cut in the middle of a frame.
    pub cut: f64,
}

impl Odds {
    /// One frame's draw: always one number, a second one for a delay's duration.
    fn draw(&self, rng: &mut fastrand::Rng) -> Option<FrameFault> {
        fn p(x: f64) -> f64 {
            if x.is_finite() && x > 0.0 { x } else { 0.0 }
        }
        let x = rng.f64();
        let mut bound = 0.0;
        let mut hit = |odds: f64| {
            bound += p(odds);
            x < bound
        };
        if hit(self.drop) {
            Some(FrameFault::Drop)
        } else if hit(self.delay) {
            let max = u64::try_from(self.max_delay.as_nanos()).unwrap_or(u64::MAX);
            Some(FrameFault::Delay(Duration::from_nanos(rng.u64(0..=max))))
        } else if hit(self.duplicate) {
            Some(FrameFault::Duplicate)
        } else if hit(self.reorder) {
            Some(FrameFault::Reorder)
        } else if hit(self.cut) {
            Some(FrameFault::Cut)
        } else {
            None
        }
    }
}

/// Which frames suffer which faults: explicit [`Rule`]s, optionally a seeded random schedule, and
/// the frame size limit. The default plan injects nothing: a transparent relay.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    random: Option<(u64, Odds)>,
    max_frame_len: Option<usize>,
}

impl FaultPlan {
    /// A plan without faults: a transparent relay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an explicit rule. Rules win over the random schedule; when several rules pick the same
    /// frame, the first added wins.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds a seeded random schedule (replacing an earlier one): each frame after the preamble
    /// independently suffers at most one fault, with these odds.
    ///
    /// The schedule is reproducible: each direction of each relayed connection draws from its own
    /// generator, seeded from `seed`, the connection's index and the direction, so the same seed
    /// and the same frames (counted from when the plan took effect) give the same faults.
    #[must_use]
    pub fn random(mut self, seed: u64, odds: Odds) -> Self {
        self.random = Some((seed, odds));
        self
    }

    /// The largest frame body relayed, in bytes (default [`DEFAULT_MAX_FRAME_LEN`]); a longer frame
    /// closes its relayed connection.
    #[must_use]
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = Some(bytes);
        self
    }

    fn frame_limit(&self) -> usize {
        self.max_frame_len.unwrap_or(DEFAULT_MAX_FRAME_LEN)
    }
}

/// One fault the proxy applied, as logged by [`FaultProxy::injected`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    /// The relayed connection (0-based, in accept order).
    pub connection: usize,
    /// The direction of the frame.
    pub direction: Direction,
    /// The frame's kind.
    pub kind: FrameKind,
    /// The frame's index among all frames of its direction on its connection (0-based, the
    /// preamble not counted).
    pub frame: usize,
    /// What was done to it.
    pub fault: FrameFault,
}

/// State shared by the handle, the accept loop and the relay tasks.
struct Shared {
    target: Address,
    plan: Mutex<Arc<FaultPlan>>,
    /// Cancelled by [`FaultProxy::stop`]: ends the accept loop and every connection.
    stop: CancellationToken,
    /// The parent of the current connections' tokens; replaced by [`FaultProxy::cut_all`].
    epoch: Mutex<CancellationToken>,
    accepted: AtomicUsize,
    log: Mutex<Vec<Injected>>,
    /// The length of `log`, for [`FaultProxy::wait_injected`].
    logged: watch::Sender<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn plan(&self) -> Arc<FaultPlan> {
        Arc::clone(&lock(&self.plan))
    }

    fn record(&self, injected: Injected) {
        tracing::debug!(?injected, "fault injected");
        let mut log = lock(&self.log);
        log.push(injected);
        self.logged.send_replace(log.len());
    }
}

/// A relay that injects faults into the frames it forwards. See the [module docs](self).
///
/// Clones share one proxy; dropping the last clone, or [`stop`](FaultProxy::stop), stops it.
#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    address: Address,
    _stop_on_drop: Arc<DropGuard>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("address", &self.address)
            .field("target", &self.shared.target)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Listens on `listen` (for example `memory://x` or `tcp://127.0.0.1:0`) and relays each
    /// accepted connection to `target`, applying `plan`.
    ///
    /// A connection whose target cannot be reached is closed. Must be called within a Tokio
    /// runtime: the proxy runs on spawned tasks.
    ///
    /// # Errors
    /// The transport's error binding `listen`.
    pub async fn start(listen: &Address, target: Address, plan: FaultPlan) -> io::Result<FaultProxy> {
        let listener = transport::bind(listen).await?;
        let address = listener.local_address().clone();
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            target,
            plan: Mutex::new(Arc::new(plan)),
            epoch: Mutex::new(stop.child_token()),
            stop: stop.clone(),
            accepted: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            logged: watch::Sender::new(0),
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(FaultProxy { shared, address, _stop_on_drop: Arc::new(stop.drop_guard()) })
    }

    /// The address clients dial (with port 0 resolved).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Replaces the plan for the frames relayed from now on, on current connections too; the new
    /// plan's rules and random schedule count frames from now.
    pub fn set_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.plan) = Arc::new(plan);
    }

    /// Cuts every relayed connection now: both of its sides see the stream end. Connections
    /// accepted later are relayed as usual.
    pub fn cut_all(&self) {
        let fresh = self.shared.stop.child_token();
        let old = std::mem::replace(&mut *lock(&self.shared.epoch), fresh);
        old.cancel();
    }

    /// How many connections the proxy has accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The faults applied so far, in order. A fault is logged when it is decided, before its
    /// effect: a delayed frame when its hold starts.
    pub fn injected(&self) -> Vec<Injected> {
        lock(&self.shared.log).clone()
    }

    /// Resolves once at least `n` faults have been applied.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_injected(&self, n: usize) {
        let mut logged = self.shared.logged.subscribe();
        // Fails only if the sender is gone, and `self` holds it.
        let _ = logged.wait_for(|&len| len >= n).await;
    }

    /// Stops listening and closes every relayed connection.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }
}

async fn accept_loop(mut listener: Box<dyn Listener>, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(error = %e, "fault proxy: accept failed");
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let token = lock(&shared.epoch).child_token();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let upstream = tokio::select! {
                () = token.cancelled() => return,
                upstream = transport::connect(&shared.target) => upstream,
            };
            let upstream = match upstream {
                Ok(upstream) => upstream,
                Err(e) => {
                    // Dropping the accepted stream closes it.
                    tracing::debug!(connection = index, target = %shared.target, error = %e,
                        "fault proxy: target unreachable");
                    return;
                }
            };
            tracing::debug!(connection = index, peer = %io.peer, "fault proxy: relaying");
            let to_server = Relay {
                shared: Arc::clone(&shared),
                connection: index,
                direction: Direction::ToServer,
                token: token.clone(),
            };
            let to_client = Relay { shared, connection: index, direction: Direction::ToClient, token };
            tokio::spawn(to_server.run(io.reader, upstream.writer));
            tokio::spawn(to_client.run(upstream.reader, io.writer));
        });
    }
}

/// Frames seen in one direction since the plan took effect.
#[derive(Default)]
struct Seen {
    all: usize,
    of_kind: [usize; 5],
}

/// One direction's view of the plan: rebuilt when the plan is replaced.
struct Schedule {
    plan: Arc<FaultPlan>,
    rng: Option<fastrand::Rng>,
    seen: Seen,
}

impl Schedule {
    fn new(plan: Arc<FaultPlan>, connection: usize, direction: Direction) -> Self {
        let rng =
            plan.random.map(|(seed, _)| fastrand::Rng::with_seed(stream_seed(seed, connection, direction)));
        Self { plan, rng, seen: Seen::default() }
    }

    /// The fault for the next frame, if any.
    fn decide(&mut self, connection: usize, direction: Direction, kind: FrameKind) -> Option<FrameFault> {
        // Drawn for every frame, so that rules do not shift the random sequence.
        let random = match (&mut self.rng, &self.plan.random) {
            (Some(rng), Some((_, odds))) => odds.draw(rng),
            _ => None,
        };
        let rule = self.plan.rules.iter().find(|rule| rule.matches(connection, direction, kind, &self.seen));
        self.seen.all += 1;
        self.seen.of_kind[kind.index()] += 1;
        rule.map(|rule| rule.fault).or(random)
    }
}

/// The seed of one direction of one connection: SplitMix64 over the plan's seed, the connection
/// index and the direction.
fn stream_seed(seed: u64, connection: usize, direction: Direction) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let connection = u64::try_from(connection).unwrap_or(u64::MAX);
    let stream = connection.wrapping_mul(2).wrapping_add(u64::from(direction == Direction::ToClient));
    mix(seed ^ mix(stream))
}

/// How a direction's relaying ended, short of an I/O error.
enum Ended {
    /// The source ended its stream: pass the end on, leave the other direction be.
    Eof,
    /// Close the whole relayed connection (a cut, an oversized frame).
    Close,
}

/// What the next read from a source gave.
enum Next {
    /// A whole frame, its length prefix included.
    Frame(Bytes),
    /// The stream ended, after these bytes of an incomplete frame (possibly none).
    End(Bytes),
    /// A length prefix over the limit.
    TooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        limit: usize,
    },
}

/// One direction of one relayed connection.
struct Relay {
    shared: Arc<Shared>,
    connection: usize,
    direction: Direction,
    token: CancellationToken,
}

impl Relay {
    async fn run(self, reader: BoxRead, mut writer: BoxWrite) {
        let ended = tokio::select! {
            () = self.token.cancelled() => return,
            ended = self.pump(reader, &mut writer) => ended,
        };
        match ended {
            Ok(Ended::Eof) => {
                tokio::select! {
                    () = self.token.cancelled() => {}
                    _ = writer.shutdown() => {}
                }
            }
            Ok(Ended::Close) => self.token.cancel(),
            Err(e) => {
                tracing::debug!(connection = self.connection, direction = ?self.direction, error = %e,
                    "fault proxy: relay failed");
                self.token.cancel();
            }
        }
    }

    async fn pump(&self, reader: BoxRead, writer: &mut BoxWrite) -> io::Result<Ended> {
        let mut reader = tokio::io::BufReader::new(reader);
        let mut preamble = [0u8; PREAMBLE_LEN];
        let got = read_full(&mut reader, &mut preamble).await?;
        write_frame(writer, &preamble[..got]).await?;
        if got < PREAMBLE_LEN {
            return Ok(Ended::Eof);
        }

        let mut schedule = Schedule::new(self.shared.plan(), self.connection, self.direction);
        let mut held: Option<Bytes> = None;
        let mut index = 0;
        loop {
            // The plan in force when a frame's length arrives sets its limit; the plan in force once
            // the whole frame is in decides its fault.
            let limit = || self.shared.plan().frame_limit();
            let frame = match read_frame(&mut reader, limit).await? {
                Next::Frame(frame) => frame,
                Next::End(partial) => {
                    // A held-back frame is lost; a partial frame goes on as it came.
                    write_frame(writer, &partial).await?;
                    return Ok(Ended::Eof);
                }
                Next::TooLarge { len, limit } => {
                    tracing::debug!(connection = self.connection, direction = ?self.direction, len, limit,
                        "fault proxy: frame too large, closing");
                    return Ok(Ended::Close);
                }
            };
            let plan = self.shared.plan();
            if !Arc::ptr_eq(&plan, &schedule.plan) {
                schedule = Schedule::new(plan, self.connection, self.direction);
            }
            let kind = FrameKind::of(&frame[LEN_PREFIX..]);
            let fault = schedule.decide(self.connection, self.direction, kind);
            if let Some(fault) = fault {
                self.shared.record(Injected {
                    connection: self.connection,
                    direction: self.direction,
                    kind,
                    frame: index,
                    fault,
                });
            }
            index += 1;

            let earlier = held.take();
            match fault {
                None => write_frame(writer, &frame).await?,
                Some(FrameFault::Drop) => {}
                Some(FrameFault::Delay(duration)) => {
                    tokio::time::sleep(duration).await;
                    write_frame(writer, &frame).await?;
                }
                Some(FrameFault::Duplicate) => {
                    write_frame(writer, &frame).await?;
                    write_frame(writer, &frame).await?;
                }
                Some(FrameFault::Reorder) => held = Some(frame),
                Some(FrameFault::Cut) => {
                    write_frame(writer, &frame[..frame.len() / 2]).await?;
                    return Ok(Ended::Close);
                }
            }
            if let Some(earlier) = earlier {
                write_frame(writer, &earlier).await?;
            }
        }
    }
}

/// Reads until `buf` is full or the stream ends; the number of bytes read.
async fn read_full(reader: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = reader.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Reads one frame, reserving memory only as its bytes arrive (at most [`READ_CHUNK`] ahead);
/// `limit` gives the largest body allowed once the length has arrived.
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    limit: impl FnOnce() -> usize,
) -> io::Result<Next> {
    let mut prefix = [0u8; LEN_PREFIX];
    let got = read_full(reader, &mut prefix).await?;
    if got < LEN_PREFIX {
        return Ok(Next::End(Bytes::copy_from_slice(&prefix[..got])));
    }
    let len = u32::from_be_bytes(prefix);
    let limit = limit();
    let total = match usize::try_from(len) {
        Ok(body) if body <= limit => body.checked_add(LEN_PREFIX),
        _ => None,
    };
    let Some(total) = total else {
        return Ok(Next::TooLarge { len, limit });
    };
    let mut frame = BytesMut::with_capacity(total.min(LEN_PREFIX + READ_CHUNK));
    frame.extend_from_slice(&prefix);
    while frame.len() < total {
        let want = (total - frame.len()).min(READ_CHUNK);
        frame.reserve(want);
        let n = (&mut *reader).take(u64::try_from(want).unwrap_or(u64::MAX)).read_buf(&mut frame).await?;
        if n == 0 {
            return Ok(Next::End(frame.freeze()));
        }
    }
    Ok(Next::Frame(frame.freeze()))
}

/// Writes `bytes` whole, then flushes.
async fn write_frame(writer: &mut BoxWrite, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    writer.write_all(bytes).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Io;
    use std::sync::atomic::AtomicU64;
    use tokio::time::Instant;

    const HELLO_C: [u8; PREAMBLE_LEN] = [0xC1; PREAMBLE_LEN];
    const HELLO_S: [u8; PREAMBLE_LEN] = [0x5E; PREAMBLE_LEN];

    /// A fresh memory address.
    fn memory(tag: &str) -> Address {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Address::Memory(format!("fault-test-{tag}-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    /// A frame: `kind` as the header's variant byte, then `payload`.
    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len() + 1).unwrap();
        let mut out = len.to_be_bytes().to_vec();
        out.push(kind);
        out.extend_from_slice(payload);
        out
    }

    fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    struct Setup {
        server: Box<dyn Listener>,
        proxy: FaultProxy,
    }

    async fn setup(plan: FaultPlan) -> Setup {
        let server = transport::bind(&memory("server")).await.unwrap();
        let proxy = FaultProxy::start(&memory("proxy"), server.local_address().clone(), plan).await.unwrap();
        Setup { server, proxy }
    }

    impl Setup {
        /// A relayed connection, both sides, preambles exchanged.
        async fn pair(&mut self) -> (Io, Io) {
            let mut client = transport::connect(self.proxy.address()).await.unwrap();
            let mut server = self.server.accept().await.unwrap();
            client.writer.write_all(&HELLO_C).await.unwrap();
            server.writer.write_all(&HELLO_S).await.unwrap();
            assert_eq!(read_n(&mut server.reader, PREAMBLE_LEN).await, HELLO_C);
            assert_eq!(read_n(&mut client.reader, PREAMBLE_LEN).await, HELLO_S);
            (client, server)
        }
    }

    async fn read_n(reader: &mut BoxRead, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        reader.read_exact(&mut buf).await.unwrap();
        buf
    }

    async fn read_to_end(reader: &mut BoxRead) -> Vec<u8> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf).await.unwrap();
        buf
    }

    fn injected(
        connection: usize,
        direction: Direction,
        kind: FrameKind,
        frame: usize,
        fault: FrameFault,
    ) -> Injected {
        Injected { connection, direction, kind, frame, fault }
    }

    #[tokio::test]
    async fn transparent_relay_is_byte_identical_both_ways() {
        let mut s = setup(FaultPlan::new()).await;
        let (mut client, mut server) = s.pair().await;
        let big = vec![0xAB; 3 * READ_CHUNK + 17];
        let up = cat(&[frame(0, b"call"), frame(2, b""), frame(0, &big), vec![0, 0, 0, 0], frame(9, b"x")]);
        let down = cat(&[frame(1, b"answer"), frame(3, b"ack"), frame(1, &big)]);
        let (_, _, got_up, got_down) = tokio::join!(
            client.writer.write_all(&up),
            server.writer.write_all(&down),
            read_n(&mut server.reader, up.len()),
            read_n(&mut client.reader, down.len()),
        );
        assert_eq!(got_up, up);
        assert_eq!(got_down, down);

        // Ends pass through: a client's half-close reaches the server, and back.
        client.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut server.reader).await, b"");
        server.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut client.reader).await, b"");
        assert_eq!(s.proxy.injected(), vec![]);
        assert_eq!(s.proxy.connections(), 1);
    }

    #[tokio::test]
    async fn drop_duplicate_and_reorder() {
        let plan = FaultPlan::new()
            .rule(Rule::new(Direction::ToServer, FrameFault::Drop).nth(0))
            .rule(Rule::new(Direction::ToServer, FrameFault::Duplicate).nth(1))
            .rule(Rule::new(Direction::ToServer, FrameFault::Reorder).nth(2));
        let mut s = setup(plan).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b, c, d) = (frame(0, b"a"), frame(0, b"b"), frame(0, b"c"), frame(0, b"d"));
        client.writer.write_all(&cat(&[a, b.clone(), c.clone(), d.clone()])).await.unwrap();
        client.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut server.reader).await, cat(&[b.clone(), b, d, c]));
        let up = |frame, fault| injected(0, Direction::ToServer, FrameKind::Request, frame, fault);
        assert_eq!(
            s.proxy.injected(),
            vec![up(0, FrameFault::Drop), up(1, FrameFault::Duplicate), up(2, FrameFault::Reorder)]
        );
    }

    #[tokio::test]
    async fn a_reordered_frame_is_lost_if_the_direction_ends_first() {
        let plan = FaultPlan::new().rule(Rule::new(Direction::ToClient, FrameFault::Reorder).nth(1));
        let mut s = setup(plan).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b) = (frame(1, b"a"), frame(1, b"b"));
        server.writer.write_all(&cat(&[a.clone(), b])).await.unwrap();
        server.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut client.reader).await, a);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_holds_the_frame_and_what_follows() {
        let delay = Duration::from_secs(2);
        let plan = FaultPlan::new().rule(Rule::new(Direction::ToClient, FrameFault::Delay(delay)));
        let mut s = setup(plan).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b) = (frame(1, b"late"), frame(1, b"behind"));
        let start = Instant::now();
        server.writer.write_all(&cat(&[a.clone(), b.clone()])).await.unwrap();
        s.proxy.wait_injected(1).await;

        let mut first = [0u8; 1];
        let early =
            tokio::time::timeout(delay - Duration::from_millis(1), client.reader.read(&mut first)).await;
        assert!(early.is_err(), "a byte arrived before the delay: {early:?}");
        assert_eq!(read_n(&mut client.reader, a.len() + b.len()).await, cat(&[a, b]));
        assert!(start.elapsed() >= delay, "arrived after {:?}", start.elapsed());
        assert_eq!(
            s.proxy.injected(),
            vec![injected(0, Direction::ToClient, FrameKind::Reply, 0, FrameFault::Delay(delay))]
        );
    }

    #[tokio::test]
    async fn cut_forwards_half_a_frame_then_closes_both_streams() {
        let plan = FaultPlan::new().rule(Rule::new(Direction::ToServer, FrameFault::Cut).nth(1));
        let mut s = setup(plan).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b) = (frame(0, b"whole"), frame(0, b"0123456789"));
        client.writer.write_all(&cat(&[a.clone(), b.clone(), frame(0, b"never")])).await.unwrap();
        let mut expected = a;
        expected.extend_from_slice(&b[..b.len() / 2]);
        assert_eq!(read_to_end(&mut server.reader).await, expected);
        assert_eq!(read_to_end(&mut client.reader).await, b"");
        // The server's writes find the stream closed, at the latest once the pipe is gone.
        assert!(server.writer.write_all(&frame(1, b"late")).await.is_err());
        assert_eq!(
            s.proxy.injected(),
            vec![injected(0, Direction::ToServer, FrameKind::Request, 1, FrameFault::Cut)]
        );
    }

    #[tokio::test]
    async fn rules_match_kind_nth_and_connection() {
        let plan = FaultPlan::new()
            // Only on connection 1: its second cancel.
            .rule(
                Rule::new(Direction::ToServer, FrameFault::Drop).connection(1).kind(FrameKind::Cancel).nth(1),
            )
            // On every connection: its first reply.
            .rule(Rule::new(Direction::ToClient, FrameFault::Duplicate).kind(FrameKind::Reply));
        let mut s = setup(plan).await;
        let mut conns = Vec::new();
        for _ in 0..2 {
            conns.push(s.pair().await);
        }
        let up = cat(&[frame(0, b"r"), frame(2, b"c0"), frame(1, b"odd"), frame(2, b"c1"), frame(2, b"c2")]);
        let down = cat(&[frame(3, b"ack"), frame(1, b"r0"), frame(1, b"r1")]);
        for (client, server) in &mut conns {
            client.writer.write_all(&up).await.unwrap();
            client.writer.shutdown().await.unwrap();
            server.writer.write_all(&down).await.unwrap();
            server.writer.shutdown().await.unwrap();
        }
        let (c0, s0) = &mut conns[0];
        assert_eq!(read_to_end(&mut s0.reader).await, up);
        assert_eq!(
            read_to_end(&mut c0.reader).await,
            cat(&[frame(3, b"ack"), frame(1, b"r0"), frame(1, b"r0"), frame(1, b"r1")])
        );
        let (c1, s1) = &mut conns[1];
        assert_eq!(
            read_to_end(&mut s1.reader).await,
            cat(&[frame(0, b"r"), frame(2, b"c0"), frame(1, b"odd"), frame(2, b"c2")])
        );
        assert_eq!(
            read_to_end(&mut c1.reader).await,
            cat(&[frame(3, b"ack"), frame(1, b"r0"), frame(1, b"r0"), frame(1, b"r1")])
        );

        let mut log = s.proxy.injected();
        log.sort_by_key(|i| (i.connection, i.direction == Direction::ToClient));
        assert_eq!(
            log,
            vec![
                injected(0, Direction::ToClient, FrameKind::Reply, 1, FrameFault::Duplicate),
                injected(1, Direction::ToServer, FrameKind::Cancel, 3, FrameFault::Drop),
                injected(1, Direction::ToClient, FrameKind::Reply, 1, FrameFault::Duplicate),
            ]
        );
        assert_eq!(s.proxy.connections(), 2);
    }

    #[tokio::test]
    async fn set_plan_counts_frames_from_when_it_takes_effect() {
        let mut s = setup(FaultPlan::new()).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b, c) = (frame(0, b"a"), frame(0, b"b"), frame(0, b"c"));
        client.writer.write_all(&a).await.unwrap();
        assert_eq!(read_n(&mut server.reader, a.len()).await, a);
        s.proxy.set_plan(
            FaultPlan::new().rule(Rule::new(Direction::ToServer, FrameFault::Drop).kind(FrameKind::Request)),
        );
        client.writer.write_all(&cat(&[b, c.clone()])).await.unwrap();
        client.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut server.reader).await, c);
        assert_eq!(
            s.proxy.injected(),
            vec![injected(0, Direction::ToServer, FrameKind::Request, 1, FrameFault::Drop)]
        );
    }

    /// Relays `frames` from a client of a fresh proxy with a random plan; what the server got, and
    /// the log.
    async fn random_run(seed: u64, frames: &[Vec<u8>]) -> (Vec<u8>, Vec<Injected>) {
        let odds = Odds {
            drop: 0.1,
            delay: 0.1,
            max_delay: Duration::from_millis(50),
            duplicate: 0.1,
            reorder: 0.1,
            cut: 0.01,
        };
        let mut s = setup(FaultPlan::new().random(seed, odds)).await;
        let (mut client, mut server) = s.pair().await;
        // Written before the proxy reads any of it: a cut cannot fail these writes.
        client.writer.write_all(&cat(frames)).await.unwrap();
        let _ = client.writer.shutdown().await;
        (read_to_end(&mut server.reader).await, s.proxy.injected())
    }

    #[tokio::test(start_paused = true)]
    async fn a_seeded_random_schedule_is_reproducible() {
        let frames: Vec<_> =
            (0..200u32).map(|i| frame(u8::try_from(i % 5).unwrap(), &i.to_be_bytes())).collect();
        let (bytes, log) = random_run(7, &frames).await;
        assert!(log.len() >= 10, "too few faults for the odds: {log:?}");
        assert_eq!(random_run(7, &frames).await, (bytes.clone(), log.clone()));
        assert_ne!(random_run(8, &frames).await.1, log);
    }

    #[tokio::test]
    async fn rules_win_over_the_random_schedule() {
        let always_drop = Odds { drop: 1.0, ..Odds::default() };
        let plan = FaultPlan::new()
            .random(1, always_drop)
            .rule(Rule::new(Direction::ToServer, FrameFault::Duplicate).nth(1));
        let mut s = setup(plan).await;
        let (mut client, mut server) = s.pair().await;
        let (a, b, c) = (frame(0, b"a"), frame(0, b"b"), frame(0, b"c"));
        client.writer.write_all(&cat(&[a, b.clone(), c])).await.unwrap();
        client.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut server.reader).await, cat(&[b.clone(), b]));
        let faults: Vec<_> = s.proxy.injected().into_iter().map(|i| i.fault).collect();
        assert_eq!(faults, vec![FrameFault::Drop, FrameFault::Duplicate, FrameFault::Drop]);
    }

    #[tokio::test]
    async fn an_oversized_length_closes_the_connection() {
        for (plan, len) in [(FaultPlan::new(), u32::MAX), (FaultPlan::new().max_frame_len(16), 17)] {
            let mut s = setup(plan).await;
            let (mut client, mut server) = s.pair().await;
            let ok = frame(0, b"fine");
            client.writer.write_all(&ok).await.unwrap();
            client.writer.write_all(&len.to_be_bytes()).await.unwrap();
            client.writer.write_all(&[0; 17]).await.unwrap();
            assert_eq!(read_to_end(&mut server.reader).await, ok);
            assert_eq!(read_to_end(&mut client.reader).await, b"");
        }
    }

    #[tokio::test]
    async fn wait_injected_resolves_once_enough_faults_were_applied() {
        let plan = FaultPlan::new()
            .rule(Rule::new(Direction::ToServer, FrameFault::Drop).kind(FrameKind::Cancel).nth(2));
        let mut s = setup(plan).await;
        s.proxy.wait_injected(0).await;
        let waiter = tokio::spawn({
            let proxy = s.proxy.clone();
            async move {
                proxy.wait_injected(1).await;
                proxy.injected()
            }
        });
        let (mut client, _server) = s.pair().await;
        client.writer.write_all(&cat(&[frame(2, b"0"), frame(2, b"1"), frame(2, b"2")])).await.unwrap();
        assert_eq!(
            waiter.await.unwrap(),
            vec![injected(0, Direction::ToServer, FrameKind::Cancel, 2, FrameFault::Drop)]
        );
    }

    #[tokio::test]
    async fn cut_all_closes_current_connections_only() {
        let mut s = setup(FaultPlan::new()).await;
        let (mut c0, mut s0) = s.pair().await;
        let (mut c1, mut s1) = s.pair().await;
        s.proxy.cut_all();
        for io in [&mut c0, &mut s0, &mut c1, &mut s1] {
            assert_eq!(read_to_end(&mut io.reader).await, b"");
        }
        let (mut c2, mut s2) = s.pair().await;
        c2.writer.write_all(&frame(0, b"still relaying")).await.unwrap();
        assert_eq!(read_n(&mut s2.reader, 5 + 14).await, frame(0, b"still relaying"));
        assert_eq!(s.proxy.connections(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_target_closes_the_accepted_connection() {
        let proxy = FaultProxy::start(&memory("proxy"), memory("nobody"), FaultPlan::new()).await.unwrap();
        let mut client = transport::connect(proxy.address()).await.unwrap();
        assert_eq!(read_to_end(&mut client.reader).await, b"");
    }

    #[tokio::test]
    async fn stop_and_drop_end_relaying() {
        let mut s = setup(FaultPlan::new()).await;
        let (mut client, mut server) = s.pair().await;
        s.proxy.stop();
        assert_eq!(read_to_end(&mut client.reader).await, b"");
        assert_eq!(read_to_end(&mut server.reader).await, b"");
        // The listener goes too: dialling fails, or the connection is closed unrelayed.
        if let Ok(mut late) = transport::connect(s.proxy.address()).await {
            assert_eq!(read_to_end(&mut late.reader).await, b"");
        }

        let mut s = setup(FaultPlan::new()).await;
        let (mut client, mut server) = s.pair().await;
        let copy = s.proxy.clone();
        drop(s.proxy);
        client.writer.write_all(&frame(0, b"kept alive by a clone")).await.unwrap();
        assert_eq!(read_n(&mut server.reader, 26).await, frame(0, b"kept alive by a clone"));
        drop(copy);
        assert_eq!(read_to_end(&mut client.reader).await, b"");
        assert_eq!(read_to_end(&mut server.reader).await, b"");
    }

    #[tokio::test]
    async fn relays_over_tcp_too() {
        let mut server = transport::bind(&"tcp://127.0.0.1:0".parse().unwrap()).await.unwrap();
        let plan = FaultPlan::new().rule(Rule::new(Direction::ToServer, FrameFault::Duplicate));
        let proxy =
            FaultProxy::start(&"tcp://127.0.0.1:0".parse().unwrap(), server.local_address().clone(), plan)
                .await
                .unwrap();
        assert!(matches!(proxy.address(), Address::Tcp(addr) if addr.port() != 0));
        let mut client = transport::connect(proxy.address()).await.unwrap();
        let mut accepted = server.accept().await.unwrap();
        let a = frame(0, b"twice");
        client.writer.write_all(&HELLO_C).await.unwrap();
        client.writer.write_all(&a).await.unwrap();
        client.writer.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut accepted.reader).await, cat(&[HELLO_C.to_vec(), a.clone(), a]));
    }

    #[test]
    fn frame_kinds_and_seeds() {
        assert_eq!(FrameKind::of(&[0, 9]), FrameKind::Request);
        assert_eq!(FrameKind::of(&[1]), FrameKind::Reply);
        assert_eq!(FrameKind::of(&[2]), FrameKind::Cancel);
        assert_eq!(FrameKind::of(&[3]), FrameKind::Ack);
        assert_eq!(FrameKind::of(&[4]), FrameKind::Other);
        assert_eq!(FrameKind::of(&[]), FrameKind::Other);
        let seeds = [
            stream_seed(1, 0, Direction::ToServer),
            stream_seed(1, 0, Direction::ToClient),
            stream_seed(1, 1, Direction::ToServer),
            stream_seed(2, 0, Direction::ToServer),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
