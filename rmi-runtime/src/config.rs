//! Limits and timeouts of an endpoint.

use std::time::Duration;

use tokio::sync::Semaphore;

/// The limits and timeouts of an [`Endpoint`](crate::Endpoint). Every limit has a default and a
/// setting.
///
/// Fields are public; the builder-style methods of the same names set them one at a time:
///
/// ```
/// use std::time::Duration;
/// use rmi_runtime::Config;
///
/// let config = Config::default().max_frame_len(1 << 20).call_timeout(Duration::from_secs(5));
/// assert_eq!(config.max_frame_len, 1 << 20);
/// assert_eq!(config.max_in_flight, 4096);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest frame body, in bytes, that this endpoint sends or accepts (default 16 MiB).
    ///
    /// A peer announcing a larger frame has its connection closed before anything is allocated for
    /// it; a call whose request would be larger fails with `Error::FrameTooLarge` without touching the
    /// connection; a reply that would be larger is replaced by `Fault::ReplyTooLarge`. Both ends of a
    /// connection should use the same limit.
    pub max_frame_len: usize,
    /// Most calls in flight on one connection, in each direction (default 4096).
    ///
    /// For calls this endpoint serves, a request beyond the limit is answered at once with
    /// `Fault::Overloaded`. For calls this endpoint issues, a call waits (within its deadline) for
    /// one of the earlier calls to finish.
    pub max_in_flight: usize,
    /// Time allowed to establish a connection: the transport's connect and the exchange of the
    /// handshake preambles (default 5 s).
    pub handshake_timeout: Duration,
    /// Most connections a listening endpoint keeps open that it accepted (default 1024); a further
    /// connection is closed at once.
    pub max_connections: usize,
    /// Deadline of a call unless its method's `#[op(timeout = "...")]` or the stub's
    /// `with_timeout` sets another (default 30 s).
    pub call_timeout: Duration,
    /// How calls are resent after a transport failure (default: up to 4 retries, backoff from 20 ms
    /// doubling to 1 s, no resend on a live connection). See [`RetryPolicy`].
    pub retry: RetryPolicy,
    /// Longest time this endpoint keeps the reply of an at-most-once call it served for a
    /// repeated request, if the caller does not acknowledge it first (default 2 min). An entry is
    /// kept no longer than its caller's deadline either: after it, the caller does not resend.
    pub reply_history_age: Duration,
    /// Most replies kept in the reply history (default 65,536); beyond it the oldest are
    /// forgotten (a repeat of one is answered `Error::ReplyLost`, never run again).
    pub max_reply_history: usize,
    /// Most bytes of replies kept in the reply history (default 64 MiB); beyond it the oldest are
    /// forgotten.
    pub max_reply_history_bytes: usize,
    /// How long a caller may hold back the acknowledgements of replies it received, to send them
    /// with its next request rather than in a frame of their own (default 50 ms).
    pub ack_delay: Duration,
    /// Frames queued for one connection's writer before senders wait (default 1024).
    pub write_queue: usize,
    /// How long [`Endpoint::shutdown`](crate::Endpoint::shutdown) waits for calls in flight to finish
    /// before it aborts them (default 10 s).
    pub shutdown_grace: Duration,
    /// How long a closed connection may still take to write the frames queued before the close
    /// (the last replies) to a peer that does not read them, before the stream is dropped
    /// (default 5 s).
    pub close_linger: Duration,
    /// The lease this endpoint grants to the holders of references to its collected objects
    /// (default 30 s; at least 10 ms, at most one day): a peer that holds one renews every third of
    /// it, and one that stops renewing (it died, or lost its connection) is taken for gone when it
    /// runs out. It is also how long a reference this endpoint sent stays protected until its
    /// receiver registers (a reference in transit). See [`dgc`](crate::dgc).
    pub dgc_lease: Duration,
    /// Most peers that may hold references to this endpoint's collected objects at once (default
    /// 10,000); a further peer's registration is refused, and its references may stop working.
    pub max_dgc_holders: usize,
    /// Most other endpoints whose objects this endpoint holds references to and keeps leases with
    /// (default 1024). References to objects of further endpoints still work, but hold nothing:
    /// their objects may be collected (a guard against peers that hand out references to
    /// countless endpoints).
    pub max_held_endpoints: usize,
}

