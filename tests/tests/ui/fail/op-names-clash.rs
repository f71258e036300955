use rmi_runtime::remote;

#[remote]
trait Settings {
    async fn get_value(&self) -> i32;

    #[allow(non_snake_case)]
    async fn getValue(&self) -> i32;
}

fn main() {}
