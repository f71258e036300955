//! `#[oneway]` and `#[idempotent]` are bare markers: arguments are rejected.

use rmi_runtime::remote;

#[remote]
trait Store {
    #[oneway(x)]
    async fn put(&self, key: String);

    #[idempotent = "yes"]
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
