//! The lecture's exercise RMI.7: one binder (lookup service) for objects that live on several
//! hosts. Two server processes export objects on their own endpoints and register them with the
//! binder; a client asks the binder for them, by name and by interface, and then calls each server
//! directly.
//!
//! ```text
//! cargo run -p rmi-examples --bin registry               # binder, two servers and a client, as four processes
//! cargo run -p rmi-examples --bin registry -- binder 127.0.0.1:1099
//! cargo run -p rmi-examples --bin registry -- server 127.0.0.1:1099 a
//! cargo run -p rmi-examples --bin registry -- server 127.0.0.1:1099 b
//! cargo run -p rmi-examples --bin registry -- client 127.0.0.1:1099
//! ```
//!
//! With no arguments the program starts the others as child processes of itself, prefixes their
//! output with their role, and stops the binder and the servers once the client is done.

use std::path::Path;
use std::process::{self, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rmi_runtime::binder::{BinderConfig, BinderService, Naming};
use rmi_runtime::{Endpoint, Error, Stub, remote};

/// Prints lines on the console of the server it lives on.
#[remote]
pub trait Printer {
    /// Prints `line` on the server's standard output and returns the server's name.
    async fn print(&self, line: String) -> String;
}

/// A counter that lives on one server.
#[remote]
pub trait Counter {
    /// Advances the counter and returns the server's name and the new count.
    async fn next(&self) -> (String, u64);
}

/// A server's printer: `name` is the server's name.
struct ConsolePrinter {
    name: String,
}

impl Printer for ConsolePrinter {
    async fn print(&self, line: String) -> String {
        println!("printer: {line}");
        self.name.clone()
    }
}

/// A server's counter.
struct ServerCounter {
    name: String,
    count: AtomicU64,
}

impl Counter for ServerCounter {
    async fn next(&self) -> (String, u64) {
        let count = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        println!("counter: now {count}");
        (self.name.clone(), count)
    }
}

/// A binder and servers on separate processes, and a client that finds their objects through it
/// (the lecture's RMI.7).
#[derive(Debug, Parser)]
struct Cli {
    /// The process to run; with none, runs a binder, servers `a` and `b` and a client as child
    /// processes.
    #[command(subcommand)]
    role: Option<Role>,
}

/// One process of the example.
#[derive(Debug, Subcommand)]
enum Role {
    /// Run a binder and print its address.
    Binder {
        /// Address to listen on.
        #[arg(default_value = "tcp://127.0.0.1:0")]
        addr: String,
    },
    /// Export a printer and a counter, bind them as `NAME/printer` and `NAME/counter`, and serve
    /// them until killed.
    Server {
        /// The binder's address.
        binder: String,
        /// The server's name.
        name: String,
    },
    /// List the binder's entries and call the objects on every server.
    Client {
        /// The binder's address.
        binder: String,
        /// The servers whose printers to look up by name.
        #[arg(default_values_t = ["a".to_owned(), "b".to_owned()])]
        servers: Vec<String>,
    },
}

/// What the binder prints, followed by its address, once it serves.
const LISTENING: &str = "binder listening on ";
/// What a server prints once it has bound its objects.
const SERVING: &str = "serving ";
/// How long a child process may take to get ready.
const STARTUP: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        None => launch(),
        Some(role) => run(role).map(|()| ExitCode::SUCCESS).map_err(|e| e.to_string()),
    };
    result.unwrap_or_else(|message| {
        eprintln!("registry: {message}");
        ExitCode::FAILURE
    })
}

