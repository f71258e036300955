//! `self_` and `_self` would both become the keyword `Self` as an operation name.
use rmi_runtime::remote;

#[remote]
pub trait Mirror {
    async fn self_(&self) -> u8;
}

fn main() {
    assert_eq!(MirrorOp::Self_.name(), "self_");
}
