//! Remote interfaces and servants shared by the end-to-end tests and the test server process.

use std::future::pending;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmi_runtime::remote;
use serde::{Deserialize, Serialize};

/// The application error of [`Calculator::div`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalcError {
    /// The divisor was zero.
    DivideByZero,
}

/// A service exercising every shape of call the end-to-end tests need.
#[remote]
pub trait Calculator {
    /// `a + b`.
    async fn add(&self, a: i32, b: i32) -> i32;
    /// `a / b`, or the application error [`CalcError::DivideByZero`].
    async fn div(&self, a: i32, b: i32) -> Result<i32, CalcError>;
    /// Returns `value` after `delay_ms` milliseconds (replies come back out of order).
    async fn echo_after(&self, delay_ms: u64, value: u64) -> u64;
    /// Returns `bytes` unchanged.
    async fn echo_bytes(&self, bytes: Vec<u8>) -> Vec<u8>;
    /// Panics with `message`.
    async fn panic(&self, message: String);
    /// Never returns.
    async fn hang(&self);
    /// How many calls this servant has run.
    async fn calls(&self) -> u64;
}

/// The servant behind [`Calculator`]; `on_hang` runs when a `hang` call starts.
#[derive(Debug, Default)]
pub struct CalculatorImpl {
    calls: AtomicU64,
    on_hang: Option<fn()>,
}

impl CalculatorImpl {
    /// A servant that calls `on_hang` when a `hang` call starts.
    pub fn with_hang_hook(on_hang: fn()) -> Self {
        Self { calls: AtomicU64::new(0), on_hang: Some(on_hang) }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Calculator for CalculatorImpl {
    async fn add(&self, a: i32, b: i32) -> i32 {
        self.count();
        a.wrapping_add(b)
    }

    async fn div(&self, a: i32, b: i32) -> Result<i32, CalcError> {
        self.count();
        a.checked_div(b).ok_or(CalcError::DivideByZero)
    }

    async fn echo_after(&self, delay_ms: u64, value: u64) -> u64 {
        self.count();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        value
    }

    async fn echo_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.count();
        bytes
    }

    async fn panic(&self, message: String) {
        self.count();
        panic!("{message}");
    }

    async fn hang(&self) {
        self.count();
        if let Some(hook) = self.on_hang {
            hook();
        }
        pending::<()>().await;
    }

    async fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The error type of [`Account`]: application errors plus the framework's, so that the client stub
/// implements [`Account`] itself.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum AccountError {
    /// Not enough money.
    #[error("insufficient funds: {available} available")]
    Insufficient {
        /// The balance.
        available: u64,
    },
    /// The call failed in the framework (never sent by a servant).
    #[error("remote call failed: {0}")]
    Remote(String),
}

impl From<rmi_runtime::Error> for AccountError {
    fn from(e: rmi_runtime::Error) -> Self {
        AccountError::Remote(e.to_string())
    }
}

/// An interface whose methods all return `Result<T, AccountError>`: code generic over it runs against
/// a local servant and a remote client alike.
#[remote]
pub trait Account {
    /// The balance.
    async fn balance(&self) -> Result<u64, AccountError>;
    /// Takes `amount` out, returning the new balance.
    async fn withdraw(&self, amount: u64) -> Result<u64, AccountError>;
}

/// A local [`Account`].
#[derive(Debug)]
pub struct AccountImpl(pub std::sync::Mutex<u64>);

impl Account for AccountImpl {
    async fn balance(&self) -> Result<u64, AccountError> {
        Ok(*self.0.lock().unwrap())
    }

    async fn withdraw(&self, amount: u64) -> Result<u64, AccountError> {
        let mut balance = self.0.lock().unwrap();
        if *balance < amount {
            return Err(AccountError::Insufficient { available: *balance });
        }
        *balance -= amount;
        Ok(*balance)
    }
}

/// Version 1 of an interface that later grew a method and a version.
pub mod v1 {
    use rmi_runtime::remote;

    /// The first version.
    #[remote(name = "Evolving")]
    pub trait Evolving {
        /// The only method of version 1.
        async fn get(&self) -> u32;
    }

    /// Serves version 1.
    #[derive(Debug)]
    pub struct Impl;

    impl Evolving for Impl {
        async fn get(&self) -> u32 {
            1
        }
    }
}

/// The same interface with a method added (same version: old servers still answer `get`).
pub mod v1_extended {
    use rmi_runtime::remote;

    /// Version 1 plus a method.
    #[remote(name = "Evolving")]
    pub trait Evolving {
        /// Unchanged, so its operation id is unchanged.
        async fn get(&self) -> u32;
        /// New: servers built before it answer "no such operation".
        async fn get_more(&self) -> u32;
    }
}

/// The interface at version 2.
pub mod v2 {
    use rmi_runtime::remote;

    /// Version 2.
    #[remote(name = "Evolving", version = 2)]
    pub trait Evolving {
        /// As in version 1.
        async fn get(&self) -> u32;
    }
}

/// An object handed out by reference: says hello, and who called it.
#[remote]
pub trait Greeter {
    /// A greeting naming the greeter.
    async fn hello(&self) -> String;
    /// The endpoint that made this call, as the greeter's endpoint saw it.
    async fn caller(&self) -> rmi_runtime::EndpointId;
}

/// A hub that makes greeters (a factory) and calls greeters it is given.
#[remote]
pub trait Hub {
    /// A new greeter named `name`, collected when nobody holds it.
    async fn make_greeter(&self, name: String) -> GreeterClient;
    /// Calls `greeter`: what it said, and whom it saw calling.
    async fn call_it(&self, greeter: GreeterClient) -> Result<(String, rmi_runtime::EndpointId), String>;
}

/// The servant behind [`Greeter`].
#[derive(Debug)]
pub struct GreeterImpl {
    name: String,
}

impl Greeter for GreeterImpl {
    async fn hello(&self) -> String {
        format!("hello from {}", self.name)
    }

    async fn caller(&self) -> rmi_runtime::EndpointId {
        rmi_runtime::CallContext::current().map(|cx| cx.peer_endpoint()).expect("called in a call")
    }
}

/// The servant behind [`Hub`]: exports greeters on its endpoint; `unreferenced` is told when one
/// becomes unreferenced.
#[derive(Debug)]
pub struct HubImpl {
    endpoint: rmi_runtime::Endpoint,
    unreferenced: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl HubImpl {
    /// A hub exporting its greeters on `endpoint`, telling `unreferenced` (if given) the name of each
    /// greeter that became unreferenced.
    pub fn new(
        endpoint: rmi_runtime::Endpoint,
        unreferenced: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> Self {
        Self { endpoint, unreferenced }
    }
}

impl Hub for HubImpl {
    async fn make_greeter(&self, name: String) -> GreeterClient {
        let mut options = rmi_runtime::Export::new();
        if let Some(tell) = self.unreferenced.clone() {
            let gone = name.clone();
            options = options.on_unreferenced(move || {
                let _ = tell.send(gone.clone());
            });
        }
        GreeterClient::export_with(&self.endpoint, std::sync::Arc::new(GreeterImpl { name }), options)
    }

    async fn call_it(&self, greeter: GreeterClient) -> Result<(String, rmi_runtime::EndpointId), String> {
        let said = greeter.hello().await.map_err(|e| e.to_string())?;
        let seen = greeter.caller().await.map_err(|e| e.to_string())?;
        Ok((said, seen))
    }
}
