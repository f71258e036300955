//! Hostile and broken peers, speaking raw TCP: each gets its connection closed while the endpoint
//! goes on serving everyone else.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use futures_util::FutureExt;
use rmi_core::codec;
use rmi_core::{CallId, Flags, Header, NoError, Outcome, Reply, RequestHeader};
use rmi_runtime::{Address, Config, Endpoint, EndpointId, Error, Fault, ObjectId, OpId, Stub};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HELLO_LEN: usize = 24;

fn socket_addr(address: &Address) -> SocketAddr {
    match address {
        Address::Tcp(addr) => *addr,
        other => panic!("not tcp: {other}"),
    }
}

/// A raw connection that has exchanged valid handshake preambles with the server.
async fn raw_after_handshake(address: &Address) -> TcpStream {
    let mut stream = TcpStream::connect(socket_addr(address)).await.unwrap();
    stream.write_all(&rmi_core_hello()).await.unwrap();
    let mut theirs = [0u8; HELLO_LEN];
    within(5, stream.read_exact(&mut theirs)).await.unwrap();
    assert_eq!(&theirs[..4], b"RMI\0");
    stream
}

/// A raw "server" side: accepts one connection and exchanges valid handshake preambles on it.
async fn accept_after_handshake(listener: &TcpListener) -> TcpStream {
    let (mut stream, _) = listener.accept().await.unwrap();
    stream.write_all(&rmi_core_hello()).await.unwrap();
    let mut theirs = [0u8; HELLO_LEN];
    stream.read_exact(&mut theirs).await.unwrap();
    stream
}

fn rmi_core_hello() -> [u8; HELLO_LEN] {
    let mut hello = [0u8; HELLO_LEN];
    hello[..4].copy_from_slice(b"RMI\0");
    hello[4..6].copy_from_slice(&1u16.to_be_bytes());
    hello[8..].copy_from_slice(&EndpointId::random().as_u128().to_le_bytes());
    hello
}

/// Reads until the server closes the stream (EOF or reset); fails the test if it stays open.
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    match within(5, stream.read_to_end(&mut sink)).await {
        Ok(_) => {}
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
            "{e}"
        ),
    }
}

async fn hostile_frame_closes_only_its_connection(frame: &[u8]) {
    let s = setup("tcp").await;
    assert_eq!(within(5, s.lab.echo("before")).await.unwrap(), "before");
    let mut hostile = raw_after_handshake(&s.address).await;
    // The good client is served while the hostile connection is open.
    assert_eq!(within(5, s.lab.echo("during")).await.unwrap(), "during");
    hostile.write_all(frame).await.unwrap();
    assert_closed_by_server(&mut hostile).await;
    assert_eq!(within(5, s.lab.echo("after")).await.unwrap(), "after");
    assert!(!s.lab.0.connection().unwrap().is_closed());
}

