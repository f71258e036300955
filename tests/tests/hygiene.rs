//! Hygiene of `#[remote]` expansions: generated code reaches the framework through
//! `::rmi_runtime::__private` only, so it compiles without the prelude, beside local modules named
//! `std` and `core`, and among items that shadow `Result`, `Option`, `Box`, `Ok` and the like; and
//! it trips none of the lints a careful crate denies.
//!
//! This file passes by compiling: an expansion that wrote a bare prelude name (`Ok`, `Some`, `Box`,
//! `Vec`, `Send`, ...) or a relative `std::`/`core::` path fails to build it.
#![deny(unused_qualifications)]

use rmi_runtime::{Dispatch, InterfaceId, OpId};
use serde::{Deserialize, Serialize};

/// The application error of the traits below; it converts from `rmi_runtime::Error`, so a client
/// whose methods all return `Result<_, Overdrawn>` implements its trait.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Overdrawn;

impl From<rmi_runtime::Error> for Overdrawn {
    fn from(_: rmi_runtime::Error) -> Self {
        Overdrawn
    }
}

/// Remote traits in a module without the prelude, among names that shadow it.
pub mod hygienic {
    #![no_implicit_prelude]
    #![deny(missing_docs, missing_debug_implementations)]

    // A relative `std::...`, `core::...` or `rmi_runtime::...` path in the expansion would land here.
    mod alloc {}
    mod core {}
    mod rmi_runtime {}
    mod std {}

    // A bare prelude name in the expansion would resolve to one of these (or, without the prelude, to
    // nothing) and fail to compile.
    #[allow(dead_code)]
    struct Result;
    #[allow(dead_code)]
    struct Option;
    #[allow(dead_code)]
    struct Ok;
    #[allow(dead_code)]
    struct Err;
    #[allow(dead_code)]
    struct Some;
    #[allow(dead_code)]
    struct None;
    #[allow(dead_code)]
    struct Box;
    #[allow(dead_code)]
    struct Vec;
    #[allow(dead_code)]
    struct String;
    #[allow(dead_code)]
    struct Arc;
    #[allow(dead_code)]
    struct Send;
    #[allow(dead_code)]
    struct Sync;
    #[allow(dead_code)]
    struct Future;
    #[allow(dead_code)]
    struct Clone;
    #[allow(dead_code)]
    struct Debug;
    #[allow(dead_code)]
    struct From;

    use super::Overdrawn;

    /// An account kept in another process: plain, `Result` and unit returns.
    #[::rmi_runtime::remote]
    pub trait Account {
        /// The balance.
        async fn balance(&self) -> u64;

        /// Takes `amount` out, unless that would overdraw the account.
        async fn withdraw(&self, amount: u64) -> ::core::result::Result<u64, Overdrawn>;

        /// Forgets the account.
        async fn close(&self);

        /// The statement after `cursor`; `Vec<u8>` travels as a byte string.
        async fn statement(&self, cursor: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8>;
    }

    /// A ledger whose every method can fail with an error that converts from `rmi_runtime::Error`,
    /// so its client implements it too.
    #[::rmi_runtime::remote(name = "hygiene.Ledger", version = 2)]
    pub trait Ledger {
        /// The sum of all entries.
        async fn total(&self) -> ::core::result::Result<u64, Overdrawn>;

        /// Adds an entry.
        #[op(id = 7)]
        async fn record(
            &self,
            memo: ::std::string::String,
            amount: ::std::vec::Vec<u64>,
        ) -> ::core::result::Result<(), Overdrawn>;

        /// The receipt of entry `entry`, signed with `key`.
        async fn receipt(
            &self,
            entry: u64,
            key: ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, Overdrawn>;
    }

    /// A servant of both traits.
    #[derive(::core::fmt::Debug)]
    pub struct Servant;

    impl Account for Servant {
        async fn balance(&self) -> u64 {
            10
        }

        async fn withdraw(&self, amount: u64) -> ::core::result::Result<u64, Overdrawn> {
            ::core::option::Option::ok_or(u64::checked_sub(10, amount), Overdrawn)
        }

        async fn close(&self) {}

        async fn statement(&self, cursor: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
            cursor
        }
    }

    impl Ledger for Servant {
        async fn total(&self) -> ::core::result::Result<u64, Overdrawn> {
            ::core::result::Result::Ok(0)
        }

        async fn record(
            &self,
            _memo: ::std::string::String,
            _amount: ::std::vec::Vec<u64>,
        ) -> ::core::result::Result<(), Overdrawn> {
            ::core::result::Result::Ok(())
        }

