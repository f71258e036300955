//! When every method returns `Result<T, E>` and each `E: From<rmi_runtime::Error>`, the client
//! implements the trait itself, so generic code accepts a local servant or a remote one alike.

use rmi_runtime::remote;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
enum BankError {
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("remote call failed: {0}")]
    Remote(String),
}

impl From<rmi_runtime::Error> for BankError {
    fn from(e: rmi_runtime::Error) -> Self {
        BankError::Remote(e.to_string())
    }
}

#[remote]
trait Bank {
    async fn balance(&self) -> Result<u64, BankError>;
    async fn withdraw(&self, amount: u64) -> Result<u64, BankError>;
    async fn close(&self) -> Result<(), BankError>;
}

struct Vault;

impl Bank for Vault {
    async fn balance(&self) -> Result<u64, BankError> {
        Ok(10)
    }
    async fn withdraw(&self, amount: u64) -> Result<u64, BankError> {
        10u64.checked_sub(amount).ok_or(BankError::InsufficientFunds)
    }
    async fn close(&self) -> Result<(), BankError> {
        Ok(())
    }
}

async fn use_it<B: Bank>(bank: &B) -> Result<u64, BankError> {
    bank.withdraw(3).await?;
    bank.close().await?;
    bank.balance().await
}

fn assert_send<T: Send>(_: &T) {}

/// The client goes where any `Bank` goes, and its futures are `Send`; never run.
#[allow(dead_code)]
fn remote_bank(client: &BankClient) {
    let future = use_it(client);
    assert_send(&future);
    drop(future);
}

fn main() {
    let local = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(use_it(&Vault));
    assert_eq!(local.unwrap(), 10);
}