#[tokio::test]
async fn a_garbage_frame_closes_that_connection_only() {
    hostile_frame_closes_only_its_connection(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
}

#[tokio::test]
async fn an_unknown_header_closes_that_connection_only() {
    // A well-formed length, then header variant 9, which protocol v1 does not have.
    hostile_frame_closes_only_its_connection(&[0, 0, 0, 2, 9, 0]).await;
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_that_connection_only() {
    // 4 GiB - 1 announced: refused from the prefix alone, nothing allocated for it.
    hostile_frame_closes_only_its_connection(&[0xff, 0xff, 0xff, 0xff]).await;
}

#[tokio::test]
async fn a_frame_over_a_configured_limit_closes_that_connection_only() {
    let s = setup_with("tcp", Config::default().max_frame_len(1024), Config::default()).await;
    let mut hostile = raw_after_handshake(&s.address).await;
    hostile.write_all(&2048u32.to_be_bytes()).await.unwrap();
    hostile.write_all(&[0u8; 100]).await.unwrap();
    assert_closed_by_server(&mut hostile).await;
    assert_eq!(within(5, s.lab.echo("still")).await.unwrap(), "still");
}

#[tokio::test]
async fn a_peer_with_bad_magic_is_closed_and_others_are_served() {
    let s = setup("tcp").await;
    let mut stream = TcpStream::connect(socket_addr(&s.address)).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: rmi.test\r\n\r\n").await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_eq!(within(5, s.lab.echo("fine")).await.unwrap(), "fine");
}

#[tokio::test]
async fn a_peer_speaking_another_version_is_closed() {
    let s = setup("tcp").await;
    let mut stream = TcpStream::connect(socket_addr(&s.address)).await.unwrap();
    let mut hello = rmi_core_hello();
    hello[4..6].copy_from_slice(&2u16.to_be_bytes());
    stream.write_all(&hello).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_eq!(within(5, s.lab.echo("fine")).await.unwrap(), "fine");
}

#[tokio::test]
async fn dialling_a_peer_with_bad_magic_is_a_handshake_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"SSH-2.0-OpenSSH_9.6 not rmi\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    let client = Endpoint::new();
    match within(5, client.connect(&address)).await {
        Err(Error::Handshake { reason, .. }) => assert!(reason.contains("not an rmi endpoint"), "{reason}"),
        r => panic!("expected a handshake error, got {r:?}"),
    }
    within(5, server).await.unwrap();
}

#[tokio::test]
async fn dialling_a_silent_peer_times_out_in_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap());
    let _server = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let timeout = Duration::from_millis(300);
    let client = Endpoint::with_config(Config::default().handshake_timeout(timeout));
    let started = Instant::now();
    let r = within(5, client.connect(&address)).await;
    assert!(matches!(&r, Err(Error::Handshake { reason, .. }) if reason.contains("no handshake")), "{r:?}");
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn callers_dialling_a_silent_peer_together_all_fail_within_one_handshake_timeout() {
    // A listener that never accepts: connects succeed, handshakes never complete.
    let silent = rmi_runtime::transport::bind(&fresh("memory").parse().unwrap()).await.unwrap();
    let address = silent.local_address().clone();
    let timeout = Duration::from_secs(1);
    let client = Endpoint::with_config(Config::default().handshake_timeout(timeout));
    let started = tokio::time::Instant::now();
    let dials = (0..4).map(|_| async {
        let r = client.connect(&address).await;
        (r, started.elapsed())
    });
    for (r, took) in futures_util::future::join_all(dials).await {
        assert!(matches!(r, Err(Error::Handshake { .. } | Error::Connect { .. })), "{r:?}");
        // Virtual time: exactly the deadline, not one timeout per caller queued before this one.
        assert!(took <= timeout, "a caller waited {took:?}");
    }
    drop(silent);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let s = setup_with("tcp", Config::default().max_connections(1), Config::default()).await;
    assert_eq!(within(5, s.lab.echo("first")).await.unwrap(), "first");
    let second = Endpoint::new();
    let r = within(5, second.connect(&s.address)).await;
    assert!(matches!(r, Err(Error::Handshake { .. })), "{r:?}");
    // Closing the first connection frees its place.
    let accepted = s.server.connection_to(s.client.id()).expect("server side of the first connection");
    accepted.close();
    within(5, s.lab.0.connection().unwrap().closed()).await;
    let third = Endpoint::new();
    let lab: LabClient = within(5, third.proxy(&s.reference)).await.unwrap();
    assert_eq!(within(5, lab.echo("third")).await.unwrap(), "third");
}

fn frame(header: &Header, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let start = codec::begin_frame(&mut buf, header);
    body(&mut buf);
    codec::finish_frame(&mut buf, start, 1 << 20).unwrap();
    buf.to_vec()
}

/// A request frame for `op` of the `Lab` object `object`.
fn request(call: u64, object: ObjectId, op: OpId, args: &impl Serialize) -> Vec<u8> {
    request_with(Flags::default(), call, object, op, args)
}

fn request_with(flags: Flags, call: u64, object: ObjectId, op: OpId, args: &impl Serialize) -> Vec<u8> {
    let header = Header::Request(RequestHeader {
        call: CallId(call),
        object,
        interface: LAB.id,
        version: LAB.version,
        op,
        flags,
        timeout_us: None,
    });
    frame(&header, |buf| codec::encode_into(buf, args).unwrap())
}

fn cancel(call: u64) -> Vec<u8> {
    frame(&Header::Cancel(CallId(call)), |_| {})
}

fn reply(call: u64, value: &impl Serialize) -> Vec<u8> {
    frame(&Header::Reply(CallId(call)), |buf| Reply::new(buf).ok(value))
}

/// Reads frames until one that is not a reply to another call: a reply to `call` (returned,
/// decoded) or a request (returned as `Err` with its header and arguments).
async fn next_for<T: DeserializeOwned>(
    stream: &mut TcpStream,
    call: u64,
) -> Result<Outcome<T, NoError>, (RequestHeader, Vec<u8>)> {
    loop {
        let mut len = [0u8; 4];
        within(5, stream.read_exact(&mut len)).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        within(5, stream.read_exact(&mut body)).await.unwrap();
        match codec::split_frame(&body).unwrap() {
            (Header::Reply(id), payload) if id == CallId(call) => return Ok(codec::decode(payload).unwrap()),
            (Header::Request(request), args) => return Err((request, args.to_vec())),
            _ => {}
        }
    }
}

