//! Wire messages of protocol v1. `docs/PROTOCOL.md` describes the byte layout.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CallId, EndpointId, InterfaceId, ObjectId, OpId};

/// The four bytes every connection starts with, in both directions.
pub const MAGIC: [u8; 4] = *b"RMI\0";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The handshake preamble: a fixed 24 bytes, sent by both sides before any frame.
///
/// Layout: magic (4 bytes), protocol version (u16, big-endian), reserved (2 bytes, zero), endpoint id
/// (16 bytes, little-endian). It is fixed-size, not a frame, so a peer that speaks another protocol is
/// recognised by its first four bytes rather than by an absurd frame length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's protocol version.
    pub version: u16,
    /// The sender's endpoint identity.
    pub endpoint: EndpointId,
}

/// Why a handshake preamble was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer does not speak rmi.
    #[error("peer is not an rmi endpoint (bad magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// The peer speaks another version of the protocol.
    #[error("peer speaks rmi protocol version {theirs}, this endpoint speaks version {ours}")]
    Version {
        /// The peer's version.
        theirs: u16,
        /// Ours.
        ours: u16,
    },
}

impl Hello {
    /// Size of the encoded preamble.
    pub const LEN: usize = 24;

    /// The preamble this build sends.
    pub fn new(endpoint: EndpointId) -> Self {
        Self { version: PROTOCOL_VERSION, endpoint }
    }

    /// The bytes to send.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[8..].copy_from_slice(&self.endpoint.as_u128().to_le_bytes());
        out
    }

    /// Checks a received preamble: magic first, then version.
    ///
    /// # Errors
    /// [`HandshakeError`] when the magic or the version does not match.
    pub fn decode(bytes: &[u8; Self::LEN]) -> Result<Self, HandshakeError> {
        let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(HandshakeError::BadMagic(magic));
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::Version { theirs: version, ours: PROTOCOL_VERSION });
        }
        let endpoint = u128::from_le_bytes(bytes[8..].try_into().expect("16 bytes"));
        Ok(Self { version, endpoint: EndpointId::from_u128(endpoint) })
    }
}

/// Bits of a request's `flags` byte.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags(pub u8);

impl Flags {
    /// The caller expects no reply (maybe semantics).
    pub const ONEWAY: Flags = Flags(1);
    /// The method may run more than once for one call (at-least-once semantics).
    pub const IDEMPOTENT: Flags = Flags(2);
    /// The request was sent before: a resend of the same call (same call id and arguments).
    pub const RESENT: Flags = Flags(4);

    /// Whether all bits of `other` are set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x})", self.0)
    }
}

/// The header of a request frame; the encoded arguments follow it in the same frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHeader {
    /// Matches the reply to this request.
    pub call: CallId,
    /// The object to call.
    pub object: ObjectId,
    /// The interface the caller believes the object implements.
    pub interface: InterfaceId,
    /// The interface version the caller was compiled against.
    pub version: u32,
    /// The operation to run.
    pub op: OpId,
    /// [`Flags`] of this call.
    pub flags: Flags,
    /// Time the caller will still wait, in microseconds, when the request was sent. Relative, because
    /// the two hosts' clocks need not agree.
    pub timeout_us: Option<u64>,
}

impl RequestHeader {
    /// The caller's remaining patience as a duration.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_us.map(Duration::from_micros)
    }
}

/// The header of every frame after the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Header {
    /// A call; the arguments (a postcard tuple) follow.
    Request(RequestHeader),
    /// The answer to call `CallId`; an encoded [`Outcome`] follows.
    Reply(CallId),
    /// The caller gave up on call `CallId`; nothing follows.
    Cancel(CallId),
    /// The caller received the replies of some at-most-once calls, so the server may forget them
    /// (the last message of the request-reply-acknowledge exchange). Their call ids follow, as
    /// postcard varints back to back, until the frame ends.
    Ack,
}

/// The body of a reply: the method's value, its application error, or a system fault.
///
/// `T` and `E` are the method's own types; a method without an application error uses [`NoError`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<T, E> {
    /// The method returned a value (`Ok(T)` for methods returning `Result<T, E>`).
    Ok(T),
    /// The method returned its application error `Err(E)`.
    Err(E),
    /// The call failed in the framework, not in the method.
    Fault(Fault),
}

/// The application error type of methods that have none: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoError {}

/// A system failure reported by the called endpoint, as it travels on the wire.
///
/// The caller sees each as an [`Error`](crate::Error) variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Fault {
    /// No object with the requested id is exported.
    NoSuchObject,
    /// The object's interface has no such operation.
    NoSuchOperation,
    /// The object implements another interface.
    WrongInterface {
        /// The interface of the exported object.
        served: InterfaceId,
    },
    /// The object implements another version of the interface.
    WrongVersion {
        /// The version the object serves.
        served: u32,
    },
    /// The arguments could not be decoded as the operation's parameter types.
    BadArguments(String),
    /// The servant panicked; the message is the panic's.
    ServantPanicked(String),
    /// The reply could not be encoded.
    Encode(String),
    /// The reply was larger than the server's frame limit.
    ReplyTooLarge {
        /// Encoded size of the reply.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The connection already has its maximum number of calls in flight.
    Overloaded {
        /// The limit.
        limit: u32,
    },
    /// The server is shutting down and starts no new calls.
    ShuttingDown,
    /// A repeated at-most-once request whose reply the server no longer holds: its reply history
    /// forgot it (age or size limits), or the call was abandoned before it replied. The method was
    /// not run again.
    ReplyLost,
}
