use rmi_runtime::remote;

#[remote]
trait Sensor {
    #[cfg(feature = "debug")]
    async fn dump(&self) -> String;
}

fn main() {}
