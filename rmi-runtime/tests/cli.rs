//! The `rmi` command-line tool: a standalone binder (`rmi binder`) and the commands that inspect and
//! change one (`rmi list`, `lookup`, `find`, `unbind`).
//!
//! Each test that needs a binder starts its own `rmi binder` process on `127.0.0.1:0` and kills it
//! when it ends, however it ends.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rmi_runtime::binder::Naming;
use rmi_runtime::{Address, BinderError, Config, Endpoint, Error, RemoteRef, Secret, Stub};

/// A thermometer: the object the tests register at the binder.
#[rmi_runtime::remote]
pub trait Thermometer {
    /// The temperature, in tenths of a degree.
    async fn read(&self) -> i32;
}

/// A hygrometer: an object of another interface, for lookups by interface.
#[rmi_runtime::remote]
pub trait Hygrometer {
    /// The relative humidity, in percent.
    async fn humidity(&self) -> u8;
}

struct Fixed(i32);

impl Thermometer for Fixed {
    async fn read(&self) -> i32 {
        self.0
    }
}

impl Hygrometer for Fixed {
    async fn humidity(&self) -> u8 {
        u8::try_from(self.0).unwrap_or(u8::MAX)
    }
}

/// The lease the binders under test grant.
const LEASE: &str = "2s";
/// The longest any step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(20);

/// A child process, killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rmi_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rmi"));
    command.args(args).env_remove("RMI_BINDER_SECRET").env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

/// A running `rmi binder`.
struct BinderProcess {
    /// Where it listens, as it announced.
    address: Address,
    /// Its standard output after the announcement, line by line; disconnected once it ends.
    lines: mpsc::Receiver<String>,
    /// Its standard error so far.
    stderr: Arc<Mutex<String>>,
    /// The thread that reads its standard error; it ends when the binder does.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    child: KillOnDrop,
}

impl Drop for BinderProcess {
    fn drop(&mut self) {
        // Shown with the output of a failed test.
        let stderr = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if !stderr.is_empty() {
            eprintln!("rmi binder's stderr:\n{stderr}");
        }
    }
}

impl BinderProcess {
    /// Starts `rmi binder --listen 127.0.0.1:0 --lease 2s EXTRA...` and waits for its announcement.
    fn start(extra: &[&str]) -> BinderProcess {
        let mut args = vec!["binder", "--listen", "127.0.0.1:0", "--lease", LEASE];
        args.extend_from_slice(extra);
        let child = rmi_command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rmi binder");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.0.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = std::thread::spawn({
            let stderr = Arc::clone(&stderr);
            move || {
                let mut buffer = [0; 4096];
                while let Ok(n @ 1..) = stderr_pipe.read(&mut buffer) {
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    stderr.lock().unwrap_or_else(PoisonError::into_inner).push_str(&text);
                }
            }
        });
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(STEP).expect("rmi binder announces its address");
        let address = first
            .strip_prefix("binder listening on ")
            .unwrap_or_else(|| panic!("unexpected announcement: {first:?}"));
        assert!(address.starts_with("tcp://127.0.0.1:"), "{address}");
        let address: Address = address.parse().expect("an address");
        match &address {
            Address::Tcp(socket) => assert_ne!(socket.port(), 0, "the announced port is the real one"),
            other => panic!("not a TCP address: {other}"),
        }
        BinderProcess { address, lines, stderr, stderr_reader: Some(stderr_reader), child }
    }

    /// Sends the binder SIGTERM with `kill(1)`, waits for it to exit and returns how it ended and
    /// what it wrote to stderr.
    #[cfg(unix)]
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.0.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill(1)");
        assert!(status.success(), "kill -TERM: {status}");
        // Its output ends when it exits.
        match self.lines.recv_timeout(STEP) {
            Ok(line) => panic!("unexpected output from rmi binder: {line:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("rmi binder did not exit on SIGTERM"),
        }
        let status = self.child.0.wait().expect("wait for rmi binder");
        // Its stderr has ended with it: the reader is done once it has appended the last of it.
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("the stderr reader");
        }
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(PoisonError::into_inner));
        (status, stderr)
    }

    /// Starts a binder from async code.
    async fn spawn(extra: &'static [&'static str]) -> BinderProcess {
        tokio::task::spawn_blocking(move || BinderProcess::start(extra)).await.unwrap()
    }
}

