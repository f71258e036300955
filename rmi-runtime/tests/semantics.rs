//! Invocation semantics under injected faults (`docs/SEMANTICS.md`): a counting servant behind a
//! fault-injecting relay ([`FaultProxy`]) that drops, delays, duplicates and reorders frames and
//! cuts connections mid-frame, at chosen frames or on a seeded random schedule.
//!
//! What must hold: an at-most-once call never runs twice; an idempotent call succeeds despite
//! broken connections (running again if need be); a one-way call never waits; every caller gets
//! its result or a typed error within its deadline plus a small margin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmi_runtime::fault::{Direction, FaultPlan, FaultProxy, FrameFault, FrameKind, Odds, Rule};
use rmi_runtime::{Config, Endpoint, Error, RetryPolicy, Stub, remote};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Counts how often each call ran.
#[remote]
pub trait Counter {
    /// Counts a run under `key`; returns the runs so far (at-most-once).
    async fn bump(&self, key: u64) -> u64;
    /// The same, idempotent (at-least-once).
    #[idempotent]
    async fn touch(&self, key: u64) -> u64;
    /// The same, one-way (maybe).
    #[oneway]
    async fn note(&self, key: u64);
    /// One-way, with a payload.
    #[oneway]
    async fn log(&self, line: String);
    /// Counts a run, then takes `ms` milliseconds; its deadline is 200 ms unless the caller says.
    #[op(timeout = "200ms")]
    async fn slow(&self, key: u64, ms: u64) -> u64;
}

#[derive(Default)]
struct Counts {
    runs: Mutex<HashMap<u64, u64>>,
    /// Signalled after each run is counted.
    ran: Notify,
    /// Signalled when a `slow` call's work is dropped before it ended.
    dropped: Notify,
}

impl Counts {
    fn count(&self, key: u64) -> u64 {
        let n = {
            let mut runs = self.runs.lock().unwrap();
            let n = runs.entry(key).or_default();
            *n += 1;
            *n
        };
        self.ran.notify_one();
        n
    }

    fn runs(&self, key: u64) -> u64 {
        self.runs.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.runs.lock().unwrap().values().sum()
    }
}

struct Servant(Arc<Counts>);

struct SignalOnDrop<'a>(&'a Notify, bool);

impl Drop for SignalOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.notify_one();
        }
    }
}

impl Counter for Servant {
    async fn bump(&self, key: u64) -> u64 {
        self.0.count(key)
    }

    async fn touch(&self, key: u64) -> u64 {
        self.0.count(key)
    }

    async fn note(&self, key: u64) {
        self.0.count(key);
    }

    async fn log(&self, line: String) {
        self.0.count(line.len() as u64);
    }

    async fn slow(&self, key: u64, ms: u64) -> u64 {
        let n = self.0.count(key);
        let mut guard = SignalOnDrop(&self.0.dropped, true);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.1 = false;
        n
    }
}

/// A server with a counting servant, a relay in front of it, and a client stub that dials the
/// relay (and dials it again after a cut).
struct Rig {
    server: Endpoint,
    _client: Endpoint,
    relay: FaultProxy,
    counter: CounterClient,
    counts: Arc<Counts>,
}

async fn rig(name: &str, plan: FaultPlan, server: Config, client: Config) -> Rig {
    let server = Endpoint::with_config(server);
    let target = server.listen(format!("memory://semantics-{name}")).await.unwrap();
    let counts = Arc::new(Counts::default());
    let reference = server.export(CounterSkeleton::new(Servant(Arc::clone(&counts))));
    let listen = format!("memory://semantics-{name}-relay").parse().unwrap();
    let relay = FaultProxy::start(&listen, target, plan).await.unwrap();
    let client = Endpoint::with_config(client);
    let counter: CounterClient = client.proxy_at(relay.address(), reference.object).await.unwrap();
    Rig { server, _client: client, relay, counter, counts }
}

/// Slack on top of a deadline for the error to reach the caller (a loaded debug build).
const MARGIN: Duration = Duration::from_millis(500);

/// Awaits `future` for at most `secs` seconds: no test hangs, even when the code under test does.
async fn within<F: std::future::Future>(secs: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), future).await.expect("test step timed out")
}

