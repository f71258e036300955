//! The lecture's first RPC example: `f()` returns "x" and `g(x)` returns 42, called remotely.
//!
//! ```text
//! cargo run -p rmi-examples --bin rpc                    # both sides in one process
//! cargo run -p rmi-examples --bin rpc -- server 127.0.0.1:4000
//! cargo run -p rmi-examples --bin rpc -- client 127.0.0.1:4000
//! ```

use rmi_runtime::{ObjectId, remote};

/// The two remote procedures of the lecture.
#[remote]
pub trait Functions {
    /// Returns "x".
    async fn f(&self) -> String;
    /// Returns 42, whatever `x` is.
    async fn g(&self, x: String) -> i32;
}

struct Server;

impl Functions for Server {
    async fn f(&self) -> String {
        println!("[server] f");
        "x".to_owned()
    }

    async fn g(&self, x: String) -> i32 {
        println!("[server] g( {x} )");
        42
    }
}

/// Clients find the object at a well-known id, as the lecture's server does.
const FUNCTIONS: ObjectId = ObjectId::from_u128(1);

#[tokio::main]
async fn main() -> Result<(), rmi_runtime::Error> {
    rmi_examples::run(
        async |server| {
            server.export_with_id(FUNCTIONS, FunctionsSkeleton::new(Server)).expect("id 1 is free");
        },
        async |client, addr| {
            let functions: FunctionsClient = client.proxy_at(addr, FUNCTIONS).await?;
            println!("{}", functions.f().await?);
            println!("{}", functions.g("bar".to_owned()).await?);
            Ok(())
        },
    )
    .await
}
