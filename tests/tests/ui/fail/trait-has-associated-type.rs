use rmi_runtime::remote;

#[remote]
trait Store {
    type Item;

    async fn len(&self) -> u64;
}

fn main() {}
