//! Transports: how bytes get from one endpoint to another.
//!
//! A transport turns an [`Address`] into a connected byte stream, split into boxed read and write
//! halves ([`Io`]), so that everything above it (handshake, framing, the communication module) is
//! written once and is not generic. A listening transport implements the small [`Listener`] trait.
//!
//! | address | transport | notes |
//! | --- | --- | --- |
//! | `tcp://127.0.0.1:4000`, `127.0.0.1:4000` | TCP | `TCP_NODELAY` set; port 0 picks a free port |
//! | `unix:///run/app.sock` | Unix domain socket | the listener removes its socket file when it stops |
//! | `memory://name` | in-process pipe | a process-global registry of names; for tests and same-process setups |
//!
//! [`bind`] and [`connect`] choose the transport from the address.
//!
//! ```
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! use rmi_runtime::transport;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let mut listener = transport::bind(&"memory://transport-doc".parse().unwrap()).await?;
//! let mut client = transport::connect(listener.local_address()).await?;
//! let mut server = listener.accept().await?;
//! client.writer.write_all(b"ping").await?;
//! let mut buf = [0u8; 4];
//! server.reader.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use rmi_core::{Address, BoxFuture};
use tokio::io::{AsyncRead, AsyncWrite};

pub mod memory;
pub mod tcp;
#[cfg(unix)]
pub mod unix;

/// The read half of a connection.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// The write half of a connection.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// A connected byte stream, as its two halves. Build one with [`Io::new`].
#[non_exhaustive]
pub struct Io {
    /// Bytes from the peer.
    pub reader: BoxRead,
    /// Bytes to the peer.
    pub writer: BoxWrite,
    /// The peer, for logs and errors (for example `tcp://127.0.0.1:53122`).
    pub peer: String,
    /// Where the peer is, for access decisions ([`Origin::Unknown`] unless the transport says).
    pub origin: Origin,
}

impl Io {
    /// A stream from its halves, of [`Origin::Unknown`] until [`Io::with_origin`] says otherwise.
    pub fn new(
        reader: impl AsyncRead + Send + 'static,
        writer: impl AsyncWrite + Send + 'static,
        peer: impl Into<String>,
    ) -> Self {
        Self {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            peer: peer.into(),
            origin: Origin::Unknown,
        }
    }

    /// The stream, with where its peer is.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io").field("peer", &self.peer).field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// Where the peer of a connection is, as its transport knows it: what access rules (such as the
/// binder's) decide on. Unlike the peer's [endpoint id](rmi_core::EndpointId), which the peer
/// claims, the origin comes from the operating system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A peer at this IP address and port (TCP).
    Ip(SocketAddr),
    /// A peer on this host: a Unix domain socket or the in-process transport.
    Local,
    /// A transport that does not say.
    Unknown,
}

impl Origin {
    /// The peer's IP address, if it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Origin::Ip(addr) => Some(addr.ip()),
            Origin::Local | Origin::Unknown => None,
        }
    }

    /// Whether the peer is certainly on this host: a local transport or a loopback address
    /// (an IPv4-mapped IPv6 loopback included).
    pub fn is_local(&self) -> bool {
        match self {
            Origin::Local => true,
            Origin::Ip(addr) => addr.ip().to_canonical().is_loopback(),
            Origin::Unknown => false,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Ip(addr) => write!(f, "{addr}"),
            Origin::Local => f.write_str("local"),
            Origin::Unknown => f.write_str("unknown"),
        }
    }
}

/// A bound transport that accepts incoming connections.
pub trait Listener: Send + fmt::Debug + 'static {
    /// Waits for the next connection.
    ///
    /// # Errors
    /// The transport's error; the listener stays usable after most of them (a peer that reset
    /// before being accepted, too many open files).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future loses no connection.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Io>>;

    /// The address peers use to reach this listener (with port 0 resolved).
    fn local_address(&self) -> &Address;
}

/// Starts listening on `address`.
///
/// # Errors
/// The transport's error: the address is in use, not permitted, or the transport is not supported
/// on this platform.
pub async fn bind(address: &Address) -> io::Result<Box<dyn Listener>> {
    match address {
        Address::Tcp(addr) => Ok(Box::new(tcp::TcpListener::bind(*addr).await?)),
        #[cfg(unix)]
        Address::Unix(path) => Ok(Box::new(unix::UnixListener::bind(path)?)),
        Address::Memory(name) => Ok(Box::new(memory::MemoryListener::bind(name)?)),
        other => Err(unsupported(other)),
    }
}

/// Opens a connection to `address`.
///
/// # Errors
/// The transport's error: nothing listens there, the peer refused, or the transport is not
/// supported on this platform.
pub async fn connect(address: &Address) -> io::Result<Io> {
    match address {
        Address::Tcp(addr) => tcp::connect(*addr).await,
        #[cfg(unix)]
        Address::Unix(path) => unix::connect(path).await,
        Address::Memory(name) => memory::connect(name).await,
        other => Err(unsupported(other)),
    }
}

fn unsupported(address: &Address) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("transport of `{address}` is not supported here"))
}
