use rmi_runtime::remote;

#[remote]
trait Calculator {
    #[op(id = 5)]
    async fn add(&self, a: i32, b: i32) -> i32;

    #[op(id = 5)]
    async fn sub(&self, a: i32, b: i32) -> i32;
}

fn main() {}
