//! An `op` argument that does not exist is reported at its name.
use rmi_runtime::remote;

#[remote]
pub trait Jobs {
    #[op(deadline = "1s")]
    async fn run(&self) -> u32;
}

fn main() {}
