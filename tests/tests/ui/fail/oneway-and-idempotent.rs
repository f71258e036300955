//! A method has one kind of semantics: `#[oneway]` and `#[idempotent]` together are rejected.

use rmi_runtime::remote;

#[remote]
trait Log {
    #[oneway]
    #[idempotent]
    async fn append(&self, line: String);
}

fn main() {}
