use rmi_runtime::remote;

#[remote]
trait Calculator {
    async fn __x(&self) -> i32;
}

fn main() {}