async fn reply_to<T: DeserializeOwned>(stream: &mut TcpStream, call: u64) -> Outcome<T, NoError> {
    match next_for(stream, call).await {
        Ok(outcome) => outcome,
        Err((request, _)) => panic!("expected the reply to call {call}, got a request {request:?}"),
    }
}

#[tokio::test]
async fn calls_cancelled_before_their_task_starts_release_their_in_flight_slots() {
    // Each request and its cancel arrive together, so the reader aborts the call before its task
    // first runs; the slot must be released all the same, or the connection ends up overloaded.
    let s = setup_with("tcp", Config::default().max_in_flight(2), Config::default()).await;
    let mut raw = raw_after_handshake(&s.address).await;
    let mut bytes = Vec::new();
    for call in 1..=8 {
        bytes.extend(request(call, s.reference.object, HANG, &()));
        bytes.extend(cancel(call));
    }
    raw.write_all(&bytes).await.unwrap();
    raw.write_all(&request(100, s.reference.object, ADD, &(1i32, 2i32))).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 100).await, Outcome::Ok(3));
}

#[tokio::test]
async fn an_id_cancelled_but_still_ending_is_in_use_and_free_once_ended() {
    // Idempotent calls: no reply history, only the connection's table of calls in flight.
    let s = setup("tcp").await;
    let mut raw = raw_after_handshake(&s.address).await;
    let object = s.reference.object;
    let hang = |call| request_with(Flags::IDEMPOTENT, call, object, HANG, &());
    // The first call 5 starts (in the reader, until it waits) and is cancelled, but its task has
    // not ended when the second call 5 arrives (the reader handles all four frames first): the id
    // is still in use, so the second is dropped (had it run, it would hang on under id 5, and the
    // third call 5 below would be refused and never start).
    let mut bytes = hang(5);
    bytes.extend(cancel(5));
    bytes.extend(hang(5));
    bytes.extend(request(8, object, ADD, &(1i32, 2i32)));
    raw.write_all(&bytes).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 8).await, Outcome::Ok(3));
    within(5, s.probe.started.notified()).await;
    within(5, s.probe.dropped.notified()).await;
    // Once the first has ended, the id is free again, and a cancel reaches the call using it.
    raw.write_all(&hang(5)).await.unwrap();
    within(5, s.probe.started.notified()).await;
    raw.write_all(&cancel(5)).await.unwrap();
    within(5, s.probe.dropped.notified()).await;
}

#[tokio::test]
async fn repeated_at_most_once_requests_are_answered_from_the_history_and_never_run_again() {
    let s = setup("tcp").await;
    let mut raw = raw_after_handshake(&s.address).await;
    let object = s.reference.object;
    // A repeat after the reply: the same reply again.
    raw.write_all(&request(5, object, ADD, &(1i32, 2i32))).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 5).await, Outcome::Ok(3));
    raw.write_all(&request(5, object, ADD, &(100i32, 200i32))).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 5).await, Outcome::Ok(3), "the repeat ran");
    // A repeat while the call runs: one reply, for both.
    let mut bytes = request(7, object, GATE, &());
    bytes.extend(request(7, object, GATE, &()));
    raw.write_all(&bytes).await.unwrap();
    within(5, s.probe.started.notified()).await;
    s.probe.release.notify_one();
    assert_eq!(reply_to::<u32>(&mut raw, 7).await, Outcome::Ok(7));
    assert!(s.probe.started.notified().now_or_never().is_none(), "the repeat ran");
    // A repeat of a call that was cancelled mid-way: its reply is lost, and it does not run again.
    raw.write_all(&request(6, object, HANG, &())).await.unwrap();
    within(5, s.probe.started.notified()).await;
    raw.write_all(&cancel(6)).await.unwrap();
    within(5, s.probe.dropped.notified()).await;
    raw.write_all(&request(6, object, HANG, &())).await.unwrap();
    assert_eq!(reply_to::<()>(&mut raw, 6).await, Outcome::Fault(Fault::ReplyLost));
    assert!(s.probe.started.notified().now_or_never().is_none(), "the repeat ran");
    // Acknowledged, a call is forgotten; an ack of unknown calls is harmless, a bad one closes.
    let mut ack = Vec::new();
    ack.extend(frame(&Header::Ack, |buf| {
        for id in [5u64, 6, 7, 12345] {
            codec::encode_into(buf, &id).unwrap();
        }
    }));
    ack.extend(request(9, object, ADD, &(2i32, 2i32)));
    raw.write_all(&ack).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 9).await, Outcome::Ok(4));
    // A late copy of an acknowledged call does not run again.
    let mut late = request(7, object, GATE, &());
    late.extend(request(10, object, ADD, &(1i32, 1i32)));
    raw.write_all(&late).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 10).await, Outcome::Ok(2));
    assert!(s.probe.started.notified().now_or_never().is_none(), "an acknowledged call ran again");
    raw.write_all(&frame(&Header::Ack, |buf| buf.extend_from_slice(&[0xff; 11]))).await.unwrap();
    let mut rest = Vec::new();
    within(5, raw.read_to_end(&mut rest)).await.unwrap();
}

