use rmi_runtime::remote;

struct Point {
    x: i32,
    y: i32,
}

#[remote]
trait Plotter {
    async fn cursor(&self) -> Point;
}

fn main() {}
