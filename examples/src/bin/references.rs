//! The lecture's RMI.8/RMI.9: a value and a reference, returned by the same remote object.
//!
//! `test.get_value()` returns a `Hello` *by value*: the client receives a copy of its fields, and
//! `val.hello()` runs, and prints, at the client. `test.get_reference()` returns a `HelloRef` *by
//! reference*: the client receives a stub for an object that stays at the server, and
//! `ref.hello()` runs, and prints, at the server. When the client drops its stub, the server's
//! object becomes unreferenced and is unexported (distributed garbage collection).
//!
//! ```text
//! cargo run -p rmi-examples --bin references             # a server process and a client
//! cargo run -p rmi-examples --bin references -- server 127.0.0.1:4000
//! cargo run -p rmi-examples --bin references -- client 127.0.0.1:4000
//! ```
//!
//! With no arguments the program starts itself as the server, in a child process listening on
//! 127.0.0.1 (a free port), and runs the client against it; it stops the server when the client is
//! done. Every line starts with the side of the process that printed it, `[server]` or
//! `[client]`, and the interesting ones name that process's id.

use std::process::{self, Command, ExitCode, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rmi_runtime::{Address, CallContext, Endpoint, Export, ObjectId, Stub, remote};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The side this process plays, which prefixes everything it prints.
static SIDE: OnceLock<&'static str> = OnceLock::new();

/// Prints a line prefixed with this process's side: `[server] ...` or `[client] ...`.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("[{}] {}", SIDE.get().copied().unwrap_or("?"), format_args!($($arg)*))
    };
}

/// The lecture's `Hello` class, passed by value: only its fields travel; its methods run wherever
/// the copy is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The greeting.
    pub text: String,
    /// The process that made the original.
    pub made_in: u32,
}

impl Hello {
    /// Prints the greeting on the console of the process this copy lives in.
    pub fn hello(&self) {
        say!(
            "Hello.hello() runs in process {}: {:?} (the original was made in process {})",
            process::id(),
            self.text,
            self.made_in
        );
    }
}

/// The lecture's remote `Hello` object, passed by reference: it stays where it was made.
#[remote]
pub trait HelloRef {
    /// Prints a greeting on the console of the process the object lives in.
    async fn hello(&self);
}

/// The lecture's `Test` object: hands out a `Hello` by value and a `HelloRef` by reference.
#[remote]
pub trait Test {
    /// A new `Hello`, by value.
    async fn get_value(&self) -> Hello;
    /// A new `HelloRef` object, by reference.
    async fn get_reference(&self) -> HelloRefClient;
}

/// The `HelloRef` servant: lives at the server.
struct ServerHello;

impl HelloRef for ServerHello {
    async fn hello(&self) {
        let caller = CallContext::current().map_or_else(|| "?".to_owned(), |ctx| ctx.origin().to_string());
        say!("HelloRef.hello() runs in process {}: hello! (called from {caller})", process::id());
    }
}

/// The `Test` servant: exports a new `HelloRef` object on its endpoint for each `get_reference`.
struct TestServer {
    endpoint: Endpoint,
}

impl Test for TestServer {
    async fn get_value(&self) -> Hello {
        say!("get_value(): returning a new Hello by value (its fields are copied to the caller)");
        Hello { text: "hello from a value".to_owned(), made_in: process::id() }
    }

    async fn get_reference(&self) -> HelloRefClient {
        let options = Export::new().on_unreferenced(|| {
            say!("the HelloRef object is unreferenced (no client holds a stub): unexported");
        });
        let object = HelloRefClient::export_with(&self.endpoint, Arc::new(ServerHello), options);
        say!(
            "get_reference(): exported a new HelloRef object, returning its reference {}",
            object.reference()
        );
        object
    }
}

/// Clients find the `Test` object at a well-known id.
const TEST: ObjectId = ObjectId::from_u128(1);

/// A value and a reference returned by the same remote object (the lecture's RMI.8/RMI.9).
#[derive(Debug, Parser)]
struct Cli {
    /// The side to run; with none, runs the server as a child process and the client here.
    #[command(subcommand)]
    side: Option<Side>,
}

/// One side of the example.
#[derive(Debug, Subcommand)]
enum Side {
    /// Export the `Test` object and serve it until Ctrl-C.
    Server {
        /// Address to listen on.
        #[arg(default_value = "tcp://127.0.0.1:0")]
        addr: String,
    },
    /// Call the `Test` object served at an address.
    Client {
        /// The server's address.
        addr: String,
    },
}

