//! The binder: a naming service for remote objects (the lecture notes' binder, Java's
//! `rmiregistry`).
//!
//! Servers register objects under names; clients look them up by name, or by the interface they
//! implement, and call them. One binder serves objects that live on many hosts: an entry records
//! where its object lives, and a client that looks it up talks straight to that host.
//!
//! | piece | role |
//! | --- | --- |
//! | [`Binder`] | the binder's remote interface (`#[remote]`), served at the well-known [`BINDER_OBJECT`] id |
//! | [`BinderService`] | the binder itself: entries, leases, access rules; [`BinderService::serve`] puts one on an endpoint |
//! | [`Naming`] | what applications use: bind, rebind, unbind, typed lookups, list; keeps the leases of its entries |
//! | [`BinderConfig`] / [`Access`] | the binder's limits, lease length and who may change it |
//!
//! Any endpoint can host a binder next to its own objects; the `rmi` command-line tool
//! (`cargo install rmi-runtime --features cli`) runs one alone: `rmi binder --listen ADDR`.
//!
//! # Leases
//!
//! An entry registered over the network belongs to the endpoint that registered it, which holds a
//! lease on its entries ([`BinderConfig::lease`], 30 s by default). [`Naming`] renews the lease
//! every third of its length while the endpoint runs and has entries at that binder, and
//! [`Endpoint::shutdown`](crate::Endpoint::shutdown) unbinds them. When a registrant stops
//! renewing without shutting down (its process died, its host went away), its entries disappear
//! from every lookup at most one lease after its last renewal. If the binder restarts and forgets the
//! entries, the registrant's next renewal finds no lease and [`Naming`] registers its entries
//! again. Entries made in the binder's own process ([`Naming::local`]) have no lease: they live
//! until unbound.
//!
//! # Who may change the binder
//!
//! Lookups are open to anyone who can reach the endpoint. Changes (bind, rebind, unbind,
//! withdraw, and lease renewals) are
//! checked against the binder's [`Access`] rules: by default only peers on the binder's own host
//! (loopback, a Unix socket, the same process) may make them. Other hosts need an allow-list entry
//! for their network ([`Access::allow`]), and a shared secret ([`Access::secret`]) can be required
//! on top.
//!
//! # Example
//!
//! ```
//! use rmi_runtime::binder::{BinderConfig, BinderService, Naming};
//! use rmi_runtime::{Endpoint, Error, remote};
//!
//! #[remote]
//! pub trait Greeter {
//!     /// A greeting for `name`.
//!     async fn greet(&self, name: String) -> String;
//! }
//!
//! struct English;
//!
//! impl Greeter for English {
//!     async fn greet(&self, name: String) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Error> {
//! // A binder on its own endpoint.
//! let registry = Endpoint::new();
//! let registry_address = registry.listen("tcp://127.0.0.1:0").await?;
//! BinderService::serve(&registry, BinderConfig::default())?;
//!
//! // A server on another endpoint registers its object there.
//! let server = Endpoint::new();
//! server.listen("tcp://127.0.0.1:0").await?;
//! let greeter = server.export(GreeterSkeleton::new(English));
//! Naming::connect(&server, &registry_address).await?.bind("greeter", &greeter).await?;
//!
//! // A client finds it by name and calls the server directly.
//! let client = Endpoint::new();
//! let names = Naming::connect(&client, &registry_address).await?;
//! let remote: GreeterClient = names.lookup("greeter").await?;
//! assert_eq!(remote.greet("world".into()).await?, "hello, world");
//! # Ok(()) }
//! ```

use std::time::Duration;

use rmi_core::{BinderError, Binding, InterfaceId, ObjectId, RemoteRef, Secret, Versions};

use crate::remote;

mod access;
mod naming;
mod service;

pub use access::Access;
pub use ipnet::IpNet;
pub(crate) use naming::LeaseKeepers;
pub use naming::Naming;
pub use service::{BinderConfig, BinderService};

/// The object id a binder is exported under on its endpoint: a client needs only the endpoint's
/// address to reach it.
pub const BINDER_OBJECT: ObjectId = ObjectId::from_u128(0x726d_692e_4269_6e64_6572_0000_0000_0001);

