use rmi_runtime::remote;

#[remote]
trait Calculator {
    // Its derived operation id is 993596020 (FNV-1a of "add").
    async fn add(&self, a: i32, b: i32) -> i32;

    #[op(id = 993596020)]
    async fn sub(&self, a: i32, b: i32) -> i32;
}

fn main() {}
