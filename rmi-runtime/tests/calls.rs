//! Calls end to end: each transport, many calls in flight, every fault a call can meet.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// An operation `Lab` does not have.
static NOPE: rmi_runtime::MethodDescriptor = rmi_runtime::MethodDescriptor::new("nope", rmi_runtime::OpId(1));
use rmi_runtime::{Config, Endpoint, Error, InterfaceId, ObjectId, RemoteRef, Stub};

async fn round_trip(kind: &str) {
    let s = setup(kind).await;
    assert_eq!(within(5, s.lab.echo("hello")).await.unwrap(), "hello");
    assert_eq!(within(5, s.lab.add(2, 40)).await.unwrap(), 42);
    assert_eq!(within(5, s.lab.div(7, 2)).await.unwrap(), Ok(3));
    assert_eq!(within(5, s.lab.div(7, 0)).await.unwrap(), Err("division by zero".to_owned()));
    let conn = s.lab.0.connection().unwrap();
    assert_eq!(conn.peer_endpoint(), s.server.id());
    assert!(conn.dialled());
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_call_over_the_memory_transport() {
    round_trip("memory").await;
}

#[tokio::test]
async fn a_call_over_tcp() {
    round_trip("tcp").await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_call_over_a_unix_socket() {
    round_trip("unix").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_one_connection_are_answered_out_of_order() {
    let s = setup("tcp").await;
    let finished = Arc::new(Mutex::new(Vec::new()));
    let calls = (0..1000u32).map(|i| {
        let lab = &s.lab;
        let finished = Arc::clone(&finished);
        async move {
            // Early calls sleep longest, so their replies overtake one another.
            let tag = lab.sleep(u64::from((999 - i) % 20), i).await.unwrap();
            finished.lock().unwrap().push(tag);
            (i, tag)
        }
    });
    let results = within(30, futures_util::future::join_all(calls)).await;
    assert!(results.iter().all(|(i, tag)| i == tag), "every call got its own reply");
    let order = finished.lock().unwrap().clone();
    assert_eq!(order.len(), 1000);
    assert!(order.windows(2).any(|w| w[0] > w[1]), "replies came back out of order");
    assert_eq!(s.client.connections().len(), 1, "one connection carried every call");
    assert_eq!(s.server.connections().len(), 1);
}

#[tokio::test]
async fn an_unknown_object_is_no_such_object() {
    let s = setup("memory").await;
    let ghost = ObjectId::random();
    let lab = raw_proxy(&s, ghost, LAB.id, LAB.version);
    match within(5, lab.echo("x")).await {
        Err(Error::NoSuchObject(id)) => assert_eq!(id, ghost),
        other => panic!("expected NoSuchObject, got {other:?}"),
    }
    // An unexported object is gone too.
    assert!(s.server.unexport(s.reference.object));
    assert_eq!(s.server.exported_count(), 0);
    assert!(matches!(within(5, s.lab.echo("x")).await, Err(Error::NoSuchObject(_))));
}

#[tokio::test]
async fn a_wrong_interface_or_version_is_refused_by_the_server() {
    let s = setup("memory").await;
    let other = InterfaceId::from_name("Other");
    let lab = raw_proxy(&s, s.reference.object, other, 1);
    match within(5, lab.echo("x")).await {
        Err(Error::WrongInterface { expected, served }) => assert_eq!((expected, served), (other, LAB.id)),
        r => panic!("expected WrongInterface, got {r:?}"),
    }
    let lab = raw_proxy(&s, s.reference.object, LAB.id, 2);
    match within(5, lab.echo("x")).await {
        Err(Error::WrongVersion { expected, served }) => assert_eq!((expected, served), (2, 1)),
        r => panic!("expected WrongVersion, got {r:?}"),
    }
}

#[tokio::test]
async fn a_reference_of_another_interface_is_refused_before_connecting() {
    let s = setup("memory").await;
    let reference = RemoteRef { interface: InterfaceId::from_name("Other"), ..s.reference.clone() };
    assert!(matches!(s.client.proxy::<LabClient>(&reference).await, Err(Error::WrongInterface { .. })));
    let reference = RemoteRef { version: 9, ..s.reference.clone() };
    match s.client.proxy::<LabClient>(&reference).await {
        Err(Error::WrongVersion { expected: 1, served: 9 }) => {}
        r => panic!("expected WrongVersion, got {r:?}"),
    }
}

#[tokio::test]
async fn a_servant_panic_is_an_error_and_the_server_lives_on() {
    let s = setup("tcp").await;
    match within(5, s.lab.panic()).await {
        Err(Error::ServantPanicked(msg)) => assert!(msg.contains("on purpose"), "{msg}"),
        r => panic!("expected ServantPanicked, got {r:?}"),
    }
    assert_eq!(within(5, s.lab.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn a_short_deadline_is_kept_while_a_longer_call_waits_on_the_same_connection() {
    let s = setup("tcp").await;
    // Issued first, waiting far longer: the connection's deadline timer is set for it.
    let long = tokio::spawn({
        let lab = s.lab.with_timeout(Duration::from_secs(30));
        async move { lab.hang().await }
    });
    within(5, s.probe.started.notified()).await;
    // Then one that must give up much earlier.
    let deadline = Duration::from_millis(150);
    let started = Instant::now();
    let result = within(5, s.lab.with_timeout(deadline).hang()).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout(d)) if d == deadline), "{result:?}");
    assert!(elapsed >= deadline && elapsed < deadline + Duration::from_secs(1), "took {elapsed:?}");
    assert!(!long.is_finished(), "the longer call ended with the shorter one");
    long.abort();
}

#[tokio::test]
async fn a_call_to_a_servant_that_never_answers_times_out() {
    let s = setup("tcp").await;
    let deadline = Duration::from_millis(200);
    let started = Instant::now();
    let result = within(5, s.lab.with_timeout(deadline).hang()).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout(d)) if d == deadline), "{result:?}");
    assert!(elapsed >= deadline && elapsed < deadline + Duration::from_secs(1), "took {elapsed:?}");
    // The server dropped the abandoned work.
    within(5, s.probe.dropped.notified()).await;
    assert_eq!(within(5, s.lab.add(1, 2)).await.unwrap(), 3, "the connection still works");
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server() {
    let s = setup("memory").await;
    // A long deadline: only the cancel frame can stop the servant quickly.
    let lab = s.lab.with_timeout(Duration::from_secs(600));
    tokio::select! {
        r = lab.hang() => panic!("hang returned {r:?}"),
        () = s.probe.started.notified() => {}
    }
    within(5, s.probe.dropped.notified()).await;
}

#[tokio::test]
async fn calls_beyond_the_servers_in_flight_limit_are_overloaded() {
    let s = setup_with("memory", Config::default().max_in_flight(1), Config::default()).await;
    let lab = s.lab.clone();
    let gate = tokio::spawn(async move { lab.gate().await });
    within(5, s.probe.started.notified()).await;
    assert!(matches!(within(5, s.lab.add(1, 1)).await, Err(Error::Overloaded { limit: 1 })));
    s.probe.release.notify_one();
    assert_eq!(within(5, gate).await.unwrap().unwrap(), 7);
    assert_eq!(within(5, s.lab.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn a_oneway_call_runs_without_a_reply() {
    let mut s = setup("memory").await;
    within(5, s.lab.record_oneway(41)).await.unwrap();
    assert_eq!(within(5, s.records.recv()).await, Some(41));
}

#[tokio::test]
async fn arguments_of_the_wrong_type_are_bad_arguments() {
    let s = setup("memory").await;
    let r = s.lab.0.call::<_, i32, rmi_runtime::NoError>(method(ADD), &("not", "numbers")).await;
    assert!(matches!(r, Err(Error::BadArguments(_))), "{r:?}");
    let r = s.lab.0.call::<_, (), rmi_runtime::NoError>(&NOPE, &()).await;
    assert!(matches!(r, Err(Error::NoSuchOperation { .. })), "{r:?}");
}

#[tokio::test]
async fn an_oversized_request_fails_alone_and_an_oversized_reply_becomes_a_fault() {
    let small = Config::default().max_frame_len(1024);
    let s = setup_with("tcp", small.clone(), small).await;
    let big = "y".repeat(2000);
    assert!(matches!(within(5, s.lab.echo(&big)).await, Err(Error::FrameTooLarge { limit: 1024, .. })));
    match within(5, s.lab.repeat(5000)).await {
        Err(Error::FrameTooLarge { size, limit: 1024 }) => assert!(size > 5000),
        r => panic!("expected FrameTooLarge, got {r:?}"),
    }
    assert_eq!(within(5, s.lab.echo("fine")).await.unwrap(), "fine", "the connection is untouched");
    assert!(!s.lab.0.connection().unwrap().is_closed());
}

#[tokio::test]
async fn a_well_known_object_is_reached_by_address_and_id() {
    let server = Endpoint::new();
    let address = server.listen(fresh("memory")).await.unwrap();
    let id = ObjectId::from_u128(1);
    let (skeleton, _probe, _records) = lab("well-known");
    let reference = server.export_with_id(id, skeleton).expect("id 1 is free");
    assert_eq!(reference.object, id);
    let (again, _probe, _records) = lab("again");
    assert!(server.export_with_id(id, again).is_none(), "an id in use is refused");

    let client = Endpoint::new();
    let lab: LabClient = within(5, client.proxy_at(&address, id)).await.unwrap();
    assert_eq!(within(5, lab.whoami()).await.unwrap(), "well-known");
    server.shutdown().await;
}
