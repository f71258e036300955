//! `#[remote(crate = "...")]` re-points every generated path at the runtime, for code that reaches
//! `rmi-runtime` under another name or through a re-export.

use rmi_runtime::remote;

mod framework {
    pub use ::rmi_runtime as rt;
}

#[remote(crate = "::rmi_runtime")]
trait Absolute {
    async fn ping(&self) -> u32;
}

#[remote(crate = "crate::framework::rt")]
trait Reexported {
    async fn ping(&self) -> u32;
}

/// Type-checks the calls; never run.
#[allow(dead_code)]
async fn call(a: &AbsoluteClient, r: &ReexportedClient) -> Result<u32, rmi_runtime::Error> {
    Ok(a.ping().await? + r.ping().await?)
}

fn main() {
    assert_eq!(AbsoluteOp::DESCRIPTOR.name, "Absolute");
    assert_eq!(ReexportedOp::DESCRIPTOR.name, "Reexported");
}