impl Config {
    /// Default of [`Config::max_frame_len`]: 16 MiB.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;
    /// Default of [`Config::max_in_flight`].
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
    /// Default of [`Config::handshake_timeout`].
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default of [`Config::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Default of [`Config::call_timeout`].
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of [`Config::write_queue`].
    pub const DEFAULT_WRITE_QUEUE: usize = 1024;
    /// Default of [`Config::shutdown_grace`].
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
    /// Default of [`Config::close_linger`].
    pub const DEFAULT_CLOSE_LINGER: Duration = Duration::from_secs(5);
    /// Default of [`Config::dgc_lease`].
    pub const DEFAULT_DGC_LEASE: Duration = Duration::from_secs(30);
    /// Default of [`Config::max_dgc_holders`].
    pub const DEFAULT_MAX_DGC_HOLDERS: usize = 10_000;
    /// Default of [`Config::max_held_endpoints`].
    pub const DEFAULT_MAX_HELD_ENDPOINTS: usize = 1024;
    /// Default of [`Config::reply_history_age`].
    pub const DEFAULT_REPLY_HISTORY_AGE: Duration = Duration::from_secs(120);
    /// Default of [`Config::max_reply_history`].
    pub const DEFAULT_MAX_REPLY_HISTORY: usize = 65_536;
    /// Default of [`Config::max_reply_history_bytes`].
    pub const DEFAULT_MAX_REPLY_HISTORY_BYTES: usize = 64 << 20;
    /// Default of [`Config::ack_delay`].
    pub const DEFAULT_ACK_DELAY: Duration = Duration::from_millis(50);
    /// Shortest [`Config::dgc_lease`].
    pub const MIN_DGC_LEASE: Duration = Duration::from_millis(10);
    /// Longest [`Config::dgc_lease`].
    pub const MAX_DGC_LEASE: Duration = Duration::from_secs(86_400);

    /// Sets [`Config::max_frame_len`]; at most `u32::MAX`, and values below 64 are raised to 64 (a
    /// frame must hold at least a header).
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = bytes.clamp(64, u32::MAX as usize);
        self
    }

    /// Sets [`Config::max_in_flight`] (at least 1, at most `u32::MAX` and
    /// [`Semaphore::MAX_PERMITS`](tokio::sync::Semaphore::MAX_PERMITS)).
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.clamp(1, (u32::MAX as usize).min(Semaphore::MAX_PERMITS));
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::max_connections`].
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`Config::call_timeout`].
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets [`Config::write_queue`] (at least 1, at most
    /// [`Semaphore::MAX_PERMITS`](tokio::sync::Semaphore::MAX_PERMITS)).
    pub fn write_queue(mut self, frames: usize) -> Self {
        self.write_queue = frames.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Sets [`Config::shutdown_grace`].
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Sets [`Config::close_linger`].
    pub fn close_linger(mut self, linger: Duration) -> Self {
        self.close_linger = linger;
        self
    }

    /// Sets [`Config::dgc_lease`], clamped to [`Config::MIN_DGC_LEASE`]..=[`Config::MAX_DGC_LEASE`].
    pub fn dgc_lease(mut self, lease: Duration) -> Self {
        self.dgc_lease = lease.clamp(Self::MIN_DGC_LEASE, Self::MAX_DGC_LEASE);
        self
    }

    /// Sets [`Config::max_dgc_holders`].
    pub fn max_dgc_holders(mut self, peers: usize) -> Self {
        self.max_dgc_holders = peers;
        self
    }

    /// Sets [`Config::max_held_endpoints`].
    pub fn max_held_endpoints(mut self, endpoints: usize) -> Self {
        self.max_held_endpoints = endpoints;
        self
    }

    /// Sets [`Config::retry`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets [`Config::reply_history_age`]; at most one day.
    pub fn reply_history_age(mut self, age: Duration) -> Self {
        self.reply_history_age = age.min(Duration::from_secs(86_400));
        self
    }

    /// Sets [`Config::max_reply_history`].
    pub fn max_reply_history(mut self, replies: usize) -> Self {
        self.max_reply_history = replies;
        self
    }

    /// Sets [`Config::max_reply_history_bytes`].
    pub fn max_reply_history_bytes(mut self, bytes: usize) -> Self {
        self.max_reply_history_bytes = bytes;
        self
    }

    /// Sets [`Config::ack_delay`]; at least 1 ms.
    pub fn ack_delay(mut self, delay: Duration) -> Self {
        self.ack_delay = delay.max(Duration::from_millis(1));
        self
    }

    /// The same configuration with every value brought into its valid range (for configurations
    /// built by assigning the public fields).
    pub(crate) fn sanitized(self) -> Self {
        let max_frame_len = self.max_frame_len;
        let max_in_flight = self.max_in_flight;
        let write_queue = self.write_queue;
        let dgc_lease = self.dgc_lease;
        let ack_delay = self.ack_delay;
        let reply_history_age = self.reply_history_age;
        self.max_frame_len(max_frame_len)
            .max_in_flight(max_in_flight)
            .write_queue(write_queue)
            .dgc_lease(dgc_lease)
            .ack_delay(ack_delay)
            .reply_history_age(reply_history_age)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            write_queue: Self::DEFAULT_WRITE_QUEUE,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            close_linger: Self::DEFAULT_CLOSE_LINGER,
            dgc_lease: Self::DEFAULT_DGC_LEASE,
            max_dgc_holders: Self::DEFAULT_MAX_DGC_HOLDERS,
            max_held_endpoints: Self::DEFAULT_MAX_HELD_ENDPOINTS,
            retry: RetryPolicy::default(),
            reply_history_age: Self::DEFAULT_REPLY_HISTORY_AGE,
            max_reply_history: Self::DEFAULT_MAX_REPLY_HISTORY,
            max_reply_history_bytes: Self::DEFAULT_MAX_REPLY_HISTORY_BYTES,
            ack_delay: Self::DEFAULT_ACK_DELAY,
        }
    }
}

