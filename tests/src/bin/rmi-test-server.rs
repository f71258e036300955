//! A server process for tests where processes are the point.
//!
//! Without arguments it listens on `127.0.0.1:0`, exports a `Calculator` under object id 1, prints
//! `LISTENING <address>`, prints `HANG` when a `hang` call starts, and serves until killed.
//!
//! With `bind BINDER NAME [--secret S]` it also exports a second `Calculator` (under a random id),
//! prints `ENDPOINT <endpoint id>`, connects to the binder at `BINDER` and binds the calculator under
//! `NAME` (presenting the secret `S` if given). On success it prints `BOUND <NAME>` and serves (its
//! endpoint renewing the entry's lease) until killed; on failure it prints `BIND-ERROR <error>` and
//! exits with status 1. Bad arguments exit with status 2.

use std::io::Write;

use rmi_runtime::binder::Naming;
use rmi_runtime::{Address, Endpoint, ObjectId, Secret};
use rmi_tests::services::{CalculatorImpl, CalculatorSkeleton};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

fn announce_hang() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "HANG");
    let _ = out.flush();
}

/// What to bind where, from `bind BINDER NAME [--secret S]`.
struct BindArgs {
    binder: Address,
    name: String,
    secret: Option<Secret>,
}

fn usage(problem: &str) -> ! {
    eprintln!("rmi-test-server: {problem}\nusage: rmi-test-server [bind BINDER NAME [--secret S]]");
    std::process::exit(2);
}

fn parse_args() -> Option<BindArgs> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => return None,
        Some("bind") => {}
        Some(other) => usage(&format!("unknown mode `{other}`")),
    }
    let binder = args.next().unwrap_or_else(|| usage("missing BINDER"));
    let binder = binder.parse().unwrap_or_else(|e| usage(&format!("bad binder address `{binder}`: {e}")));
    let name = args.next().unwrap_or_else(|| usage("missing NAME"));
    let mut secret = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--secret" => secret = Some(Secret::new(args.next().unwrap_or_else(|| usage("missing S")))),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    Some(BindArgs { binder, name, secret })
}

async fn bind(endpoint: &Endpoint, args: BindArgs) -> Result<(), rmi_runtime::Error> {
    let calculator = endpoint.export(CalculatorSkeleton::new(CalculatorImpl::default()));
    let mut naming = Naming::connect(endpoint, &args.binder).await?;
    if let Some(secret) = args.secret {
        naming = naming.with_secret(secret);
    }
    naming.bind(&args.name, &calculator).await
}

#[tokio::main]
async fn main() -> Result<(), rmi_runtime::Error> {
    let bind_args = parse_args();
    let endpoint = Endpoint::new();
    let addr = endpoint.listen("tcp://127.0.0.1:0").await?;
    endpoint
        .export_with_id(
            ObjectId::from_u128(1),
            CalculatorSkeleton::new(CalculatorImpl::with_hang_hook(announce_hang)),
        )
        .expect("id 1 is free");
    say(&format!("LISTENING {addr}"));
    if let Some(args) = bind_args {
        say(&format!("ENDPOINT {}", endpoint.id()));
        let name = args.name.clone();
        match bind(&endpoint, args).await {
            Ok(()) => say(&format!("BOUND {name}")),
            Err(error) => {
                say(&format!("BIND-ERROR {error} [{error:?}]"));
                std::process::exit(1);
            }
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}
