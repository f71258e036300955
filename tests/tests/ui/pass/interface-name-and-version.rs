//! `#[remote(name = "...", version = N)]` set the interface's name (and so its id) and version.

use rmi_runtime::{InterfaceId, remote};

#[remote(name = "com.example.Calc", version = 3)]
trait Calc {
    async fn add(&self, a: i32, b: i32) -> i32;
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = {
    assert!(CalcOp::DESCRIPTOR.version == 3);
    assert!(str_eq(CalcOp::DESCRIPTOR.name, "com.example.Calc"));
    // The id derives from the name, not from the trait's identifier.
    assert!(CalcOp::DESCRIPTOR.id.0 == InterfaceId::from_name("com.example.Calc").0);
};

fn main() {}
