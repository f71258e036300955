//! When some method's error type does not convert from `rmi_runtime::Error`, the expansion still
//! compiles: the client simply does not implement the trait, and its inherent methods remain.

use rmi_runtime::remote;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct MathError;

#[remote]
trait Calculator {
    async fn div(&self, a: i32, b: i32) -> Result<i32, MathError>;
}

/// Type-checks the inherent method; never run.
#[allow(dead_code)]
async fn call(c: &CalculatorClient) -> Result<Result<i32, MathError>, rmi_runtime::Error> {
    c.div(1, 2).await
}

// `CalculatorClient: Calculator` must not hold: if it did, `check` would be ambiguous.
trait AmbiguousIfImpl<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
#[allow(dead_code)]
struct Implemented;
impl<T: ?Sized + Calculator> AmbiguousIfImpl<Implemented> for T {}
const _: fn() = || <CalculatorClient as AmbiguousIfImpl<_>>::check();

fn main() {}
