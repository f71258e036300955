//! Shared plumbing of the example programs: every example runs in one of three modes.
//!
//! - no arguments: server and client in one process, over TCP on 127.0.0.1, for a quick look;
//! - `server [ADDR]`: export the objects and serve until Ctrl-C (default `127.0.0.1:4000`);
//! - `client [ADDR]`: call the objects served at `ADDR`.
#![warn(missing_docs)]

use clap::{Parser, Subcommand};
use rmi_runtime::{Address, Endpoint, Error};

/// Command line of an example program.
#[derive(Debug, Parser)]
pub struct Cli {
    /// What to run; both sides in one process when omitted.
    #[command(subcommand)]
    pub mode: Option<Mode>,
}

/// The side of the example to run.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Export the example's objects and serve them until Ctrl-C.
    Server {
        /// Address to listen on, e.g. `127.0.0.1:4000` or `unix:///tmp/rmi.sock`.
        #[arg(default_value = "127.0.0.1:4000")]
        addr: String,
    },
    /// Call the objects served at an address.
    Client {
        /// The server's address.
        #[arg(default_value = "127.0.0.1:4000")]
        addr: String,
    },
}

/// Runs an example: `serve` exports objects on an endpoint, `call` uses them from another endpoint.
pub async fn run<S, C>(serve: S, call: C) -> Result<(), Error>
where
    S: AsyncFnOnce(&Endpoint),
    C: AsyncFnOnce(&Endpoint, &Address) -> Result<(), Error>,
{
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    match Cli::parse().mode {
        None => {
            let server = Endpoint::new();
            let addr = server.listen("127.0.0.1:0").await?;
            serve(&server).await;
            let client = Endpoint::new();
            call(&client, &addr).await?;
            server.shutdown().await;
        }
        Some(Mode::Server { addr }) => {
            let server = Endpoint::new();
            let addr = server.listen(&addr).await?;
            serve(&server).await;
            println!("serving on {addr}; Ctrl-C to stop");
            let _ = tokio::signal::ctrl_c().await;
            server.shutdown().await;
        }
        Some(Mode::Client { addr }) => {
            let addr: Address = addr.parse().map_err(|e| Error::Connect {
                address: addr.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?;
            call(&Endpoint::new(), &addr).await?;
        }
    }
    Ok(())
}

/// Passes each line of `stream` (a child process's output) to `emit` on a thread of its own, until
/// the stream ends; examples that start processes use it to prefix their children's output.
pub fn forward_lines(
    stream: impl std::io::Read + Send + 'static,
    emit: impl FnMut(String) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    use std::io::BufRead;
    std::thread::spawn(move || std::io::BufReader::new(stream).lines().map_while(Result::ok).for_each(emit))
}
