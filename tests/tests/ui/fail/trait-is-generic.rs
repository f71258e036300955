use rmi_runtime::remote;

#[remote]
trait Store<T> {
    async fn len(&self) -> u64;
}

fn main() {}