#[tokio::test]
async fn at_most_once_calls_never_run_twice_under_random_faults() {
    let timeout = Duration::from_secs(2);
    let odds = Odds {
        drop: 0.05,
        delay: 0.1,
        max_delay: Duration::from_millis(20),
        duplicate: 0.1,
        reorder: 0.05,
        cut: 0.03,
    };
    let retry = RetryPolicy::default().retries(8).resend_after(Some(Duration::from_millis(50)));
    let mut answered = 0;
    for seed in 1..=6u64 {
        let client = Config::default().call_timeout(timeout).retry(retry);
        let plan = FaultPlan::new().random(seed, odds);
        let r = rig(&format!("amo-{seed}"), plan, Config::default(), client).await;
        let calls: Vec<_> = (0..40u64)
            .map(|i| {
                let counter = r.counter.clone();
                let key = seed * 1000 + i;
                tokio::spawn(async move {
                    let start = Instant::now();
                    (key, counter.bump(key).await, start.elapsed())
                })
            })
            .collect();
        for call in calls {
            let (key, result, took) = within(10, call).await.unwrap();
            assert!(took <= timeout + MARGIN, "seed {seed}: call {key} took {took:?}");
            let runs = r.counts.runs(key);
            assert!(runs <= 1, "seed {seed}: call {key} ran {runs} times");
            match result {
                Ok(n) => {
                    assert_eq!((n, runs), (1, 1), "seed {seed}: call {key}");
                    answered += 1;
                }
                Err(e) => assert!(
                    matches!(e, Error::Timeout(_) | Error::ConnectionClosed(_) | Error::ReplyLost),
                    "seed {seed}: call {key}: {e:?}"
                ),
            }
        }
        assert!(!r.relay.injected().is_empty(), "seed {seed}: no fault injected");
        r.server.shutdown().await;
    }
    // Resending answers almost every call despite the faults: the test is not vacuous.
    assert!(answered >= 200, "only {answered} of 240 calls were answered");
}

/// The relay cuts the first reply on each of the first two connections in the middle of its
/// frame: the call's first two attempts ran, but their replies never arrived.
fn cut_first_two_replies() -> FaultPlan {
    let cut = |connection| {
        Rule::new(Direction::ToClient, FrameFault::Cut).kind(FrameKind::Reply).connection(connection)
    };
    FaultPlan::new().rule(cut(0)).rule(cut(1))
}

#[tokio::test]
async fn idempotent_calls_succeed_despite_dropped_connections_and_run_again() {
    let r = rig("idempotent-cuts", cut_first_two_replies(), Config::default(), Config::default()).await;
    for key in 0..20 {
        let start = Instant::now();
        assert!(within(10, r.counter.touch(key)).await.unwrap() >= 1);
        assert!(start.elapsed() < Config::DEFAULT_CALL_TIMEOUT);
    }
    // The first call ran on three connections: at-least-once.
    assert_eq!(r.counts.runs(0), 3);
    assert!((1..20).all(|key| r.counts.runs(key) == 1));
    assert_eq!(r.relay.connections(), 3);
    assert_eq!(r.relay.injected().len(), 2);
}

#[tokio::test]
async fn the_same_cuts_leave_an_at_most_once_call_run_once_answered_from_the_history() {
    let r = rig("at-most-once-cuts", cut_first_two_replies(), Config::default(), Config::default()).await;
    // Resent over the second and third connections with the same call id, the call is answered
    // from the reply history: one run, its first result.
    assert_eq!(within(10, r.counter.bump(0)).await.unwrap(), 1);
    assert_eq!(r.counts.runs(0), 1);
    assert_eq!(r.relay.connections(), 3);
    for key in 1..20 {
        assert_eq!(within(10, r.counter.bump(key)).await.unwrap(), 1);
    }
    assert_eq!(r.counts.total(), 20);
}

