//! Distributed garbage collection: objects exported to be collected stay exported while someone
//! holds a reference to them, and go when nobody does.
//!
//! # Which objects are collected
//!
//! [`Endpoint::export`](crate::Endpoint::export) exports an object for good: it stays until
//! [`Endpoint::unexport`](crate::Endpoint::unexport) (well-known objects, objects whose reference is
//! handed out by hand). An object exported as a reference, with the generated
//! `{Trait}Client::export` (or [`Endpoint::export_collected`](crate::Endpoint::export_collected)),
//! is *collected*: it stays exported while any of these holds,
//!
//! - a client stub for it is alive in this process (clones share one hold);
//! - a peer holds a stub for it and its lease has not run out;
//! - a reference to it was sent less than one lease ago (a reference in transit, not yet
//!   registered by whoever receives it);
//! - it is bound in a binder through [`Naming`](crate::binder::Naming) (a remote binder: while the
//!   name's lease is kept; a binder in this process: it is pinned);
//! - it is pinned ([`Export::pinned`], [`Endpoint::pin`](crate::Endpoint::pin)),
//!
//! and is unexported when none does. An object may ask to be told when it becomes unreferenced
//! ([`Export::on_unreferenced`]), pinned or not.
//!
//! # Holders and leases
//!
//! The exporting endpoint keeps, per peer, the set of its objects the peer holds, and one lease for
//! the peer ([`Config::dgc_lease`](crate::Config::dgc_lease), default 30 s). A peer that decodes a
//! reference registers it (`dirty`); while it holds any, it renews its lease every third of it
//! (`renew`); when the last clone of its stub for an object is dropped, it lets go (`clean`). Calls
//! for one exporting endpoint are made in order by one task, so a `clean` never overtakes the
//! `dirty` before it. A peer that dies stops renewing, and its holds end with its lease.
//!
//! A reference passed on to a third party keeps its hold for one more lease after it was sent, so
//! the object survives until the receiver has registered it with the object's own endpoint.
//!
//! The protocol is an rmi interface, `rmi.Dgc`, served at the well-known object id
//! [`DGC_OBJECT`] of every endpoint; `docs/PROTOCOL.md` lists its operations.

mod exports;
mod holds;

use std::sync::{Arc, Weak};
use std::time::Duration;

use rmi_core::ObjectId;
use serde::{Deserialize, Serialize};

use crate::context::CallContext;
use crate::endpoint::EndpointInner;

pub(crate) use exports::Exports;
pub(crate) use holds::Holds;

/// The id of every endpoint's garbage collector object: `rmi.DGC` in ASCII, then 1.
pub const DGC_OBJECT: ObjectId = ObjectId::from_u128(0x726d_692e_4447_4300_0000_0000_0000_0001);

/// How an object exported to be collected lives: the options of
/// [`Endpoint::export_collected`](crate::Endpoint::export_collected) and the generated
/// `{Trait}Client::export_with`.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use rmi_runtime::Export;
///
/// let told = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&told);
/// let options = Export::new().on_unreferenced(move || flag.store(true, Ordering::SeqCst));
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct Export {
    pub(crate) pinned: bool,
    pub(crate) unreferenced: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Export {
    /// Collected when unreferenced, nobody told: the default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Never collected while pinned: it stays exported until [`Endpoint::unpin`] lets the collector
    /// have it, or [`Endpoint::unexport`] removes it.
    ///
    /// [`Endpoint::unpin`]: crate::Endpoint::unpin
    /// [`Endpoint::unexport`]: crate::Endpoint::unexport
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// Calls `notify` each time the object becomes unreferenced: no stub for it alive in this
    /// process, no peer holding it, no reference to it in transit, no binding. An object that is not
    /// pinned has been unexported by then.
    ///
    /// `notify` runs on whichever thread noticed (the one dropping the last stub, or the
    /// collector's task); it must not block.
    pub fn on_unreferenced(mut self, notify: impl Fn() + Send + Sync + 'static) -> Self {
        self.unreferenced = Some(Arc::new(notify));
        self
    }
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("pinned", &self.pinned)
            .field("on_unreferenced", &self.unreferenced.is_some())
            .finish()
    }
}