/// How a call is resent when the transport fails: how many times, and how long to wait in between.
///
/// At-most-once calls (the default) and `#[idempotent]` calls are resent after a connection could
/// not be made or broke before the reply came, always within the call's deadline; `#[oneway]`
/// calls never are. An at-most-once call keeps its id, so the server recognises the repeat and
/// answers it from its reply history. The first retry after a broken connection goes at once
/// (the proxy dials again); each later one waits a backoff that doubles from
/// [`RetryPolicy::initial_backoff`] up to [`RetryPolicy::max_backoff`], half of it random-looking
/// (derived from the call id) so that many callers do not retry in step.
///
/// ```
/// use std::time::Duration;
/// use rmi_runtime::{Config, RetryPolicy};
///
/// let config = Config::default().retry(RetryPolicy::default().retries(2).max_backoff(Duration::from_millis(200)));
/// assert_eq!(config.retry.retries, 2);
/// let never = RetryPolicy::none();
/// assert_eq!(never.retries, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Most times a call is resent after its first attempt (default 4).
    pub retries: u32,
    /// Wait before the second retry (default 20 ms).
    pub initial_backoff: Duration,
    /// Longest wait between retries (default 1 s).
    pub max_backoff: Duration,
    /// Resend a request on the same, live connection when no reply came within this time
    /// (default `None`: never; over TCP a frame is not lost while its connection lives). For
    /// transports that may lose frames; each resend counts as a retry.
    pub resend_after: Option<Duration>,
}

impl RetryPolicy {
    /// Default of [`RetryPolicy::retries`].
    pub const DEFAULT_RETRIES: u32 = 4;
    /// Default of [`RetryPolicy::initial_backoff`].
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(20);
    /// Default of [`RetryPolicy::max_backoff`].
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(1);

