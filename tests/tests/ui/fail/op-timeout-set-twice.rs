//! A method's timeout is set once, whether in one `#[op]` or across several.

use rmi_runtime::remote;

#[remote]
trait Store {
    #[op(timeout = "1s", timeout = "2s")]
    async fn put(&self, key: String);

    #[op(timeout = "1s")]
    #[op(timeout = "2s")]
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
