//! A server process for tests where processes are the point: it listens on `127.0.0.1:0`, exports a
//! `Calculator` under object id 1, prints `LISTENING <address>`, prints `HANG` when a `hang` call starts,
//! and serves until killed.

use std::io::Write;

use rmi_runtime::{Endpoint, ObjectId};
use rmi_tests::services::{CalculatorImpl, CalculatorSkeleton};

fn announce_hang() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "HANG");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<(), rmi_runtime::Error> {
    let endpoint = Endpoint::new();
    let addr = endpoint.listen("tcp://127.0.0.1:0").await?;
    endpoint
        .export_with_id(
            ObjectId::from_u128(1),
            CalculatorSkeleton::new(CalculatorImpl::with_hang_hook(announce_hang)),
        )
        .expect("id 1 is free");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTENING {addr}").expect("stdout");
        out.flush().expect("stdout");
    }
    std::future::pending::<()>().await;
    Ok(())
}
