//! Errors crossing the wire (the lecture's exercise RMI.2): a method that fails with an application
//! error, which the client receives as that typed error, next to a framework error (calling an object
//! that is not exported).
//!
//! ```text
//! cargo run -p rmi-examples --bin exceptions             # both sides in one process
//! cargo run -p rmi-examples --bin exceptions -- server 127.0.0.1:4000
//! cargo run -p rmi-examples --bin exceptions -- client 127.0.0.1:4000
//! ```

use rmi_runtime::{Error, ObjectId, remote};
use serde::{Deserialize, Serialize};

/// The application's own error: it travels by value and arrives typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum MathError {
    /// The divisor was zero.
    #[error("cannot divide {0} by zero")]
    DivideByZero(i64),
    /// The result does not fit.
    #[error("{0} / {1} overflows")]
    Overflow(i64, i64),
}

/// Integer division that can fail.
#[remote]
pub trait Divider {
    /// `a / b`, or the reason it has no value.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
}

struct Server;

impl Divider for Server {
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError> {
        if b == 0 {
            return Err(MathError::DivideByZero(a));
        }
        a.checked_div(b).ok_or(MathError::Overflow(a, b))
    }
}

const DIVIDER: ObjectId = ObjectId::from_u128(1);
/// Nothing is exported under this id.
const NOBODY: ObjectId = ObjectId::from_u128(99);

#[tokio::main]
async fn main() -> Result<(), Error> {
    rmi_examples::run(
        async |server| {
            server.export_with_id(DIVIDER, DividerSkeleton::new(Server)).expect("id 1 is free");
        },
        async |client, addr| {
            let divider: DividerClient = client.proxy_at(addr, DIVIDER).await?;
            // The outer `?` handles framework errors; the inner `Result` is the method's own.
            for (a, b) in [(84, 2), (1, 0), (i64::MIN, -1)] {
                match divider.divide(a, b).await? {
                    Ok(q) => println!("divide({a}, {b}) = {q}"),
                    Err(e) => println!("divide({a}, {b}) failed with application error {e:?}: {e}"),
                }
            }
            let nobody: DividerClient = client.proxy_at(addr, NOBODY).await?;
            match nobody.divide(1, 1).await {
                Err(Error::NoSuchObject(id)) => {
                    println!("calling object {id} failed with framework error: no such object")
                }
                other => println!("unexpected: {other:?}"),
            }
            Ok(())
        },
    )
    .await
}