#[tokio::test]
async fn stray_replies_and_cancels_sent_to_a_server_are_ignored() {
    let s = setup("tcp").await;
    let mut raw = raw_after_handshake(&s.address).await;
    let mut bytes = reply(12345, &5i32);
    bytes.extend(reply(12345, &5i32));
    bytes.extend(frame(&Header::Reply(CallId(1)), |buf| buf.extend_from_slice(&[0xff; 9])));
    bytes.extend(cancel(999));
    bytes.extend(request(7, s.reference.object, ADD, &(1i32, 2i32)));
    raw.write_all(&bytes).await.unwrap();
    assert_eq!(reply_to::<i32>(&mut raw, 7).await, Outcome::Ok(3));
}

#[tokio::test]
async fn a_server_sending_duplicate_and_unknown_replies_and_requests_is_survived() {
    // A raw "server" that the client dials: it answers the client's call twice, answers a call
    // never made, and calls the client, which exports nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let mut stream = accept_after_handshake(&listener).await;
        for _ in 0..2 {
            let (call, args) = next_for::<()>(&mut stream, u64::MAX).await.unwrap_err();
            let (a, b): (i32, i32) = codec::decode(&args).unwrap();
            let mut bytes = reply(call.call.0, &(a + b));
            bytes.extend(reply(call.call.0, &(a + b)));
            bytes.extend(reply(call.call.0 + 1000, &0i32));
            bytes.extend(cancel(4242));
            bytes.extend(request(77, ObjectId::random(), ADD, &(1i32, 1i32)));
            stream.write_all(&bytes).await.unwrap();
            let outcome = reply_to::<()>(&mut stream, 77).await;
            assert_eq!(outcome, Outcome::Fault(Fault::NoSuchObject));
        }
    });
    let client = Endpoint::new();
    let lab: LabClient = within(5, client.proxy_at(&address, ObjectId::random())).await.unwrap();
    assert_eq!(within(5, lab.add(1, 2)).await.unwrap(), 3);
    assert_eq!(within(5, lab.add(2, 3)).await.unwrap(), 5);
    within(5, peer).await.unwrap();
    assert!(!lab.0.connection().unwrap().is_closed());
}

#[tokio::test]
async fn calls_to_a_peer_that_stops_reading_end_at_their_deadlines() {
    // A raw "server" that handshakes, then never reads: the client's writer soon blocks on a full
    // socket, and the calls' deadlines must still end them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = Address::Tcp(listener.local_addr().unwrap());
    let _peer = tokio::spawn(async move {
        let _stream = accept_after_handshake(&listener).await;
        std::future::pending::<()>().await;
    });
    let client = Endpoint::new();
    let lab: LabClient = within(5, client.proxy_at(&address, ObjectId::random())).await.unwrap();
    let deadline = Duration::from_millis(300);
    let lab = lab.with_timeout(deadline);
    let big = "x".repeat(1 << 20);
    let started = Instant::now();
    // More than the socket buffers hold, from callers waiting at once.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (lab, big) = (lab.clone(), big.clone());
            tokio::spawn(async move { lab.echo(&big).await })
        })
        .collect();
    for call in calls {
        let result = within(5, call).await.unwrap();
        assert!(matches!(result, Err(Error::Timeout(d)) if d == deadline), "{result:?}");
    }
    assert!(started.elapsed() < deadline + Duration::from_secs(1), "took {:?}", started.elapsed());
}
