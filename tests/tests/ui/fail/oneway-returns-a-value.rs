//! A `#[oneway]` method gets no reply, so it cannot return a value.

use rmi_runtime::remote;

#[remote]
trait Log {
    #[oneway]
    async fn append(&self, line: String) -> u64;
}

fn main() {}
