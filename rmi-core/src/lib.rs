//! Core types of [rmi](https://docs.rs/rmi-runtime): remote objects that feel local.
//!
//! This crate holds what both ends of a call agree on, with no async runtime: identifiers
//! ([`ObjectId`], [`InterfaceId`], [`OpId`], [`CallId`], [`EndpointId`]), remote references
//! ([`RemoteRef`], [`Address`]), the wire messages of protocol v1 ([`Hello`], [`Header`], [`Outcome`],
//! [`Fault`]), frame encoding ([`codec`]), the framework's [`Error`] enum, the [`Dispatch`] trait
//! that generated skeletons implement and the byte strings ([`AsBytes`], [`ByteBuf`]) they send
//! `Vec<u8>` values as. Applications depend on `rmi-runtime`, which re-exports all of it.
//!
//! # What `#[remote]` generates
//!
//! | item | for a trait `Calculator` | role |
//! | --- | --- | --- |
//! | the trait | `Calculator`, its `async fn`s desugared to `fn … -> impl Future<Output = …> + Send` | the interface the servant implements |
//! | client stub | `CalculatorClient` | proxy: same methods, returning `Result<R, rmi::Error>` |
//! | skeleton | `CalculatorSkeleton<S>`, implements [`Dispatch`] | decodes arguments, calls the servant `S` |
//! | operations | `enum CalculatorOp` | one variant per method with its stable [`OpId`] |
//! | descriptor | `CalculatorClient::DESCRIPTOR`, an [`InterfaceDescriptor`] | name, id, version, operations |
//!
//! # Example
//!
//! Building and reading a request frame by hand, as the runtime does:
//!
//! ```
//! use bytes::BytesMut;
//! use rmi_core::{codec, CallId, Flags, Header, InterfaceId, ObjectId, OpId, RequestHeader};
//!
//! let header = Header::Request(RequestHeader {
//!     call: CallId(1),
//!     object: ObjectId::random(),
//!     interface: InterfaceId::from_name("Calculator"),
//!     version: 1,
//!     op: OpId::from_name("add"),
//!     flags: Flags::default(),
//!     timeout_us: None,
//! });
//! let mut frame = BytesMut::new();
//! let start = codec::begin_frame(&mut frame, &header);
//! codec::encode_into(&mut frame, &(2i32, 3i32))?;
//! codec::finish_frame(&mut frame, start, 1 << 20)?;
//!
//! let (decoded, args) = codec::split_frame(&frame[codec::LEN_PREFIX..])?;
//! assert_eq!(decoded, header);
//! assert_eq!(codec::decode::<(i32, i32)>(args)?, (2, 3));
//! # Ok::<(), rmi_core::Error>(())
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod bytes;
pub mod codec;
mod dispatch;
mod error;
mod header;
mod ids;
mod message;
mod naming;
mod reference;

/// The bytes of a call's encoded arguments, as [`Dispatch::dispatch`] receives them (re-exported from
/// the `bytes` crate).
pub use ::bytes::Bytes;
pub use bytes::{AsBytes, ByteBuf};
pub use dispatch::{
    BoxFuture, Dispatch, InterfaceDescriptor, MethodDescriptor, Reply, Semantics, Wire, assert_wire,
    decode_args, into_ok,
};
pub use error::Error;
pub use ids::{CallId, EndpointId, InterfaceId, ObjectId, OpId};
pub use message::{
    Fault, Flags, HandshakeError, Header, Hello, MAGIC, NoError, Outcome, PROTOCOL_VERSION, RequestHeader,
};
pub use naming::{BinderError, Binding, Secret, Versions, VersionsParseError};
pub use reference::{Address, AddressParseError, RemoteRef};