/// Runs one role in this process.
#[tokio::main]
async fn run(role: Role) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match role {
        Role::Binder { addr } => {
            let endpoint = Endpoint::new();
            let addr = endpoint.listen(&addr).await?;
            BinderService::serve(&endpoint, BinderConfig::default())?;
            println!("{LISTENING}{addr}");
            let _ = tokio::signal::ctrl_c().await;
            endpoint.shutdown().await;
        }
        Role::Server { binder, name } => {
            // The server's objects live on its own endpoint; the binder only records where.
            let endpoint = Endpoint::new();
            endpoint.listen("tcp://127.0.0.1:0").await?;
            let printer = endpoint.export(PrinterSkeleton::new(ConsolePrinter { name: name.clone() }));
            let counter = ServerCounter { name: name.clone(), count: AtomicU64::new(0) };
            let counter = endpoint.export(CounterSkeleton::new(counter));
            let naming = Naming::connect(&endpoint, &binder).await?;
            let names = [format!("{name}/printer"), format!("{name}/counter")];
            for (entry, reference) in names.iter().zip([printer, counter]) {
                naming.bind(entry, &reference).await?;
                println!("bound {entry} to {reference}");
            }
            println!("{SERVING}{} until killed", names.join(", "));
            let _ = tokio::signal::ctrl_c().await;
            endpoint.shutdown().await;
        }
        Role::Client { binder, servers } => {
            let endpoint = Endpoint::new();
            let naming = Naming::connect(&endpoint, &binder).await?;
            let entries = naming.list().await?;
            println!("the binder at {binder} holds {} entries:", entries.len());
            for entry in &entries {
                let host = entry.reference.address.as_ref().map_or("nowhere".into(), ToString::to_string);
                println!("  {:<10} {:<8} on {host}", entry.name, entry.interface_name);
            }
            println!("by name:");
            for server in &servers {
                let name = format!("{server}/printer");
                let printer: PrinterClient = naming.lookup(&name).await?;
                let answer = printer.print(format!("hello from the client, via {name}")).await?;
                println!(
                    "  {name} at {}: printed by server {answer}",
                    printer.proxy().connection().map_or("?", |c| c.peer())
                );
            }
            println!("by interface Counter:");
            let counters = naming.lookup_all::<CounterClient>().await?;
            for round in 1..=2 {
                for (name, counter) in &counters {
                    let (server, count) = counter.next().await?;
                    println!("  round {round}: {name} answered from server {server}: count {count}");
                }
            }
            endpoint.shutdown().await;
        }
    }
    Ok(())
}

/// Runs the binder, servers `a` and `b` and the client as child processes, and exits with the
/// client's status.
fn launch() -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
    let mut children = Children::default();
    let binder = children.start(&exe, "binder", &["binder"])?.wait_for(LISTENING)?;
    for server in ["a", "b"] {
        children.start(&exe, &format!("server-{server}"), &["server", &binder, server])?.wait_for(SERVING)?;
    }
    let client = children.start(&exe, "client", &["client", &binder])?;
    let status = client.process.wait().map_err(|e| format!("cannot wait for the client: {e}"))?;
    Ok(status.code().and_then(|code| u8::try_from(code).ok()).map_or(ExitCode::FAILURE, ExitCode::from))
}

/// Child processes, killed and reaped when dropped, on every way out of [`launch`].
#[derive(Default)]
struct Children(Vec<Child>);

/// A child process and the threads that forward its output.
struct Child {
    role: String,
    process: process::Child,
    /// The lines of its standard output.
    lines: mpsc::Receiver<String>,
    forwarders: [thread::JoinHandle<()>; 2],
}

impl Children {
    /// Starts this program as `role` with `args`, forwarding its output prefixed with its role.
    fn start(&mut self, exe: &Path, role: &str, args: &[&str]) -> Result<&mut Child, String> {
        let mut process = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {role}: {e}"))?;
        let stdout = process.stdout.take().expect("stdout is piped");
        let stderr = process.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        let prefix = format!("[{role}]");
        let forwarders = [
            rmi_examples::forward_lines(stdout, {
                let prefix = prefix.clone();
                move |line| {
                    println!("{prefix} {line}");
                    let _ = tx.send(line);
                }
            }),
            rmi_examples::forward_lines(stderr, move |line| eprintln!("{prefix} {line}")),
        ];
        self.0.push(Child { role: role.to_owned(), process, lines, forwarders });
        Ok(self.0.last_mut().expect("just pushed"))
    }
}

impl Child {
    /// Waits for the child to print a line starting with `prefix`; returns the rest of the line.
    fn wait_for(&mut self, prefix: &str) -> Result<String, String> {
        loop {
            let line = self.lines.recv_timeout(STARTUP).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => {
                    format!("the {} did not get ready within {STARTUP:?}", self.role)
                }
                mpsc::RecvTimeoutError::Disconnected => {
                    format!("the {} exited before it was ready", self.role)
                }
            })?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_owned());
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // The client first (it has exited), then the servers, then the binder.
        for child in self.0.drain(..).rev() {
            let Child { mut process, forwarders, .. } = child;
            // Killing a child that has exited already is harmless.
            let _ = process.kill();
            let _ = process.wait();
            for forwarder in forwarders {
                let _ = forwarder.join();
            }
        }
    }
}