#[tokio::test]
async fn idempotent_calls_succeed_under_random_connection_cuts() {
    let odds = Odds { cut: 0.1, delay: 0.1, max_delay: Duration::from_millis(5), ..Odds::default() };
    let client =
        Config::default().retry(RetryPolicy::default().retries(12).max_backoff(Duration::from_millis(50)));
    for seed in [7u64, 8, 9] {
        let plan = FaultPlan::new().random(seed, odds);
        let r = rig(&format!("idempotent-random-{seed}"), plan, Config::default(), client.clone()).await;
        for key in 0..30 {
            within(10, r.counter.touch(key)).await.unwrap_or_else(|e| panic!("seed {seed}, call {key}: {e}"));
            assert!(r.counts.runs(key) >= 1);
        }
        assert!(r.relay.connections() > 1, "seed {seed}: no connection was cut");
    }
}

#[tokio::test]
async fn duplicated_and_reordered_requests_run_once() {
    let odds = Odds { duplicate: 0.5, reorder: 0.3, ..Odds::default() };
    let r = rig("duplicates", FaultPlan::new().random(11, odds), Config::default(), Config::default()).await;
    let calls: Vec<_> = (0..50u64)
        .map(|key| {
            let counter = r.counter.clone();
            tokio::spawn(async move { counter.bump(key).await })
        })
        .collect();
    for call in calls {
        // A reordered last frame waits for the next one: a few calls may time out, none twice.
        let _ = within(40, call).await.unwrap();
    }
    let duplicated = r.relay.injected().iter().filter(|i| i.fault == FrameFault::Duplicate).count();
    assert!(duplicated > 0);
    assert!((0..50).all(|key| r.counts.runs(key) <= 1), "a duplicated request ran twice");
}

#[tokio::test]
async fn a_repeat_after_the_history_forgot_the_call_is_reply_lost_and_does_not_run() {
    // The first reply is dropped; the client resends after 200 ms, by which time the server has
    // forgotten the call (history age 50 ms): it answers `ReplyLost` rather than run it again.
    let plan = FaultPlan::new()
        .rule(Rule::new(Direction::ToClient, FrameFault::Drop).kind(FrameKind::Reply).connection(0));
    let server = Config::default().reply_history_age(Duration::from_millis(50));
    let client =
        Config::default().retry(RetryPolicy::default().resend_after(Some(Duration::from_millis(200))));
    let r = rig("reply-lost", plan, server, client).await;
    let result = within(10, r.counter.bump(1)).await;
    assert!(matches!(result, Err(Error::ReplyLost)), "{result:?}");
    assert_eq!(r.counts.runs(1), 1, "the method ran once");
    assert!(!Error::ReplyLost.did_not_run());
    // The next call is fine.
    assert_eq!(within(10, r.counter.bump(2)).await.unwrap(), 1);
}

#[tokio::test]
async fn oneway_calls_return_at_once_and_run_once() {
    let r = rig("oneway", FaultPlan::new(), Config::default(), Config::default()).await;
    for key in 0..10 {
        within(1, r.counter.note(key)).await.unwrap();
    }
    while r.counts.total() < 10 {
        within(5, r.counts.ran.notified()).await;
    }
    assert!((0..10).all(|key| r.counts.runs(key) == 1));
}

#[tokio::test]
async fn oneway_calls_never_block_on_a_peer_that_does_not_read() {
    // The relay holds the first frame for an hour: it reads nothing more, the pipes fill, then
    // the client's write queue. One-way calls neither wait nor hang: they are queued, or refused
    // with `WriteQueueFull`.
    let plan =
        FaultPlan::new().rule(Rule::new(Direction::ToServer, FrameFault::Delay(Duration::from_secs(3600))));
    let r = rig("oneway-stalled", plan, Config::default(), Config::default().write_queue(8)).await;
    let line = "x".repeat(16 * 1024);
    let mut refused = 0;
    for _ in 0..200 {
        let start = Instant::now();
        match tokio::time::timeout(Duration::from_millis(500), r.counter.log(line.clone())).await {
            Ok(Ok(())) => {}
            Ok(Err(Error::WriteQueueFull { limit: 8 })) => refused += 1,
            Ok(Err(e)) => panic!("unexpected error {e:?}"),
            Err(_) => panic!("a one-way call blocked"),
        }
        assert!(start.elapsed() < Duration::from_millis(500));
    }
    assert!(refused > 0, "the write queue never filled");
    // A two-way call on the same stalled connection times out at its deadline instead.
    let start = Instant::now();
    let result = within(5, r.counter.with_timeout(Duration::from_millis(200)).bump(1)).await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert!(start.elapsed() < Duration::from_millis(200) + MARGIN);
}