/// What the server prints, followed by its address, once it serves.
const LISTENING: &str = "listening on ";
/// How long the server may take to start, or to show a line the client waits for.
const PATIENCE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let side = match cli.side {
        Some(Side::Server { .. }) => "server",
        _ => "client",
    };
    SIDE.set(side).expect("set once");
    run(cli.side).map_or_else(
        |message| {
            eprintln!("references: {message}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}

/// Runs the side `side` in this process, or with none the server as a child and the client here.
#[tokio::main]
async fn run(side: Option<Side>) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match side {
        Some(Side::Server { addr }) => serve(&addr).await.map_err(|e| e.to_string()),
        Some(Side::Client { addr }) => {
            let addr: Address = addr.parse().map_err(|e| format!("bad address {addr:?}: {e}"))?;
            call(&addr, &mut ServerConsole(None)).await
        }
        None => {
            let mut server = ServerProcess::start()?;
            let addr = server.console.wait_for(LISTENING).await?;
            let addr: Address = addr.parse().map_err(|e| format!("the server printed a bad address: {e}"))?;
            call(&addr, &mut server.console).await
            // `server` is dropped here: the server process is stopped.
        }
    }
}

/// The server: exports the `Test` object and serves it until Ctrl-C.
async fn serve(addr: &str) -> Result<(), rmi_runtime::Error> {
    let endpoint = Endpoint::new();
    let addr = endpoint.listen(addr).await?;
    let test = TestServer { endpoint: endpoint.clone() };
    endpoint.export_with_id(TEST, TestSkeleton::new(test)).expect("id 1 is free");
    say!("process {} {LISTENING}{addr}", process::id());
    let _ = tokio::signal::ctrl_c().await;
    endpoint.shutdown().await;
    Ok(())
}

/// The client: gets a value and a reference from the `Test` object at `addr` and calls `hello` on
/// each. After each step that prints at the server, it waits until `server` has shown that line,
/// so that the output reads in the order things happened.
async fn call(addr: &Address, server: &mut ServerConsole) -> Result<(), String> {
    let endpoint = Endpoint::new(); // does not listen
    let test: TestClient = endpoint.proxy_at(addr, TEST).await.map_err(|e| e.to_string())?;
    say!(
        "process {}: calling the Test object at {addr} (this endpoint does not listen: address() = {:?})",
        process::id(),
        endpoint.address()
    );

    say!("val = test.get_value()");
    let val = test.get_value().await.map_err(|e| e.to_string())?;
    server.shown("get_value()").await?;
    say!("  val is a copy: {val:?}");
    say!("val.hello()");
    val.hello();

    say!("ref = test.get_reference()");
    let reference = test.get_reference().await.map_err(|e| e.to_string())?;
    server.shown("get_reference()").await?;
    say!("  ref is a stub for {} (local: {})", reference.reference(), reference.proxy().is_local());
    say!("ref.hello()");
    reference.hello().await.map_err(|e| e.to_string())?;
    server.shown("HelloRef.hello()").await?;
    say!("  ref.hello() returned: the greeting was printed by the server, not here");

    say!("drop(ref)");
    drop(reference);
    server.shown("unreferenced").await?;
    endpoint.shutdown().await;
    Ok(())
}

/// The lines the server process prints, as this process forwards them; `None` when the server is
/// another program's child.
struct ServerConsole(Option<mpsc::UnboundedReceiver<String>>);

impl ServerConsole {
    /// Waits until the server has printed (and this process has shown) a line containing
    /// `marker`; returns what follows the marker.
    async fn wait_for(&mut self, marker: &str) -> Result<String, String> {
        let Some(lines) = &mut self.0 else { return Ok(String::new()) };
        loop {
            match tokio::time::timeout(PATIENCE, lines.recv()).await {
                Err(_) => return Err(format!("the server did not print {marker:?} within {PATIENCE:?}")),
                Ok(None) => return Err(format!("the server exited before it printed {marker:?}")),
                Ok(Some(line)) => {
                    if let Some((_, rest)) = line.split_once(marker) {
                        return Ok(rest.to_owned());
                    }
                }
            }
        }
    }

    /// Waits until the server has shown a line containing `marker`.
    async fn shown(&mut self, marker: &str) -> Result<(), String> {
        self.wait_for(marker).await.map(drop)
    }
}

/// The server, running as a child process: killed and reaped when dropped, on every way out.
struct ServerProcess {
    process: process::Child,
    console: ServerConsole,
    forwarders: Vec<thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts this program as the server on 127.0.0.1 (a free port), forwarding its output.
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let mut process = Command::new(exe)
            .args(["server", "tcp://127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = process.stdout.take().expect("stdout is piped");
        let stderr = process.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        let forwarders = vec![
            // The server prefixes its own lines with `[server]`.
            rmi_examples::forward_lines(stdout, move |line| {
                println!("{line}");
                let _ = tx.send(line);
            }),
            rmi_examples::forward_lines(stderr, |line| eprintln!("[server] {line}")),
        ];
        Ok(Self { process, console: ServerConsole(Some(lines)), forwarders })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Killing a server that has exited already is harmless.
        let _ = self.process.kill();
        let _ = self.process.wait();
        for forwarder in self.forwarders.drain(..) {
            let _ = forwarder.join();
        }
    }
}
