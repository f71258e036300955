use rmi_runtime::remote;

#[remote]
trait Counter {
    fn get(&self) -> u64;
}

fn main() {}