/// Whether a binder refuses `c` in names and addresses: control characters and invisible
/// formatting characters (zero-width, bidirectional overrides), which would let one entry pass for
/// another in a listing.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// What a binder knows about itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BinderInfo {
    /// Live entries.
    pub entries: u64,
    /// The most entries it holds.
    pub max_entries: u64,
    /// The lease it grants registrants.
    pub lease: Duration,
}

/// A renewed lease: how long it runs, the names of the entries it covers (the ones the
/// registrant bound and nobody has unbound or rebound since), and the names of entries dropped
/// when it ran out earlier, which the registrant may bind again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LeaseGrant {
    /// How long the lease runs from now.
    pub duration: Duration,
    /// The names it covers, sorted.
    pub names: Vec<String>,
    /// Entries dropped when the lease ran out that nobody has bound since, sorted.
    pub lapsed: Vec<String>,
}

/// The binder's remote interface, served at [`BINDER_OBJECT`]. Applications use it through
/// [`Naming`], which adds typed lookups and keeps leases.
#[remote(crate = "crate", name = "rmi.Binder")]
pub trait Binder {
    /// Binds `name` to `reference`, unless `name` is bound already ([`BinderError::NameTaken`]).
    /// `interface_name` is shown in listings. Returns the lease the caller holds on its entries.
    async fn bind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError>;

    /// Binds `name` to `reference`, replacing any entry of that name. Returns the caller's lease.
    async fn rebind(
        &self,
        name: String,
        reference: RemoteRef,
        interface_name: String,
        secret: Option<Secret>,
    ) -> Result<Duration, BinderError>;

    /// Removes the entry `name` ([`BinderError::NotBound`] if there is none).
    async fn unbind(&self, name: String, secret: Option<Secret>) -> Result<(), BinderError>;

    /// The entry `name` ([`BinderError::NotBound`] if there is none).
    async fn lookup(&self, name: String) -> Result<Binding, BinderError>;

    /// Every entry, by name.
    async fn list(&self) -> Vec<Binding>;

    /// The entries whose objects implement `interface` at a version within `versions`, by name.
    async fn lookup_interface(&self, interface: InterfaceId, versions: Versions) -> Vec<Binding>;

    /// Renews the caller's lease: returns its length, the names it covers and the names the
    /// caller may bind again because its lease ran out meanwhile ([`BinderError::NoLease`] if
    /// the binder has no lease of the caller: never granted, or forgotten after a restart).
    async fn renew(&self, secret: Option<Secret>) -> Result<LeaseGrant, BinderError>;

    /// Removes every entry the caller registered, and its lease; returns how many entries it
    /// removed. A registrant that shuts down withdraws, so its entries go at once, and only its
    /// own: not a name another registrant has rebound since.
    async fn withdraw(&self, secret: Option<Secret>) -> Result<u64, BinderError>;

    /// The binder's size and lease.
    async fn info(&self) -> BinderInfo;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binder's ids are part of the protocol (docs/PROTOCOL.md section 10): a client of another
    /// release must find the same object, interface and operations.
    #[test]
    fn the_binders_ids_are_stable() {
        assert_eq!(BINDER_OBJECT.to_string(), "726d692e42696e646572000000000001");
        assert_eq!(BinderOp::DESCRIPTOR.name, "rmi.Binder");
        assert_eq!(BinderOp::DESCRIPTOR.id.to_string(), "0x59df07668accf0f7");
        assert_eq!(BinderOp::DESCRIPTOR.version, 1);
        let ops: Vec<String> = BinderOp::ALL.iter().map(|op| format!("{} {}", op.name(), op.id())).collect();
        assert_eq!(
            ops,
            [
                "bind 0xc7535f2e",
                "rebind 0x26d2c087",
                "unbind 0xbebc33d9",
                "lookup 0xf758858b",
                "list 0x0cfb5881",
                "lookup_interface 0x2d38cf3f",
                "renew 0xf4667bee",
                "withdraw 0x69aef597",
                "info 0x0fb40705",
            ]
        );
    }
}
