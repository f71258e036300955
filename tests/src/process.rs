//! Running `rmi-test-server` processes from tests: start one, read what it announces.

use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rmi_runtime::{Address, EndpointId};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The longest any single step of a process test may take before the test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(20);

/// Awaits `future` for at most [`STEP`]; panics naming `what` when it takes longer.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A running `rmi-test-server` (killed when dropped), after its `LISTENING` and `ENDPOINT` lines.
#[derive(Debug)]
pub struct TestServer {
    /// The process.
    pub child: Child,
    /// The rest of its output, line by line.
    pub lines: Lines<BufReader<ChildStdout>>,
    /// Where it listens.
    pub address: Address,
    /// Its endpoint's identity.
    pub endpoint: EndpointId,
}

impl TestServer {
    /// Starts the binary at `program` (the test's `env!("CARGO_BIN_EXE_rmi-test-server")`) with
    /// `args` and reads its address and endpoint id.
    pub async fn spawn<I, S>(program: &Path, args: I) -> TestServer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the test server");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let listening = next_line(&mut lines).await;
        let address = listening.strip_prefix("LISTENING ").expect("a LISTENING line").parse().unwrap();
        let endpoint = next_line(&mut lines).await;
        let endpoint = endpoint.strip_prefix("ENDPOINT ").expect("an ENDPOINT line");
        let endpoint = EndpointId::from_u128(u128::from_str_radix(endpoint, 16).expect("a hex endpoint id"));
        TestServer { child, lines, address, endpoint }
    }

    /// The next line of its output.
    pub async fn next_line(&mut self) -> String {
        next_line(&mut self.lines).await
    }
}

/// The next line of a process's output, within [`STEP`].
pub async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    within("a line from the process", lines.next_line())
        .await
        .expect("read the process's output")
        .expect("the process ended its output early")
}
