use rmi_runtime::remote;

#[remote]
trait Store {
    async fn put<T>(&self, value: T);
}

fn main() {}
