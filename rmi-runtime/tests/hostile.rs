//! Hostile and broken peers, speaking raw TCP: each gets its connection closed while the endpoint
//! goes on serving everyone else.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use rmi_runtime::{Address, Config, Endpoint, EndpointId, Error};
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
    assert!(!s.lab.0.connection().is_closed());
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
    within(5, s.lab.0.connection().closed()).await;
    let third = Endpoint::new();
    let lab: LabClient = within(5, third.proxy(&s.reference)).await.unwrap();
    assert_eq!(within(5, lab.echo("third")).await.unwrap(), "third");
}
