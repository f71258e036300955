use rmi_runtime::remote;

#[remote(version = 1, version = 2)]
trait Counter {
    async fn next(&self) -> u64;
}

fn main() {}
