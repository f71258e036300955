use rmi_runtime::remote;

#[remote]
trait Counter {
    async fn zero() -> u64;
}

fn main() {}
