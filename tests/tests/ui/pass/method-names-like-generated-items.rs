//! Remote methods may share their names with the items `#[remote]` generates or implements: the
//! client's inherent methods win, and the generated code calls everything fully qualified.

use std::sync::Arc;
use std::time::Duration;

use rmi_runtime::{InterfaceDescriptor, Stub, remote};

#[remote]
trait Factory {
    async fn new(&self) -> u32;
    async fn clone(&self) -> u32;
    async fn proxy(&self) -> u32;
    async fn from_proxy(&self, id: u32) -> u32;
    async fn with_timeout(&self, millis: u64) -> u32;
    async fn fmt(&self) -> String;
    async fn descriptor(&self) -> String;
    async fn dispatch(&self, job: String);
    async fn id(&self) -> u64;
    async fn name(&self) -> String;
    async fn from_id(&self, id: u32) -> bool;
    async fn from_arc(&self) -> u32;
    async fn servant(&self) -> u32;
}

struct Servant;

impl Factory for Servant {
    async fn new(&self) -> u32 {
        1
    }
    async fn clone(&self) -> u32 {
        2
    }
    async fn proxy(&self) -> u32 {
        3
    }
    async fn from_proxy(&self, id: u32) -> u32 {
        id
    }
    async fn with_timeout(&self, millis: u64) -> u32 {
        millis as u32
    }
    async fn fmt(&self) -> String {
        String::from("fmt")
    }
    async fn descriptor(&self) -> String {
        String::from("descriptor")
    }
    async fn dispatch(&self, _job: String) {}
    async fn id(&self) -> u64 {
        4
    }
    async fn name(&self) -> String {
        String::from("name")
    }
    async fn from_id(&self, id: u32) -> bool {
        id == 5
    }
    async fn from_arc(&self) -> u32 {
        6
    }
    async fn servant(&self) -> u32 {
        7
    }
}

/// Type-checks every call on the client; never run.
#[allow(dead_code)]
async fn call_all(c: &FactoryClient) -> Result<(), rmi_runtime::Error> {
    let _: u32 = c.new().await?;
    let _: u32 = c.clone().await?;
    let _: u32 = c.proxy().await?;
    let _: u32 = c.from_proxy(7).await?;
    let _: u32 = c.with_timeout(100).await?;
    let _: String = c.fmt().await?;
    let _: String = c.descriptor().await?;
    let _: () = c.dispatch(String::from("job")).await?;
    let _: u64 = c.id().await?;
    let _: String = c.name().await?;
    let _: bool = c.from_id(5).await?;
    let _: u32 = c.from_arc().await?;
    let _: u32 = c.servant().await?;
    // The generated trait impls are still there, reached by their full paths.
    let _: FactoryClient = <FactoryClient as Clone>::clone(c);
    let _: String = format!("{c:?}");
    let _: &rmi_runtime::Proxy = <FactoryClient as Stub>::proxy(c);
    let _: FactoryClient = <FactoryClient as Stub>::with_timeout(c, Duration::from_secs(1));
    let _: FactoryClient = <FactoryClient as Stub>::from_proxy(<FactoryClient as Stub>::proxy(c).clone());
    let _: &InterfaceDescriptor = <FactoryClient as Stub>::DESCRIPTOR;
    Ok(())
}

fn assert_dispatch<D: rmi_runtime::Dispatch>(_: &D) {}

fn main() {
    let skeleton = FactorySkeleton::new(Servant);
    assert_dispatch(&skeleton);
    let _: &Arc<Servant> = skeleton.servant();
    let _ = FactorySkeleton::from_arc(Arc::new(Servant));

    // The op enum's own `id`, `name` and `from_id` sit beside the variants `Id`, `Name`, `FromId`.
    let names: Vec<&str> = FactoryOp::ALL.iter().map(|op| op.name()).collect();
    assert_eq!(
        names,
        [
            "new",
            "clone",
            "proxy",
            "from_proxy",
            "with_timeout",
            "fmt",
            "descriptor",
            "dispatch",
            "id",
            "name",
            "from_id",
            "from_arc",
            "servant",
        ]
    );
    assert_eq!(FactoryOp::from_id(FactoryOp::FromId.id()), Some(FactoryOp::FromId));
    assert_eq!(FactoryOp::Name.name(), "name");
    assert_eq!(FactoryOp::DESCRIPTOR.methods.len(), 13);
}