/// What a finished `rmi` command printed, and how it ended.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "rmi failed: {self:?}");
        assert!(self.stderr.is_empty(), "rmi wrote to stderr: {self:?}");
        self
    }

    fn assert_failure(&self) -> &Self {
        assert!(!self.status.success(), "rmi succeeded: {self:?}");
        assert_eq!(self.status.code(), Some(1), "{self:?}");
        assert!(self.stderr.starts_with("rmi: "), "{self:?}");
        assert!(self.stdout.is_empty(), "rmi wrote to stdout: {self:?}");
        self
    }
}

/// Runs `rmi ARGS...` to its end (killing it if it takes longer than [`STEP`]).
fn run_blocking(args: Vec<String>) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = rmi_command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start rmi");
    let mut child = KillOnDrop(child);
    let (done_tx, done) = mpsc::channel();
    for (which, mut pipe) in [
        (0, Box::new(child.0.stdout.take().unwrap()) as Box<dyn Read + Send>),
        (1, Box::new(child.0.stderr.take().unwrap())),
    ] {
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = done_tx.send((which, text));
        });
    }
    let deadline = Instant::now() + STEP;
    let mut outputs = [String::new(), String::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (which, text) = done.recv_timeout(left).unwrap_or_else(|_| panic!("rmi {args:?} did not finish"));
        outputs[which] = text;
    }
    // Both pipes are closed: the process is ending.
    let status = child.0.wait().expect("wait for rmi");
    let [stdout, stderr] = outputs;
    Run { status, stdout, stderr }
}

/// Runs `rmi ARGS...` from async code.
async fn rmi(args: &[&dyn ToString]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || run_blocking(args)).await.unwrap()
}

/// An endpoint of the test, listening on loopback, with a thermometer exported.
struct Server {
    endpoint: Endpoint,
    address: Address,
    thermometer: RemoteRef,
}

impl Server {
    async fn start() -> Server {
        // Calls to the binder end within a bound, so no test hangs on one.
        let endpoint = Endpoint::with_config(Config::default().call_timeout(Duration::from_secs(10)));
        let address = endpoint.listen("tcp://127.0.0.1:0").await.unwrap();
        let thermometer = endpoint.export(ThermometerSkeleton::new(Fixed(215)));
        Server { endpoint, address, thermometer }
    }

    async fn naming(&self, binder: &BinderProcess) -> Naming {
        tokio::time::timeout(STEP, Naming::connect(&self.endpoint, &binder.address))
            .await
            .expect("connect in time")
            .expect("connect to the binder")
    }
}

/// A server whose thermometer is bound as `thermo` at `binder`.
async fn bound_thermometer(binder: &BinderProcess) -> Server {
    let server = Server::start().await;
    server.naming(binder).await.bind("thermo", &server.thermometer).await.expect("bind");
    server
}

/// The lines of a table, each split into its whitespace-separated cells.
fn cells(table: &str) -> Vec<Vec<&str>> {
    table.lines().map(|line| line.split_whitespace().collect()).collect()
}

/// Parses a lease cell (`1.9s`) and checks it is within the binder's lease.
fn assert_lease(cell: &str) {
    let seconds: f64 =
        cell.strip_suffix('s').and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{cell}"));
    assert!((0.0..=2.0).contains(&seconds), "{cell}");
}

