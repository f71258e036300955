use rmi_runtime::remote;

#[remote]
trait Counter
where
    Self: Sized,
{
    async fn next(&self) -> u64;
}

fn main() {}
