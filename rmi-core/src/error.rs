//! The framework's errors: one enum for everything that is not the method's own application error.

use std::io;
use std::time::Duration;

use crate::{BinderError, Fault, InterfaceId, ObjectId, OpId};

/// A system error of a remote call: everything that can go wrong in the framework rather than in the
/// called method.
///
/// Application errors (the `E` of a method returning `Result<T, E>`) never appear here: they reach the
/// caller as their own type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to the endpoint failed.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address dialled.
        address: String,
        /// The transport's reason.
        #[source]
        source: io::Error,
    },
    /// Listening on an address failed (invalid address, address in use, not permitted).
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address to listen on.
        address: String,
        /// The transport's reason.
        #[source]
        source: io::Error,
    },
    /// The handshake with the peer failed (not an rmi endpoint, another protocol version, too slow).
    #[error("handshake with {peer} failed: {reason}")]
    Handshake {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The connection closed before the reply arrived (peer died, network failure, protocol violation).
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// The deadline passed before a reply arrived.
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The endpoint exports no object with this id (never exported, or unexported).
    #[error("no such object {0}")]
    NoSuchObject(ObjectId),
    /// The object does not offer this operation.
    #[error("object has no operation {op}")]
    NoSuchOperation {
        /// The operation requested.
        op: OpId,
    },
    /// The object implements another interface than the stub's.
    #[error("object implements interface {served}, not {expected}")]
    WrongInterface {
        /// The stub's interface.
        expected: InterfaceId,
        /// The object's.
        served: InterfaceId,
    },
    /// The object serves another version of the interface.
    #[error("object serves interface version {served}, the caller expects version {expected}")]
    WrongVersion {
        /// The stub's version.
        expected: u32,
        /// The object's.
        served: u32,
    },
    /// The server could not decode the arguments as the operation's parameters.
    #[error("server could not decode the arguments: {0}")]
    BadArguments(String),
    /// A value could not be encoded.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// A received value could not be decoded.
    #[error("cannot decode value: {0}")]
    Decode(String),
    /// The servant panicked while running the call; the server lives on.
    #[error("remote method panicked: {0}")]
    ServantPanicked(String),
    /// A frame was larger than the limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The connection has its maximum number of calls in flight.
    #[error("peer is overloaded: {limit} calls already in flight on this connection")]
    Overloaded {
        /// The peer's limit.
        limit: u32,
    },
    /// A one-way call found its connection's write queue full (the peer does not keep up) and was
    /// not sent: one-way calls never wait.
    #[error("the connection's write queue is full ({limit} frames); the one-way call was not sent")]
    WriteQueueFull {
        /// The queue's length ([`Config::write_queue`](https://docs.rs/rmi-runtime)).
        limit: u32,
    },
    /// The endpoint is shutting down.
    #[error("endpoint is shutting down")]
    ShuttingDown,
    /// An at-most-once call was resent, and the server no longer holds its reply: the method may
    /// have run once (it was not run again), but its result is lost. Comes after a connection broke
    /// and the server's reply history expired, or the server gave up on the call (its deadline).
    #[error("the call's reply is lost: the method may have run once, and was not run again")]
    ReplyLost,
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// An object id chosen for an export is in use on the endpoint.
    #[error("the endpoint already exports an object with id {0}")]
    ObjectIdInUse(ObjectId),
    /// A binder refused the request, or a binding is not of the interface the caller asked for.
    #[error(transparent)]
    Binder(#[from] BinderError),
}

impl Error {
    /// The caller-side error for a fault reported by the server for a call to `object` expecting
    /// interface `expected` at `version`, operation `op`.
    pub fn from_fault(fault: Fault, object: ObjectId, expected: InterfaceId, version: u32, op: OpId) -> Self {
        match fault {
            Fault::NoSuchObject => Error::NoSuchObject(object),
            Fault::NoSuchOperation => Error::NoSuchOperation { op },
            Fault::WrongInterface { served } => Error::WrongInterface { expected, served },
            Fault::WrongVersion { served } => Error::WrongVersion { expected: version, served },
            Fault::BadArguments(msg) => Error::BadArguments(msg),
            Fault::ServantPanicked(msg) => Error::ServantPanicked(msg),
            Fault::Encode(msg) => Error::Encode(format!("server: {msg}")),
            Fault::ReplyTooLarge { size, limit } => Error::FrameTooLarge { size, limit },
            Fault::Overloaded { limit } => Error::Overloaded { limit },
            Fault::ShuttingDown => Error::ShuttingDown,
            Fault::ReplyLost => Error::ReplyLost,
        }
    }

    /// Whether the transport failed: the connection could not be made or broke, so the request
    /// may not have arrived, or its reply may not have come back. A retry over a new connection
    /// may succeed; the runtime retries on these ([`Semantics`](crate::Semantics)).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Handshake { .. } | Error::ConnectionClosed(_))
    }

    /// Whether the call certainly did not run the method (safe to retry even when not idempotent).
    pub fn did_not_run(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Handshake { .. }
                | Error::NoSuchObject(_)
                | Error::NoSuchOperation { .. }
                | Error::WrongInterface { .. }
                | Error::WrongVersion { .. }
                | Error::BadArguments(_)
                | Error::Overloaded { .. }
                | Error::WriteQueueFull { .. }
                | Error::ShuttingDown
        )
    }
}