    /// No retries: a transport failure is the call's error.
    pub fn none() -> Self {
        Self { retries: 0, ..Self::default() }
    }

    /// Sets [`RetryPolicy::retries`].
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`RetryPolicy::initial_backoff`].
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Sets [`RetryPolicy::max_backoff`]; at most one hour.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff.min(Duration::from_secs(3600));
        self
    }

    /// Sets [`RetryPolicy::resend_after`]; at least 1 ms.
    pub fn resend_after(mut self, after: Option<Duration>) -> Self {
        self.resend_after = after.map(|d| d.max(Duration::from_millis(1)));
        self
    }

    /// The wait before retry number `retry` (1 for the first) of call `call`.
    pub(crate) fn backoff(&self, retry: u32, call: u64) -> Duration {
        if retry <= 1 {
            return Duration::ZERO;
        }
        let doubled = self.initial_backoff.saturating_mul(1 << (retry - 2).min(20));
        let full = doubled.min(self.max_backoff).min(Duration::from_secs(3600));
        // Half fixed, half spread by a hash of the call and the retry ("equal jitter").
        let half = full / 2;
        let spread = (call ^ u64::from(retry).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
        let fraction = spread as f64 / (1u64 << 53) as f64;
        half + half.mul_f64(fraction)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: Self::DEFAULT_RETRIES,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            resend_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.max_frame_len, 16 * 1024 * 1024);
        assert_eq!(c.max_in_flight, 4096);
        assert_eq!(c.handshake_timeout, Duration::from_secs(5));
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.call_timeout, Duration::from_secs(30));
        assert_eq!(c.write_queue, 1024);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.close_linger, Duration::from_secs(5));
        assert_eq!(c.dgc_lease, Duration::from_secs(30));
        assert_eq!(c.max_dgc_holders, 10_000);
        assert_eq!(c.max_held_endpoints, 1024);
        assert_eq!(c.reply_history_age, Duration::from_secs(120));
        assert_eq!(c.max_reply_history, 65_536);
        assert_eq!(c.max_reply_history_bytes, 64 << 20);
        assert_eq!(c.ack_delay, Duration::from_millis(50));
        let r = c.retry;
        assert_eq!(
            (r.retries, r.initial_backoff, r.max_backoff),
            (4, Duration::from_millis(20), Duration::from_secs(1))
        );
        assert_eq!(r.resend_after, None);
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum_with_half_of_it_spread() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(1, 7), Duration::ZERO, "the first retry goes at once");
        for call in [1u64, 2, 99, u64::MAX] {
            for (retry, full) in [(2, 20), (3, 40), (4, 80), (10, 1000), (60, 1000)] {
                let wait = r.backoff(retry, call);
                let full = Duration::from_millis(full);
                assert!(wait >= full / 2 && wait <= full, "retry {retry} of call {call}: {wait:?}");
            }
        }
        assert_ne!(r.backoff(3, 1), r.backoff(3, 2), "calls do not retry in step");
    }

    #[test]
    fn out_of_range_values_are_brought_into_range() {
        let c =
            Config { max_in_flight: 0, write_queue: 0, max_frame_len: 1, ..Config::default() }.sanitized();
        assert_eq!((c.max_in_flight, c.write_queue, c.max_frame_len), (1, 1, 64));
        let c =
            Config { max_in_flight: usize::MAX, write_queue: usize::MAX, ..Config::default() }.sanitized();
        assert!(c.max_in_flight <= Semaphore::MAX_PERMITS && c.write_queue <= Semaphore::MAX_PERMITS);
    }

    #[tokio::test]
    async fn the_largest_settings_make_working_connections() {
        // Queues and permits are created per connection: a setting past tokio's limits would panic.
        let config = Config::default().write_queue(usize::MAX).max_in_flight(usize::MAX);
        let server = crate::Endpoint::with_config(config.clone());
        let address = server.listen("memory://config-unit-largest").await.unwrap();
        let conn = crate::Endpoint::with_config(config).connect(&address).await.unwrap();
        assert!(!conn.is_closed());
        server.shutdown().await;
    }
}
