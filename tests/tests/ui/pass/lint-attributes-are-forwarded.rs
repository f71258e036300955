//! The user's lint levels and deprecations reach the generated client, and generated code does not
//! warn about them.
#![deny(warnings)]

use rmi_runtime::remote;

#[remote]
pub trait Legacy {
    /// Named after a Java API.
    #[allow(non_snake_case)]
    async fn getValue(&self) -> u32;

    /// Superseded.
    #[deprecated(note = "use `get_value`")]
    async fn old(&self) -> u32;
}

struct Servant;

impl Legacy for Servant {
    async fn getValue(&self) -> u32 {
        1
    }

    async fn old(&self) -> u32 {
        2
    }
}

fn main() {
    let _ = LegacySkeleton::new(Servant);
}
