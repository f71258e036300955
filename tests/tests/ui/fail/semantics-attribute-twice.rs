//! The same semantics attribute given twice on one method is rejected.

use rmi_runtime::remote;

#[remote]
trait Store {
    #[oneway]
    #[oneway]
    async fn put(&self, key: String);

    #[idempotent]
    #[idempotent]
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
