//! Methods with no argument, one, and many, of assorted serde types, compile on both ends.

use std::collections::BTreeMap;

use rmi_runtime::remote;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[remote]
trait Shapes {
    async fn none(&self) -> u32;
    async fn one(&self, name: String) -> Option<Point>;
    async fn many(
        &self,
        a: u8,
        b: Vec<u8>,
        c: Option<String>,
        d: (i32, bool),
        e: Point,
        f: BTreeMap<String, Vec<Point>>,
    ) -> Vec<Point>;
}

struct Servant;

impl Shapes for Servant {
    async fn none(&self) -> u32 {
        0
    }
    async fn one(&self, _name: String) -> Option<Point> {
        None
    }
    async fn many(
        &self,
        _a: u8,
        _b: Vec<u8>,
        _c: Option<String>,
        _d: (i32, bool),
        e: Point,
        _f: BTreeMap<String, Vec<Point>>,
    ) -> Vec<Point> {
        vec![e]
    }
}

/// Type-checks the calls; never run.
#[allow(dead_code)]
async fn call(c: &ShapesClient) -> Result<(), rmi_runtime::Error> {
    let _: u32 = c.none().await?;
    let _: Option<Point> = c.one(String::from("origin")).await?;
    let _: Vec<Point> = c.many(1, vec![2], None, (3, true), Point { x: 4, y: 5 }, BTreeMap::new()).await?;
    Ok(())
}

fn assert_dispatch<D: rmi_runtime::Dispatch>(_: &D) {}

fn main() {
    assert_dispatch(&ShapesSkeleton::new(Servant));
    assert_eq!(ShapesOp::ALL, [ShapesOp::None, ShapesOp::One, ShapesOp::Many]);
}