#[tokio::test]
async fn a_oneway_call_with_no_connection_returns_at_once() {
    let r = rig("oneway-unreachable", FaultPlan::new(), Config::default(), Config::default()).await;
    // The relay goes away: the stub's connection is cut and nothing listens at its address.
    r.relay.stop();
    within(5, r.counter.proxy().connection().unwrap().closed()).await;
    let start = Instant::now();
    within(1, r.counter.note(1)).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(100));
    // The background dial fails; the call never ran (maybe semantics).
    let result = within(5, r.counter.bump(2)).await;
    assert!(matches!(result, Err(Error::Connect { .. })), "{result:?}");
    assert_eq!(r.counts.total(), 0);
}

#[tokio::test]
async fn every_call_ends_within_its_deadline_default_method_or_per_call() {
    let client = Config::default().call_timeout(Duration::from_millis(300));
    let r = rig("deadlines", FaultPlan::new(), Config::default(), client).await;
    let cases = [
        // `slow` has a 200 ms deadline of its own.
        (r.counter.clone(), Duration::from_millis(200)),
        // A per-call override wins over it.
        (r.counter.with_timeout(Duration::from_millis(100)), Duration::from_millis(100)),
        (r.counter.with_timeout(Duration::from_millis(400)), Duration::from_millis(400)),
    ];
    for (key, (counter, deadline)) in cases.into_iter().enumerate() {
        let start = Instant::now();
        let result = within(5, counter.slow(key as u64, 10_000)).await;
        let took = start.elapsed();
        assert!(matches!(result, Err(Error::Timeout(d)) if d == deadline), "{result:?}");
        assert!(took >= deadline && took <= deadline + MARGIN, "deadline {deadline:?}, took {took:?}");
        // The deadline travelled with the request: the server dropped the work when it passed.
        within(5, r.counts.dropped.notified()).await;
        assert!(start.elapsed() <= deadline + MARGIN);
    }
    // Methods without a deadline of their own get the endpoint's default; here every frame is
    // lost, so only the deadline ends the call.
    r.relay.set_plan(FaultPlan::new().random(3, Odds { drop: 1.0, ..Odds::default() }));
    let start = Instant::now();
    let result = within(5, r.counter.bump(10)).await;
    assert!(matches!(result, Err(Error::Timeout(d)) if d == Duration::from_millis(300)), "{result:?}");
    assert!(start.elapsed() <= Duration::from_millis(300) + MARGIN);
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_empty_the_reply_history_and_it_stays_bounded() {
    let server = Config::default().max_reply_history(64);
    let r = rig("history", FaultPlan::new(), server, Config::default()).await;
    for key in 0..100 {
        assert_eq!(r.counter.bump(key).await.unwrap(), 1);
        assert!(r.server.reply_history_len() <= 64, "the history outgrew its bound");
    }
    // The last replies' acknowledgements leave within the ack delay, with nothing else to send.
    tokio::time::sleep(Config::DEFAULT_ACK_DELAY * 2).await;
    assert_eq!(r.server.reply_history_len(), 0, "acknowledged replies are still kept");

    // A burst of concurrent calls from a client that holds its acknowledgements back: the
    // history keeps at most its limit, and forgets the rest once they are older than their
    // callers' deadlines.
    let quiet = Endpoint::with_config(
        Config::default().ack_delay(Duration::from_secs(3600)).call_timeout(Duration::from_secs(5)),
    );
    let counter: CounterClient = quiet.proxy_at(r.relay.address(), r.counter.proxy().object()).await.unwrap();
    let calls: Vec<_> = (1000..1500u64)
        .map(|key| {
            let counter = counter.clone();
            tokio::spawn(async move { counter.bump(key).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let kept = r.server.reply_history_len();
    assert!(kept > 0 && kept <= 64, "kept {kept}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(r.server.reply_history_len(), 0, "expired replies are still kept");
}