const HEADER: [&str; 5] = ["NAME", "INTERFACE", "ADDRESS", "OBJECT", "LEASE"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_binder_announces_its_address_and_serves_a_binder_there() {
    let binder = BinderProcess::spawn(&[]).await;
    let server = Server::start().await;
    let naming = server.naming(&binder).await;
    let info = naming.info().await.unwrap();
    assert_eq!(info.lease, Duration::from_secs(2));
    assert_eq!(info.entries, 0);
    assert_eq!(naming.list().await.unwrap(), []);

    let run = rmi(&[&"list", &binder.address]).await;
    run.assert_success();
    assert_eq!(run.stdout, "(no entries)\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_list_shows_a_header_and_a_row_per_entry_in_name_order() {
    let binder = BinderProcess::spawn(&[]).await;
    let server = bound_thermometer(&binder).await;
    let hygrometer = server.endpoint.export(HygrometerSkeleton::new(Fixed(40)));
    server.naming(&binder).await.bind("a-hygro", &hygrometer).await.unwrap();

    let run = rmi(&[&"list", &binder.address]).await;
    run.assert_success();
    let table = cells(&run.stdout);
    assert_eq!(table.len(), 3, "{}", run.stdout);
    assert_eq!(table[0], HEADER);
    let object = hygrometer.object.to_string();
    let address = server.address.to_string();
    assert_eq!(
        table[1][..5],
        ["a-hygro", "Hygrometer", "v1", address.as_str(), object.as_str()],
        "{}",
        run.stdout
    );
    assert_lease(table[1][5]);
    let object = server.thermometer.object.to_string();
    assert_eq!(
        table[2][..5],
        ["thermo", "Thermometer", "v1", address.as_str(), object.as_str()],
        "{}",
        run.stdout
    );
    assert_lease(table[2][5]);
    assert_eq!(table[2].len(), 6);
    // The columns line up: every cell of a column starts where its header does.
    let lines: Vec<&str> = run.stdout.lines().collect();
    for header in HEADER {
        let column = lines[0].find(header).unwrap();
        for line in &lines[1..] {
            assert!(
                column == 0 || line[..column].ends_with("  "),
                "{header} is not aligned in:\n{}",
                run.stdout
            );
            assert_ne!(line.as_bytes()[column], b' ', "{header} is not aligned in:\n{}", run.stdout);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_lookup_prints_the_entrys_fields() {
    let binder = BinderProcess::spawn(&[]).await;
    let server = bound_thermometer(&binder).await;

    let run = rmi(&[&"lookup", &binder.address, &"thermo"]).await;
    run.assert_success();
    let fields: BTreeMap<&str, &str> = run
        .stdout
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(':').unwrap_or_else(|| panic!("not a field: {line:?}"));
            (key, value.trim())
        })
        .collect();
    let keys: Vec<&str> = fields.keys().copied().collect();
    assert_eq!(keys, ["address", "endpoint", "interface", "lease", "name", "object", "registrant"]);
    assert_eq!(fields["name"], "thermo");
    let interface_id = ThermometerClient::DESCRIPTOR.id;
    assert_eq!(fields["interface"], format!("Thermometer v1 ({interface_id})"));
    assert_eq!(fields["address"], server.address.to_string());
    assert_eq!(fields["object"], server.thermometer.object.to_string());
    assert_eq!(fields["endpoint"], server.endpoint.id().to_string());
    assert_eq!(fields["registrant"], server.endpoint.id().to_string(), "the test's endpoint registered it");
    assert_lease(fields["lease"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_lookup_of_a_missing_name_fails_saying_it_is_not_bound() {
    let binder = BinderProcess::spawn(&[]).await;
    let _server = bound_thermometer(&binder).await;

    let run = rmi(&[&"lookup", &binder.address, &"missing"]).await;
    run.assert_failure();
    assert!(run.stderr.contains("the name `missing` is not bound"), "{run:?}");
    assert!(run.stderr.contains(&binder.address.to_string()), "the message names the binder: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_find_lists_the_entries_of_an_interface_and_versions() {
    let binder = BinderProcess::spawn(&[]).await;
    let server = bound_thermometer(&binder).await;
    let hygrometer = server.endpoint.export(HygrometerSkeleton::new(Fixed(40)));
    server.naming(&binder).await.bind("hygro", &hygrometer).await.unwrap();

    for versions in [None, Some("1"), Some("..=1"), Some("1..")] {
        let mut args: Vec<&dyn ToString> = vec![&"find", &binder.address, &"Thermometer"];
        if let Some(versions) = &versions {
            args.extend([&"--versions" as &dyn ToString, versions]);
        }
        let run = rmi(&args).await;
        run.assert_success();
        let table = cells(&run.stdout);
        assert_eq!(table.len(), 2, "{versions:?}: {}", run.stdout);
        assert_eq!(table[0], HEADER);
        assert_eq!(table[1][..3], ["thermo", "Thermometer", "v1"], "{versions:?}: {}", run.stdout);
    }

    let run = rmi(&[&"find", &binder.address, &"Thermometer", &"--versions", &"2.."]).await;
    run.assert_success();
    assert_eq!(run.stdout, "(no entries)\n");
    let run = rmi(&[&"find", &binder.address, &"Barometer"]).await;
    run.assert_success();
    assert_eq!(run.stdout, "(no entries)\n");
    let run = rmi(&[&"find", &binder.address, &"Thermometer", &"--versions", &"3..=1"]).await;
    assert!(!run.status.success() && run.stderr.contains("invalid version range"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_list_where_nothing_listens_cannot_reach_a_binder() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    for command in [vec!["list", &address], vec!["lookup", &address, "thermo"], vec!["find", &address, "X"]] {
        let mut args: Vec<&dyn ToString> = command.iter().map(|a| a as &dyn ToString).collect();
        args.extend([&"--timeout" as &dyn ToString, &"2s"]);
        let run = rmi(&args).await;
        run.assert_failure();
        assert!(run.stderr.contains("cannot reach a binder"), "{run:?}");
        assert!(run.stderr.contains(&format!("tcp://{address}")), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_list_against_an_endpoint_without_a_binder_says_it_serves_none() {
    let server = Server::start().await;
    let run = rmi(&[&"list", &server.address]).await;
    run.assert_failure();
    assert!(run.stderr.contains("serves no binder"), "{run:?}");
    assert!(run.stderr.contains(&server.address.to_string()), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_unbind_removes_the_entry() {
    let binder = BinderProcess::spawn(&[]).await;
    let server = bound_thermometer(&binder).await;
    let naming = server.naming(&binder).await;
    let remote: ThermometerClient = naming.lookup("thermo").await.unwrap();
    assert_eq!(remote.read().await.unwrap(), 215);

    let run = rmi(&[&"unbind", &binder.address, &"thermo"]).await;
    run.assert_success();
    assert_eq!(run.stdout, "unbound thermo\n");
    assert!(matches!(
        naming.resolve("thermo").await,
        Err(Error::Binder(BinderError::NotBound(name))) if name == "thermo"
    ));
    let run = rmi(&[&"list", &binder.address]).await;
    run.assert_success();
    assert_eq!(run.stdout, "(no entries)\n");

    let run = rmi(&[&"unbind", &binder.address, &"thermo"]).await;
    run.assert_failure();
    assert!(run.stderr.contains("the name `thermo` is not bound"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binder_started_with_a_secret_refuses_changes_without_it() {
    let binder = BinderProcess::spawn(&["--secret", "s3cret"]).await;
    let server = Server::start().await;
    let naming = server.naming(&binder).await;

    for naming in [naming.clone(), naming.clone().with_secret(Secret::new("guess"))] {
        match naming.bind("thermo", &server.thermometer).await {
            Err(Error::Binder(BinderError::Unauthorized(_))) => {}
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
    let run = rmi(&[&"list", &binder.address]).await;
    run.assert_success();
    assert_eq!(run.stdout, "(no entries)\n", "lookups are open to all, and nothing was bound");

    naming.clone().with_secret(Secret::new("s3cret")).bind("thermo", &server.thermometer).await.unwrap();
    let run = rmi(&[&"lookup", &binder.address, &"thermo"]).await;
    run.assert_success();
    assert!(run.stdout.starts_with("name:        thermo\n"), "{run:?}");

    let run = rmi(&[&"unbind", &binder.address, &"thermo"]).await;
    run.assert_failure();
    assert!(run.stderr.contains("not allowed to change the binder"), "{run:?}");
    let run = rmi(&[&"unbind", &binder.address, &"thermo", &"--secret", &"guess"]).await;
    run.assert_failure();
    assert!(run.stderr.contains("wrong secret"), "{run:?}");
    assert!(naming.resolve("thermo").await.is_ok(), "a refused unbind removed the entry");

    let run = rmi(&[&"unbind", &binder.address, &"thermo", &"--secret", &"s3cret"]).await;
    run.assert_success();
    assert_eq!(run.stdout, "unbound thermo\n");
    assert!(naming.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binder_started_with_no_local_refuses_this_host_unless_allowed() {
    let closed = BinderProcess::spawn(&["--no-local"]).await;
    let server = Server::start().await;
    match server.naming(&closed).await.bind("thermo", &server.thermometer).await {
        Err(Error::Binder(BinderError::Unauthorized(why))) => {
            assert!(why.contains("not on this binder's host or an allowed network"), "{why}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let run = rmi(&[&"unbind", &closed.address, &"thermo"]).await;
    run.assert_failure();
    assert!(run.stderr.contains("not allowed to change the binder"), "{run:?}");

    let allowed = BinderProcess::spawn(&["--no-local", "--allow", "127.0.0.0/8"]).await;
    server.naming(&allowed).await.bind("thermo", &server.thermometer).await.unwrap();
    let run = rmi(&[&"list", &allowed.address]).await;
    run.assert_success();
    assert_eq!(cells(&run.stdout)[1][0], "thermo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_rejects_a_malformed_address_before_connecting() {
    let run = rmi(&[&"list", &"not an address"]).await;
    assert_eq!(run.status.code(), Some(2), "a usage error: {run:?}");
    assert!(run.stderr.contains("invalid value 'not an address'"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_binder_exits_cleanly_on_sigterm_and_stops_listening() {
    let binder = BinderProcess::spawn(&[]).await;
    let _server = bound_thermometer(&binder).await;
    let address = binder.address.clone();
    let (status, stderr) = tokio::task::spawn_blocking(move || binder.terminate()).await.unwrap();
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stderr, "rmi: shutting down\n");

    let run = rmi(&[&"list", &address]).await;
    run.assert_failure();
    assert!(run.stderr.contains("cannot reach a binder"), "{run:?}");
}

/// `Naming::unbind` stops renewing an entry only once the binder has removed it: a refused unbind
/// leaves the entry bound and kept alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_unbind_leaves_the_entry_bound() {
    let binder = BinderProcess::spawn(&["--secret", "s3cret"]).await;
    let server = Server::start().await;
    let naming = server.naming(&binder).await;
    naming.clone().with_secret(Secret::new("s3cret")).bind("thermo", &server.thermometer).await.unwrap();

    // The same endpoint, without the secret: refused.
    match naming.unbind("thermo").await {
        Err(Error::Binder(BinderError::Unauthorized(_))) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    // The server runs on, so its entry must stay: watch it for two leases.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let entries = naming.list().await.unwrap();
        assert_eq!(entries.len(), 1, "the entry vanished {:?} after a refused unbind", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A shutting-down endpoint withdraws only the entries it still holds: an old server's graceful
/// shutdown leaves the entry its successor rebound over its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_servers_shutdown_leaves_the_entry_its_successor_rebound() {
    let binder = BinderProcess::spawn(&[]).await;
    let old = bound_thermometer(&binder).await;
    let new = Server::start().await;
    new.naming(&binder).await.rebind("thermo", &new.thermometer).await.unwrap();

    tokio::time::timeout(STEP, old.endpoint.shutdown()).await.expect("the old server shuts down in time");

    let run = rmi(&[&"lookup", &binder.address, &"thermo"]).await;
    run.assert_success();
    assert!(run.stdout.contains(&format!("endpoint:    {}\n", new.endpoint.id())), "{run:?}");
}
