use rmi_runtime::remote;

#[remote(verison = 2)]
trait Calculator {
    async fn add(&self, a: i32, b: i32) -> i32;
}

fn main() {}
