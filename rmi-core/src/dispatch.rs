//! The server side of a call: interface descriptors, the [`Dispatch`] trait that generated skeletons
//! implement, and the [`Reply`] they write their outcome into.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::encode_into;
use crate::{Fault, Flags, InterfaceId, NoError, OpId, Outcome};

/// A boxed `Send` future, as returned by [`Dispatch::dispatch`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a remote interface is: its name, id, version and operations. `#[remote]` generates one per
/// trait; dynamic tools (listing, dynamic invocation) read it.
#[derive(Debug)]
pub struct InterfaceDescriptor {
    /// The interface's name (the trait's name unless `#[remote(name = "...")]` sets it).
    pub name: &'static str,
    /// Its id, derived from the name.
    pub id: InterfaceId,
    /// Its version (`#[remote(version = N)]`, default 1).
    pub version: u32,
    /// Its operations, in declaration order.
    pub methods: &'static [MethodDescriptor],
}

impl InterfaceDescriptor {
    /// The operation with id `op`.
    pub fn method(&self, op: OpId) -> Option<&'static MethodDescriptor> {
        self.methods.iter().find(|m| m.op == op)
    }
}

/// One operation of an interface: its name, id, invocation semantics and default deadline.
///
/// Build one with [`MethodDescriptor::new`] and the `const` builder methods; `#[remote]` does it for
/// every method.
#[derive(Debug)]
#[non_exhaustive]
pub struct MethodDescriptor {
    /// The method's name.
    pub name: &'static str,
    /// Its operation id.
    pub op: OpId,
    /// How often a call may run the method when messages are lost or repeated.
    pub semantics: Semantics,
    /// The method's default deadline (`#[op(timeout = "...")]`), overriding the endpoint's.
    pub timeout: Option<Duration>,
}

impl MethodDescriptor {
    /// An at-most-once operation `name` with id `op` and the endpoint's default deadline.
    pub const fn new(name: &'static str, op: OpId) -> Self {
        Self { name, op, semantics: Semantics::AtMostOnce, timeout: None }
    }

    /// The same operation with `semantics`.
    pub const fn with_semantics(mut self, semantics: Semantics) -> Self {
        self.semantics = semantics;
        self
    }

    /// The same operation with a default deadline of `timeout`.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Invocation semantics: how many times a call may run its method when requests, replies or
/// connections are lost, chosen per method (`docs/SEMANTICS.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Semantics {
    /// The default: request, reply, acknowledgement. The request keeps its id when it is resent;
    /// the server filters duplicates and answers them from its reply history, so the method runs
    /// at most once per call.
    #[default]
    AtMostOnce,
    /// `#[idempotent]`: request, reply. Resent on transport failures without duplicate filtering,
    /// so the method runs at least once if a reply comes, possibly more often.
    AtLeastOnce,
    /// `#[oneway]`: request only. No reply, no retry: the method runs once or not at all, and the
    /// caller never learns which.
    Maybe,
}

impl Semantics {
    /// The request flags that announce these semantics to the server.
    pub const fn flags(self) -> Flags {
        match self {
            Semantics::AtMostOnce => Flags(0),
            Semantics::AtLeastOnce => Flags::IDEMPOTENT,
            Semantics::Maybe => Flags::ONEWAY,
        }
    }

    /// The semantics a request's flags announce (oneway wins over idempotent).
    pub const fn from_flags(flags: Flags) -> Self {
        if flags.contains(Flags::ONEWAY) {
            Semantics::Maybe
        } else if flags.contains(Flags::IDEMPOTENT) {
            Semantics::AtLeastOnce
        } else {
            Semantics::AtMostOnce
        }
    }
}

/// The server end of an interface: decodes arguments, calls the servant, encodes the outcome.
///
/// `#[remote]` implements it for the generated `{Trait}Skeleton<S>`; the runtime's object table holds
/// `Arc<dyn Dispatch>` values keyed by object id.
pub trait Dispatch: Send + Sync + 'static {
    /// The interface this object serves.
    fn descriptor(&self) -> &'static InterfaceDescriptor;

    /// Runs operation `op` with the encoded arguments `args` and writes the outcome into `reply`.
    ///
    /// `args` is handed over, not lent: decoding it with [`decode_args`] consumes it, so the
    /// request's bytes are freed before the method runs (a call with a large argument holds its
    /// decoded value, not a second copy in the request frame as well).
    ///
    /// # Cancel safety
    /// The runtime drops the future when the caller cancels or its deadline passes; the servant's own
    /// future is dropped at its current `.await`.
    fn dispatch<'a>(&'a self, op: OpId, args: Bytes, reply: Reply<'a>) -> BoxFuture<'a, ()>;
}

/// Where a skeleton writes the outcome of a call: the reply frame under construction.
#[derive(Debug)]
pub struct Reply<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Reply<'a> {
    /// A reply appending to `buf`, which already holds the frame's length placeholder and header.
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Self { buf }
    }

    /// The method returned `value`.
    pub fn ok<T: Serialize + ?Sized>(self, value: &T) {
        self.outcome(&Outcome::<&T, NoError>::Ok(value));
    }

    /// The method returned its application error `error`.
    pub fn err<E: Serialize + ?Sized>(self, error: &E) {
        self.outcome(&Outcome::<NoError, &E>::Err(error));
    }

    /// The call failed in the framework.
    pub fn fault(self, fault: Fault) {
        self.outcome(&Outcome::<NoError, NoError>::Fault(fault));
    }

    fn outcome<T: Serialize, E: Serialize>(self, outcome: &Outcome<T, E>) {
        if let Err(e) = encode_into(self.buf, outcome) {
            let fault: Outcome<NoError, NoError> = Outcome::Fault(Fault::Encode(e.to_string()));
            encode_into(self.buf, &fault).expect("faults always encode");
        }
    }
}

/// Decodes the arguments of a call, reporting failure as the fault to send back.
///
/// Takes the arguments by value when given them so (as [`Dispatch::dispatch`] does): they are
/// dropped as soon as they are decoded.
///
/// # Errors
/// [`Fault::BadArguments`] when `args` is not exactly one `A`.
pub fn decode_args<A: DeserializeOwned>(args: impl AsRef<[u8]>) -> Result<A, Fault> {
    crate::codec::decode(args.as_ref()).map_err(|e| Fault::BadArguments(e.to_string()))
}

/// The value of a call to a method that has no application error.
#[doc(hidden)]
pub fn into_ok<T>(result: Result<T, NoError>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// Types that can travel by value to and from a remote object: anything serde can encode and decode.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or from a remote object",
    label = "this type does not implement `serde::Serialize` and `serde::de::DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
)]
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// Compile-time check used by `#[remote]` expansions, spanned at each argument and return type.
#[doc(hidden)]
pub const fn assert_wire<T: Wire>() {}
