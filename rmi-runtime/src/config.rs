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
    /// Deadline of a call unless the proxy sets another with `with_timeout` (default 30 s).
    pub call_timeout: Duration,
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

    /// The same configuration with every value brought into its valid range (for configurations
    /// built by assigning the public fields).
    pub(crate) fn sanitized(self) -> Self {
        let max_frame_len = self.max_frame_len;
        let max_in_flight = self.max_in_flight;
        let write_queue = self.write_queue;
        let dgc_lease = self.dgc_lease;
        self.max_frame_len(max_frame_len)
            .max_in_flight(max_in_flight)
            .write_queue(write_queue)
            .dgc_lease(dgc_lease)
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
