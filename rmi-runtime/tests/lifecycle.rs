//! Connections that die, endpoints that shut down, and calls in the other direction.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::FutureExt;
use rmi_runtime::{Config, Endpoint, Error, RetryPolicy, Stub};

#[tokio::test]
async fn a_connection_dropped_mid_call_is_resent_and_the_call_runs_once() {
    let s = setup("tcp").await;
    let lab = s.lab.clone();
    let call = tokio::spawn(async move { lab.gate().await });
    within(5, s.probe.started.notified()).await;

    // The server drops the connection while the call runs; the call runs on, and the client
    // dials again and resends the request with the same call id.
    let first = s.lab.0.connection().unwrap().clone();
    s.server.connection_to(s.client.id()).expect("accepted connection").close();
    within(5, first.closed()).await;
    s.probe.release.notify_one();
    assert_eq!(within(5, call).await.unwrap().unwrap(), 7, "the reply came over the new connection");
    assert!(s.probe.started.notified().now_or_never().is_none(), "the call ran twice");
    let second = s.client.connection_to(s.server.id()).expect("a new connection");
    assert!(first.is_closed() && !second.is_closed());
}

#[tokio::test]
async fn without_retries_a_connection_dropped_mid_call_fails_the_call_promptly() {
    let s = setup_with("tcp", Config::default(), Config::default().retry(RetryPolicy::none())).await;
    let lab = s.lab.clone();
    let call = tokio::spawn(async move { lab.hang().await });
    within(5, s.probe.started.notified()).await;

    let started = Instant::now();
    s.server.connection_to(s.client.id()).expect("accepted connection").close();
    let r = within(5, call).await.unwrap();
    assert!(matches!(r, Err(Error::ConnectionClosed(_))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // The proxy dials again on its next call; new proxies use the new connection too.
    assert_eq!(within(5, s.lab.add(1, 1)).await.unwrap(), 2);
    let fresh: LabClient = within(5, s.client.proxy(&s.reference)).await.unwrap();
    assert_eq!(within(5, fresh.add(1, 1)).await.unwrap(), 2);
    assert!(!fresh.proxy().connection().unwrap().is_closed());
}

#[tokio::test]
async fn a_server_that_shuts_down_mid_call_fails_the_call_promptly() {
    let s =
        setup_with("tcp", Config::default().shutdown_grace(Duration::from_millis(100)), Config::default())
            .await;
    let lab = s.lab.clone();
    let call = tokio::spawn(async move { lab.hang().await });
    within(5, s.probe.started.notified()).await;
    within(5, s.server.shutdown()).await;
    let r = within(5, call).await.unwrap();
    assert!(matches!(r, Err(Error::ConnectionClosed(_))), "{r:?}");
}

#[tokio::test]
async fn graceful_shutdown_lets_a_call_in_flight_finish() {
    let s = setup("tcp").await;
    let lab = s.lab.clone();
    let in_flight = tokio::spawn(async move { lab.gate().await });
    within(5, s.probe.started.notified()).await;

    let shutdown = tokio::spawn(s.server.shutdown());
    assert!(s.server.is_shutting_down());
    // New calls are refused while the one in flight runs on.
    assert!(matches!(within(5, s.lab.add(1, 1)).await, Err(Error::ShuttingDown)));
    s.probe.release.notify_one();
    assert_eq!(within(5, in_flight).await.unwrap().unwrap(), 7);
    within(5, shutdown).await.unwrap();

    // Afterwards the connection is closed and nothing listens any more.
    within(5, s.lab.0.connection().unwrap().closed()).await;
    let late = Endpoint::new();
    assert!(matches!(within(5, late.connect(&s.address)).await, Err(Error::Connect { .. })));
    assert!(matches!(s.server.listen("tcp://127.0.0.1:0").await, Err(Error::ShuttingDown)));
}

#[tokio::test]
async fn the_listening_side_calls_back_over_the_connection_the_client_dialled() {
    let s = setup("memory").await;
    // The client does not listen: its object is reachable only over the connection it opened.
    let (callback, _probe, _records) = lab("client-side");
    let callback_ref = s.client.export(callback);
    assert!(callback_ref.address.is_none());
    assert_eq!(within(5, s.lab.whoami()).await.unwrap(), "server");

    let back: LabClient = within(5, s.server.proxy(&callback_ref)).await.unwrap();
    assert!(!back.proxy().connection().unwrap().dialled(), "the server uses the connection it accepted");
    assert_eq!(back.proxy().connection().unwrap().peer_endpoint(), s.client.id());
    assert_eq!(within(5, back.whoami()).await.unwrap(), "client-side");
    assert_eq!(within(5, back.add(20, 22)).await.unwrap(), 42);
    assert_eq!(s.server.connections().len(), 1, "no second connection was opened");

    // Calls in both directions at once on the one connection.
    let (a, b) = within(10, async { tokio::join!(s.lab.sleep(20, 1), back.sleep(20, 2)) }).await;
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));

    // proxy_over names the connection explicitly.
    let conn = s.server.connection_to(s.client.id()).unwrap();
    let again: LabClient = s.server.proxy_over(&conn, &callback_ref).unwrap();
    assert_eq!(within(5, again.whoami()).await.unwrap(), "client-side");
}

#[tokio::test]
async fn a_reference_without_address_or_connection_cannot_be_reached() {
    let lonely = Endpoint::new();
    let (skeleton, _probe, _records) = lab("lonely");
    let reference = lonely.export(skeleton);
    let other = Endpoint::new();
    let r = other.proxy::<LabClient>(&reference).await;
    assert!(matches!(r, Err(Error::Connect { .. })), "{r:?}");
}

#[tokio::test]
async fn connections_are_pooled_per_address() {
    let s = setup("tcp").await;
    let a = within(5, s.client.connect(&s.address)).await.unwrap();
    let b = within(5, s.client.connect(&s.address)).await.unwrap();
    assert_eq!(s.client.connections().len(), 1);
    assert_eq!(a.peer_endpoint(), b.peer_endpoint());
    a.close();
    assert!(b.is_closed(), "a clone shares the connection");
    let c = within(5, s.client.connect(&s.address)).await.unwrap();
    assert!(!c.is_closed(), "a dead connection is replaced");
}

#[tokio::test]
async fn listening_on_a_bad_or_busy_address_is_a_listen_error() {
    let ep = Endpoint::new();
    assert!(matches!(ep.listen("carrier-pigeon://home").await, Err(Error::Listen { .. })));
    let name = fresh("memory");
    ep.listen(name.as_str()).await.unwrap();
    let r = Endpoint::new().listen(&name).await;
    assert!(matches!(r, Err(Error::Listen { .. })), "{r:?}");
    assert_eq!(ep.address().unwrap().to_string(), name);
    ep.shutdown().await;
    // Shutting down freed the name.
    let again = Endpoint::new();
    again.listen(name).await.unwrap();
}

#[tokio::test]
async fn a_shutdown_whose_first_future_was_dropped_is_finished_by_the_next_call() {
    let s = setup("tcp").await;
    drop(s.server.shutdown());
    assert!(matches!(within(5, s.lab.add(1, 1)).await, Err(Error::ShuttingDown)));
    within(5, s.server.shutdown()).await;
    within(5, s.lab.0.connection().unwrap().closed()).await;
    // And once finished, further calls return at once.
    within(5, s.server.shutdown()).await;
}
