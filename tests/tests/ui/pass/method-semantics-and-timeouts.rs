//! `#[oneway]`, `#[idempotent]` and `#[op(timeout = "...")]` set each method's descriptor, and a
//! oneway method's client call returns `Result<(), Error>`.

use std::time::Duration;

use rmi_runtime::{Semantics, remote};

#[remote]
trait Jobs {
    #[oneway]
    async fn note(&self, s: String);

    #[oneway]
    async fn ping(&self) -> ();

    #[idempotent]
    async fn get(&self) -> u32;

    #[op(id = 9, timeout = "2s")]
    async fn slow(&self) -> u32;

    #[idempotent]
    #[op(timeout = "1m 30s")]
    async fn both(&self) -> Result<u32, String>;

    async fn plain(&self) -> u32;
}

struct Servant;

impl Jobs for Servant {
    async fn note(&self, _s: String) {}
    async fn ping(&self) -> () {}
    async fn get(&self) -> u32 {
        1
    }
    async fn slow(&self) -> u32 {
        2
    }
    async fn both(&self) -> Result<u32, String> {
        Ok(3)
    }
    async fn plain(&self) -> u32 {
        4
    }
}

/// Type-checks the calls; never run.
#[allow(dead_code)]
async fn call(c: &JobsClient) {
    let _: Result<(), rmi_runtime::Error> = c.note(String::new()).await;
    let _: Result<(), rmi_runtime::Error> = c.ping().await;
    let _: Result<u32, rmi_runtime::Error> = c.get().await;
    let _: Result<u32, rmi_runtime::Error> = c.slow().await;
    let _: Result<Result<u32, String>, rmi_runtime::Error> = c.both().await;
}

fn assert_dispatch<D: rmi_runtime::Dispatch>(_: &D) {}

fn main() {
    assert_dispatch(&JobsSkeleton::new(Servant));

    assert_eq!(JobsOp::Note.descriptor().semantics, Semantics::Maybe);
    assert_eq!(JobsOp::Ping.descriptor().semantics, Semantics::Maybe);
    assert_eq!(JobsOp::Get.descriptor().semantics, Semantics::AtLeastOnce);
    assert_eq!(JobsOp::Slow.descriptor().semantics, Semantics::AtMostOnce);
    assert_eq!(JobsOp::Both.descriptor().semantics, Semantics::AtLeastOnce);
    assert_eq!(JobsOp::Plain.descriptor().semantics, Semantics::AtMostOnce);

    assert_eq!(JobsOp::Note.descriptor().timeout, None);
    assert_eq!(JobsOp::Get.descriptor().timeout, None);
    assert_eq!(JobsOp::Slow.descriptor().timeout, Some(Duration::from_secs(2)));
    assert_eq!(JobsOp::Both.descriptor().timeout, Some(Duration::from_secs(90)));
    assert_eq!(JobsOp::Plain.descriptor().timeout, None);

    assert_eq!(JobsOp::Slow.descriptor().op.0, 9);
}
