use rmi_runtime::remote;

#[remote]
trait Greeter {
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

fn main() {}
