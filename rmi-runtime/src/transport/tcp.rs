//! TCP: `tcp://HOST:PORT` (or a bare `HOST:PORT`). Every stream has `TCP_NODELAY` set: frames are
//! batched by the connection's writer, so Nagle's algorithm would only add latency.

use std::io;
use std::net::SocketAddr;

use rmi_core::{Address, BoxFuture};

use super::{Io, Listener, Origin};

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    inner: tokio::net::TcpListener,
    address: Address,
}

impl TcpListener {
    /// Binds `addr`; port 0 picks a free port, reported by [`Listener::local_address`].
    ///
    /// # Errors
    /// The operating system's error (address in use, not permitted).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let inner = tokio::net::TcpListener::bind(addr).await?;
        let address = Address::Tcp(inner.local_addr()?);
        Ok(Self { inner, address })
    }
}

impl Listener for TcpListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Io>> {
        Box::pin(async move {
            let (stream, peer) = self.inner.accept().await?;
            Ok(split(stream, peer))
        })
    }

    fn local_address(&self) -> &Address {
        &self.address
    }
}

/// Connects to `addr`.
///
/// # Errors
/// The operating system's error (refused, unreachable).
pub async fn connect(addr: SocketAddr) -> io::Result<Io> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    Ok(split(stream, addr))
}

fn split(stream: tokio::net::TcpStream, peer: SocketAddr) -> Io {
    // Failing to set the option only costs latency; the connection itself is fine.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let (reader, writer) = stream.into_split();
    Io::new(reader, writer, format!("tcp://{peer}")).with_origin(Origin::Ip(peer))
}
