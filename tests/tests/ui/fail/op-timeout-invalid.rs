//! `#[op(timeout = "...")]` must be a duration humantime parses, and longer than zero.

use rmi_runtime::remote;

#[remote]
trait Store {
    #[op(timeout = "soon")]
    async fn put(&self, key: String);

    #[op(timeout = "0s")]
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
