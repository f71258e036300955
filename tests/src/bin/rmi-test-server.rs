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
//!
//! Every mode also exports a `Hub` under object id 2 (greeters by reference) and prints
//! `ENDPOINT <endpoint id>` after `LISTENING`.
//!
//! With `hold ADDRESS N` it is a client: it asks the hub of the endpoint at `ADDRESS` for `N`
//! greeters, calls each, prints `HOLDING N` and holds them (renewing their leases) until killed.

use std::io::Write;

use rmi_runtime::binder::Naming;
use rmi_runtime::{Address, Endpoint, ObjectId, Secret};
use rmi_tests::services::{CalculatorImpl, CalculatorSkeleton, HubClient, HubImpl, HubSkeleton};

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

/// What the process does besides serving.
enum Mode {
    Serve,
    Bind(BindArgs),
    Hold(Address, usize),
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "rmi-test-server: {problem}\nusage: rmi-test-server [bind BINDER NAME [--secret S] | hold ADDRESS N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Mode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => return Mode::Serve,
        Some("bind") => {}
        Some("hold") => {
            let address = args.next().unwrap_or_else(|| usage("missing ADDRESS"));
            let address = address.parse().unwrap_or_else(|e| usage(&format!("bad address `{address}`: {e}")));
            let n = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| usage("missing N"));
            return Mode::Hold(address, n);
        }
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
    Mode::Bind(BindArgs { binder, name, secret })
}

/// Holds `n` greeters of the hub at `address` until killed.
async fn hold(endpoint: &Endpoint, address: &Address, n: usize) -> Result<(), rmi_runtime::Error> {
    let hub: HubClient = endpoint.proxy_at(address, ObjectId::from_u128(2)).await?;
    let mut greeters = Vec::new();
    for i in 0..n {
        let greeter = hub.make_greeter(format!("greeter {i}")).await?;
        greeter.hello().await?;
        greeters.push(greeter);
    }
    say(&format!("HOLDING {n}"));
    std::future::pending::<()>().await;
    drop(greeters);
    Ok(())
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
    let mode = parse_args();
    let endpoint = Endpoint::new();
    let addr = endpoint.listen("tcp://127.0.0.1:0").await?;
    endpoint
        .export_with_id(
            ObjectId::from_u128(1),
            CalculatorSkeleton::new(CalculatorImpl::with_hang_hook(announce_hang)),
        )
        .expect("id 1 is free");
    endpoint
        .export_with_id(ObjectId::from_u128(2), HubSkeleton::new(HubImpl::new(endpoint.clone(), None)))
        .expect("id 2 is free");
    say(&format!("LISTENING {addr}"));
    say(&format!("ENDPOINT {}", endpoint.id()));
    if let Mode::Hold(address, n) = &mode {
        hold(&endpoint, address, *n).await?;
    }
    if let Mode::Bind(args) = mode {
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
