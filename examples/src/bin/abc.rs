//! The lecture's A/B/C example: three objects with per-object counters, exported under three
//! references. B overrides `f`, C overrides `g`; the client prints `A: x 42`, `B: y 42`, `C: x 24`
//! and the server shows each object's counter advancing.
//!
//! ```text
//! cargo run -p rmi-examples --bin abc                    # both sides in one process
//! cargo run -p rmi-examples --bin abc -- server 127.0.0.1:4000
//! cargo run -p rmi-examples --bin abc -- client 127.0.0.1:4000
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use rmi_runtime::{ObjectId, remote};

/// The interface the three classes share.
#[remote]
pub trait Abc {
    /// A's `f` returns "x".
    async fn f(&self) -> String;
    /// A's `g` returns 42.
    async fn g(&self, x: String) -> i32;
}

/// The state and behaviour of the lecture's class A, which B and C inherit.
struct Counter {
    name: &'static str,
    count: AtomicU32,
}

impl Counter {
    fn new(name: &'static str) -> Self {
        Self { name, count: AtomicU32::new(0) }
    }

    /// Prints the call and the counter before advancing it, as the lecture's methods do.
    fn tick(&self, call: &str) {
        let count = self.count.fetch_add(1, Ordering::SeqCst);
        println!("[server] {}.{call}  count={count}", self.name);
    }

    fn a_f(&self) -> String {
        self.tick("f()");
        "x".to_owned()
    }

    fn a_g(&self, x: &str) -> i32 {
        self.tick(&format!("g( {x} )"));
        42
    }
}

struct A(Counter);
struct B(Counter);
struct C(Counter);

impl Abc for A {
    async fn f(&self) -> String {
        self.0.a_f()
    }
    async fn g(&self, x: String) -> i32 {
        self.0.a_g(&x)
    }
}

impl Abc for B {
    /// B overrides `f`.
    async fn f(&self) -> String {
        self.0.tick("f()");
        "y".to_owned()
    }
    async fn g(&self, x: String) -> i32 {
        self.0.a_g(&x)
    }
}

impl Abc for C {
    async fn f(&self) -> String {
        self.0.a_f()
    }
    /// C overrides `g`.
    async fn g(&self, x: String) -> i32 {
        self.0.tick(&format!("g( {x} )"));
        24
    }
}

/// The lecture's `_exportedObjects = {1: A(), 2: B(), 3: C()}`.
const IDS: [ObjectId; 3] = [ObjectId::from_u128(1), ObjectId::from_u128(2), ObjectId::from_u128(3)];

#[tokio::main]
async fn main() -> Result<(), rmi_runtime::Error> {
    rmi_examples::run(
        async |server| {
            server.export_with_id(IDS[0], AbcSkeleton::new(A(Counter::new("A")))).expect("id 1 is free");
            server.export_with_id(IDS[1], AbcSkeleton::new(B(Counter::new("B")))).expect("id 2 is free");
            server.export_with_id(IDS[2], AbcSkeleton::new(C(Counter::new("C")))).expect("id 3 is free");
        },
        async |client, addr| {
            for round in 1..=2 {
                println!("round {round}");
                for (name, id) in ["A", "B", "C"].into_iter().zip(IDS) {
                    let object: AbcClient = client.proxy_at(addr, id).await?;
                    println!("{name}: {} {}", object.f().await?, object.g("bar".to_owned()).await?);
                }
            }
            Ok(())
        },
    )
    .await
}
