use rmi_runtime::remote;

#[derive(Debug)]
struct NotSerde;

#[remote]
trait Calculator {
    async fn div(&self, a: i32, b: i32) -> Result<i32, NotSerde>;
}

fn main() {}
