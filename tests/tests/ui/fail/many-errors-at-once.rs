use rmi_runtime::remote;

#[remote]
trait Account {
    async fn deposit(&mut self, amount: u64);

    fn balance(&self) -> u64;

    async fn transfer<T>(&self, to: T, amount: u64);
}

fn main() {}