/// What a `dirty` call got: the holder's lease, and what the endpoint said of each object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grant {
    /// The holder's lease: it renews every third of it.
    pub(crate) lease: Duration,
    /// Objects exported for good: nothing to hold or renew.
    pub(crate) permanent: Vec<ObjectId>,
    /// Objects not exported (any more).
    pub(crate) unknown: Vec<ObjectId>,
}

/// Why the garbage collector refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum DgcError {
    /// The endpoint has no lease for the caller (it ran out, or the endpoint restarted): register
    /// the objects again with `dirty`.
    #[error("no lease for this endpoint")]
    NoLease,
    /// The endpoint already has its maximum number of holders.
    #[error("the endpoint already has {limit} holders")]
    Full {
        /// [`Config::max_dgc_holders`](crate::Config::max_dgc_holders).
        limit: u64,
    },
}

/// The garbage collector of an endpoint, as its peers call it.
#[rmi_macros::remote(crate = "crate", name = "rmi.Dgc")]
pub(crate) trait Dgc {
    /// The caller holds references to `objects`, and received each that many times since its
    /// last `dirty`; renews its lease.
    async fn dirty(&self, objects: Vec<(ObjectId, u32)>) -> Result<Grant, DgcError>;
    /// The caller holds no more references to `objects`, and received each that many times since
    /// its last `dirty`.
    async fn clean(&self, objects: Vec<(ObjectId, u32)>);
    /// The caller still holds what it registered: renews its lease, and returns it.
    async fn renew(&self) -> Result<Duration, DgcError>;
}

/// The servant of [`DGC_OBJECT`]: the endpoint's [`Exports`], on behalf of the calling peer.
pub(crate) struct DgcService {
    pub(crate) endpoint: Weak<EndpointInner>,
}

impl DgcService {
    fn caller(&self) -> Option<(Arc<EndpointInner>, rmi_core::EndpointId)> {
        let endpoint = self.endpoint.upgrade()?;
        let peer = CallContext::current().map_or(endpoint.id, |cx| cx.peer_endpoint());
        Some((endpoint, peer))
    }
}

impl Dgc for DgcService {
    async fn dirty(&self, objects: Vec<(ObjectId, u32)>) -> Result<Grant, DgcError> {
        let Some((endpoint, peer)) = self.caller() else { return Err(DgcError::NoLease) };
        endpoint.exports.dirty(&endpoint, peer, &objects)
    }

    async fn clean(&self, objects: Vec<(ObjectId, u32)>) {
        if let Some((endpoint, peer)) = self.caller() {
            endpoint.exports.clean(&endpoint, peer, &objects);
        }
    }

    async fn renew(&self) -> Result<Duration, DgcError> {
        let Some((endpoint, peer)) = self.caller() else { return Err(DgcError::NoLease) };
        endpoint.exports.renew(&endpoint, peer)
    }
}

/// The first instant a periodic task of a lease `lease` should look again: a fraction of it, not
/// under a millisecond.
pub(crate) fn period(lease: Duration, fraction: u32) -> Duration {
    (lease / fraction).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stub;

    #[test]
    fn the_dgc_interface_and_operations_keep_their_ids() {
        let d = DgcClient::DESCRIPTOR;
        assert_eq!((d.name, d.version), ("rmi.Dgc", 1));
        let ids: Vec<_> = d.methods.iter().map(|m| (m.name, m.op.0)).collect();
        // Peers of other builds call these ids: they never change (docs/PROTOCOL.md lists them).
        assert_eq!(d.id.0, 0x8984_38c3_b7b7_d6db);
        assert_eq!(ids, [("dirty", 0x9f00_0e9b), ("clean", 0x506d_ff3e), ("renew", 0xf466_7bee)]);
    }
}
