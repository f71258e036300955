use rmi_runtime::remote;

#[remote]
trait Catalog {
    #[allow(non_snake_case)]
    async fn ALL(&self) -> Vec<String>;
}

fn main() {}
