use rmi_runtime::remote;

struct Point {
    x: i32,
    y: i32,
}

#[remote]
trait Plotter {
    async fn plot(&self, at: Point);
}

fn main() {}
