use rmi_runtime::remote;

#[remote]
trait Counter {
    async fn increment(&mut self) -> u64;
}

fn main() {}
