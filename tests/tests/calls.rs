//! End-to-end calls through `#[remote]` stubs and skeletons, over the in-memory, TCP and Unix transports.

use std::time::{Duration, Instant};

use rmi_runtime::{Endpoint, Error, ObjectId, RemoteRef, Stub};
use rmi_tests::services::{
    Account, AccountClient, AccountError, AccountImpl, AccountSkeleton, CalcError, CalculatorClient,
    CalculatorImpl, CalculatorSkeleton, v1, v1_extended, v2,
};

/// A server endpoint listening on `addr` with a `Calculator` exported, and a client stub for it.
async fn calculator_at(addr: &str) -> (Endpoint, RemoteRef, CalculatorClient) {
    let server = Endpoint::new();
    server.listen(addr).await.expect("listen");
    let reference = server.export(CalculatorSkeleton::new(CalculatorImpl::default()));
    let client: CalculatorClient = Endpoint::new().proxy(&reference).await.expect("proxy");
    (server, reference, client)
}

async fn basic_calls(addr: &str) {
    let (server, _, calc) = calculator_at(addr).await;
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert_eq!(calc.div(7, 2).await.unwrap(), Ok(3));
    // The application error arrives typed, inside a successful call.
    assert_eq!(calc.div(1, 0).await.unwrap(), Err(CalcError::DivideByZero));
    let big = vec![7u8; 300_000];
    assert_eq!(calc.echo_bytes(big.clone()).await.unwrap(), big);
    assert_eq!(calc.calls().await.unwrap(), 4);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_memory() {
    basic_calls("memory://calls-over-memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tcp() {
    basic_calls("tcp://127.0.0.1:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_unix() {
    let dir = std::env::temp_dir().join(format!("rmi-test-{}", ObjectId::random()));
    std::fs::create_dir_all(&dir).unwrap();
    basic_calls(&format!("unix://{}", dir.join("s.sock").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_one_connection_are_all_answered() {
    let (server, _, calc) = calculator_at("tcp://127.0.0.1:0").await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let calc = calc.clone();
        // Earlier calls sleep longer, so replies come back out of order.
        calls.spawn(async move { (i, calc.echo_after((1000 - i) % 50, i * 3).await) });
    }
    let mut answered = 0;
    while let Some(done) = calls.join_next().await {
        let (i, reply) = done.unwrap();
        assert_eq!(reply.unwrap(), i * 3);
        answered += 1;
    }
    assert_eq!(answered, 1000);
    assert_eq!(calc.calls().await.unwrap(), 1000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_servant_gives_an_error_and_the_server_lives_on() {
    let (server, _, calc) = calculator_at("memory://panics").await;
    match calc.panic("boom".to_owned()).await {
        Err(Error::ServantPanicked(msg)) => assert!(msg.contains("boom"), "{msg}"),
        other => panic!("expected ServantPanicked, got {other:?}"),
    }
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_gives_a_timeout_within_the_deadline() {
    let (server, _, calc) = calculator_at("tcp://127.0.0.1:0").await;
    let deadline = Duration::from_millis(300);
    let start = Instant::now();
    let result = calc.with_timeout(deadline).hang().await;
    let took = start.elapsed();
    assert!(matches!(result, Err(Error::Timeout(d)) if d == deadline), "{result:?}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(1), "took {took:?}");
    // The connection is still good for other calls.
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_an_unexported_object_is_a_typed_framework_error() {
    let (server, reference, calc) = calculator_at("memory://unexported").await;
    let missing = ObjectId::random();
    let ghost: CalculatorClient =
        Endpoint::new().proxy_at(reference.address.as_ref().unwrap(), missing).await.unwrap();
    assert!(matches!(ghost.add(1, 2).await, Err(Error::NoSuchObject(id)) if id == missing));
    assert!(server.unexport(reference.object));
    assert!(matches!(calc.add(1, 2).await, Err(Error::NoSuchObject(_))));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_interface_or_version_fails_cleanly() {
    let server = Endpoint::new();
    let addr = server.listen("memory://versions").await.unwrap();
    let old = server.export(v1::EvolvingSkeleton::new(v1::Impl));
    let calc = server.export(CalculatorSkeleton::new(CalculatorImpl::default()));
    let client = Endpoint::new();

    // Checked locally from the reference, before any call.
    let wrong = client.proxy::<v2::EvolvingClient>(&old).await;
    assert!(matches!(wrong, Err(Error::WrongVersion { expected: 2, served: 1 })), "{wrong:?}");
    let wrong = client.proxy::<CalculatorClient>(&old).await;
    assert!(matches!(wrong, Err(Error::WrongInterface { .. })), "{wrong:?}");

    // Checked by the server when the caller only has an address and an id.
    let v2_at_v1: v2::EvolvingClient = client.proxy_at(&addr, old.object).await.unwrap();
    assert!(matches!(v2_at_v1.get().await, Err(Error::WrongVersion { expected: 2, served: 1 })));
    let calc_as_evolving: v1::EvolvingClient = client.proxy_at(&addr, calc.object).await.unwrap();
    assert!(matches!(calc_as_evolving.get().await, Err(Error::WrongInterface { .. })));

    // Adding a method keeps the old operation ids: the old server still answers `get`.
    let extended: v1_extended::EvolvingClient = client.proxy_at(&addr, old.object).await.unwrap();
    assert_eq!(extended.get().await.unwrap(), 1);
    assert!(matches!(extended.get_more().await, Err(Error::NoSuchOperation { .. })));
    server.shutdown().await;
}

/// Generic over the trait: runs against a local servant and a remote client alike.
async fn drain<A: Account>(account: &A) -> Result<u64, AccountError> {
    let balance = account.balance().await?;
    account.withdraw(balance / 2).await?;
    account.withdraw(balance).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_implements_the_trait_when_errors_convert() {
    let local = AccountImpl(std::sync::Mutex::new(100));
    assert!(matches!(drain(&local).await, Err(AccountError::Insufficient { available: 50 })));

    let server = Endpoint::new();
    server.listen("memory://accounts").await.unwrap();
    let reference = server.export(AccountSkeleton::new(AccountImpl(std::sync::Mutex::new(100))));
    let remote: AccountClient = Endpoint::new().proxy(&reference).await.unwrap();
    assert!(matches!(drain(&remote).await, Err(AccountError::Insufficient { available: 50 })));

    // A framework error becomes the trait's error through `From`.
    server.unexport(reference.object);
    match drain(&remote).await {
        Err(AccountError::Remote(msg)) => assert!(msg.contains("no such object"), "{msg}"),
        other => panic!("expected a converted framework error, got {other:?}"),
    }
    server.shutdown().await;
}