        async fn receipt(
            &self,
            _entry: u64,
            key: ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, Overdrawn> {
            ::core::result::Result::Ok(key)
        }
    }
}

/// The same under the prelude: `unused_qualifications` must not fire on generated paths either.
pub mod with_prelude {
    /// A trait whose signatures name prelude items.
    #[rmi_runtime::remote]
    pub trait Echo {
        /// Returns `text`.
        async fn echo(&self, text: String) -> Result<Option<String>, super::Overdrawn>;

        /// Returns `data`, or fails; `Vec<u8>` travels as a byte string.
        async fn echo_bytes(&self, data: Vec<u8>) -> Result<Vec<u8>, super::Overdrawn>;
    }
}

use hygienic::{Account, AccountClient, AccountOp, AccountSkeleton, Ledger, LedgerClient, LedgerOp};

#[test]
fn op_enum_lists_the_methods_in_declaration_order() {
    assert_eq!(
        AccountOp::ALL,
        [AccountOp::Balance, AccountOp::Withdraw, AccountOp::Close, AccountOp::Statement]
    );
    assert_eq!(LedgerOp::ALL, [LedgerOp::Total, LedgerOp::Record, LedgerOp::Receipt]);
    for &op in AccountOp::ALL {
        assert_eq!(AccountOp::from_id(op.id()), Some(op));
    }
    for &op in LedgerOp::ALL {
        assert_eq!(LedgerOp::from_id(op.id()), Some(op));
    }
    assert_eq!(AccountOp::from_id(OpId(7)), None);
}

#[test]
fn descriptors_name_the_interface_and_its_operations() {
    let account = AccountOp::DESCRIPTOR;
    assert_eq!(account.name, "Account");
    assert_eq!(account.id, InterfaceId::from_name("Account"));
    assert_eq!(account.version, 1);
    let methods: Vec<_> = account.methods.iter().map(|m| (m.name, m.op)).collect();
    assert_eq!(
        methods,
        [
            ("balance", OpId::from_name("balance")),
            ("withdraw", OpId::from_name("withdraw")),
            ("close", OpId::from_name("close")),
            ("statement", OpId::from_name("statement")),
        ]
    );

    let ledger = LedgerOp::DESCRIPTOR;
    assert_eq!(ledger.name, "hygiene.Ledger");
    assert_eq!(ledger.id, InterfaceId::from_name("hygiene.Ledger"));
    assert_eq!(ledger.version, 2);
    let methods: Vec<_> = ledger.methods.iter().map(|m| (m.name, m.op)).collect();
    assert_eq!(
        methods,
        [("total", OpId::from_name("total")), ("record", OpId(7)), ("receipt", OpId::from_name("receipt"))]
    );
    assert_eq!(LedgerOp::Record.id(), OpId(7));
    assert_eq!(LedgerOp::Record.name(), "record");
}

#[test]
fn skeleton_serves_the_descriptor() {
    let skeleton = AccountSkeleton::new(hygienic::Servant);
    let served = skeleton.descriptor();
    assert_eq!((served.name, served.id, served.version), ("Account", InterfaceId::from_name("Account"), 1));
    assert_eq!(served.methods.len(), AccountOp::ALL.len());
    assert!(format!("{skeleton:?}").starts_with("AccountSkeleton"));
}

#[tokio::test]
async fn the_servant_implements_the_desugared_trait() {
    let servant = hygienic::Servant;
    assert_eq!(servant.balance().await, 10);
    assert_eq!(servant.withdraw(11).await, Err(Overdrawn));
    assert_eq!(servant.withdraw(4).await, Ok(6));
    servant.close().await;
    assert_eq!(Ledger::total(&servant).await, Ok(0));
    assert_eq!(servant.statement(vec![1, 2]).await, [1, 2]);
    assert_eq!(servant.receipt(1, vec![3]).await, Ok(vec![3]));
}

/// Only where every method is fallible does the client implement the trait.
#[test]
fn ledger_client_implements_ledger() {
    fn implements_ledger<T: Ledger>() {}
    implements_ledger::<LedgerClient>();
    fn is_client<T: Clone + std::fmt::Debug + Send + Sync>() {}
    is_client::<AccountClient>();
    is_client::<LedgerClient>();
    fn implements_echo<T: with_prelude::Echo>() {}
    implements_echo::<with_prelude::EchoClient>();
}
