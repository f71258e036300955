use rmi_runtime::remote;

#[remote]
trait Plotter {
    async fn plot(&self, (x, y): (i32, i32));
}

fn main() {}
