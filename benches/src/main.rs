//! rmi-bench: rmi against tarpc and raw tokio TCP, measured side by side in one run.
//!
//! ```text
//! cargo run --release -p rmi-bench -- --quick     # about a minute; SUMMARY lines at the end
//! cargo run --release -p rmi-bench                # the full run; writes docs/BENCHMARKS.md
//! ```
//!
//! Each system's server runs in a process of its own (this program, `serve <system>`); this process
//! is the client. Rounds interleave the systems (in a rotating order), so the machine's drift hits
//! them alike, and the report gives the median of the rounds. By default both processes are pinned
//! to one CPU (`--placement`).

mod alloc;
mod os;
mod report;
mod systems;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::os::{Cpus, Placement};
use crate::systems::raw::{RawClient, RawServer};
use crate::systems::rmi::{RmiClient, RmiServer};
use crate::systems::tarpc::{TarpcClient, TarpcServer};
use crate::systems::{Caller, Server, System};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(about = "Benchmarks rmi against tarpc and raw tokio TCP (server and client in separate processes)")]
struct Cli {
    /// A short run (about a minute) that prints the SUMMARY lines and writes no report.
    #[arg(long)]
    quick: bool,
    /// Rounds per system (the report gives their median); at least 3.
    #[arg(long, value_parser = clap::value_parser!(u32).range(3..))]
    rounds: Option<u32>,
    /// Where the server and client processes run.
    #[arg(long, value_enum, default_value_t = Placement::Same)]
    placement: Placement,
    /// Write docs/BENCHMARKS.md and its chart even after a quick run (a full run always does).
    #[arg(long)]
    write_docs: bool,
    /// Measure only these systems (default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<System>,
    /// Run only these workloads (default: all); the others report nothing. For profiling.
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Calls in flight to measure (default: 16, 64, 256; a full run adds 1 and 4). For profiling.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    depths: Vec<u16>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand)]
enum Sub {
    /// Runs one system's server (started by the benchmark itself).
    #[command(hide = true)]
    Serve {
        #[arg(value_enum)]
        system: System,
        /// The CPU to pin the server to.
        #[arg(long)]
        cpu: Option<usize>,
    },
}

/// A part of the measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Small calls one at a time (and allocations per call).
    Seq,
    /// Small calls in flight on one connection.
    Inflight,
    /// 1 MiB echoes.
    Echo,
    /// Server memory: peak, per idle connection, per exported object.
    Memory,
}

/// How much work one run does.
#[derive(Clone, Debug)]
pub struct Params {
    pub rounds: u32,
    pub warmup_calls: usize,
    pub seq_calls: usize,
    pub depths: Vec<usize>,
    pub inflight_time: Duration,
    pub echo_calls: usize,
    pub echo_len: usize,
    pub idle_connections: usize,
    pub objects: usize,
    pub workloads: Vec<Workload>,
}

impl Params {
    fn runs(&self, workload: Workload) -> bool {
        self.workloads.is_empty() || self.workloads.contains(&workload)
    }

    fn quick() -> Self {
        Self {
            rounds: 3,
            warmup_calls: 500,
            seq_calls: 3000,
            depths: vec![16, 64, 256],
            inflight_time: Duration::from_millis(400),
            echo_calls: 30,
            echo_len: 1 << 20,
            idle_connections: 100,
            objects: 10_000,
            workloads: Vec::new(),
        }
    }

    fn full() -> Self {
        Self {
            rounds: 5,
            warmup_calls: 2000,
            seq_calls: 20_000,
            depths: vec![1, 4, 16, 64, 256],
            inflight_time: Duration::from_secs(1),
            echo_calls: 100,
            echo_len: 1 << 20,
            idle_connections: 300,
            objects: 50_000,
            workloads: Vec::new(),
        }
    }
}

/// Figures of one system in one round.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub seq_p50_us: f64,
    pub seq_p99_us: f64,
    pub seq_cps: f64,
    /// Per depth: calls/s, p50 µs, p99 µs.
    pub inflight: Vec<(usize, f64, f64, f64)>,
    pub echo_mibps: f64,
    pub server_rss_kib: f64,
    pub connection_kib: f64,
    /// Bytes per exported object; `None` for systems without objects.
    pub object_bytes: Option<f64>,
    pub allocs_client: f64,
    pub allocs_server: f64,
}

fn main() {
    let cli = Cli::parse();
    if let Some(Sub::Serve { system, cpu }) = cli.command {
        serve(system, cpu);
        return;
    }
    let mut params = if cli.quick { Params::quick() } else { Params::full() };
    if let Some(rounds) = cli.rounds {
        params.rounds = rounds;
    }
    params.workloads.clone_from(&cli.workloads);
    if !cli.depths.is_empty() {
        params.depths = cli.depths.iter().map(|&d| usize::from(d)).collect();
    }
    let machine = os::machine();
    let cpus = match Cpus::pick(cli.placement) {
        Ok(cpus) => cpus,
        Err(e) => {
            eprintln!("rmi-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Some(cpu) = cpus.client
        && let Err(e) = os::pin_to(cpu)
    {
        eprintln!("rmi-bench: {e}");
        std::process::exit(2);
    }
    let systems = if cli.only.is_empty() { System::ALL.to_vec() } else { cli.only.clone() };
    println!("machine:   {machine}");
    println!("placement: {cpus}");
    println!("run:       {} rounds, {:?}", params.rounds, if cli.quick { "quick" } else { "full" });
    let started = Instant::now();
    let mut samples: Vec<(System, Sample)> = Vec::new();
    for round in 0..params.rounds as usize {
        // A rotating order: each system goes first in some round.
        for k in 0..systems.len() {
            let system = systems[(round + k) % systems.len()];
            let sample = run_one(system, &params, cpus);
            println!("round {} {:>5}: {}", round + 1, system.name(), report::one_line(&sample));
            samples.push((system, sample));
        }
    }
    let medians: Vec<(System, Sample)> = systems
        .iter()
        .map(|&s| {
            let of: Vec<&Sample> = samples.iter().filter(|(t, _)| *t == s).map(|(_, x)| x).collect();
            (s, report::median(&of))
        })
        .collect();
    println!();
    print!("{}", report::table(&medians));
    println!();
    let elapsed = started.elapsed();
    println!("finished in {:.1} s", elapsed.as_secs_f64());
    let checks = report::targets(&medians);
    for check in &checks {
        println!("{check}");
    }
    if !cli.quick || cli.write_docs {
        let args = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
        let command = if args.is_empty() {
            "cargo run --release -p rmi-bench".to_owned()
        } else {
            format!("cargo run --release -p rmi-bench -- {args}")
        };
        match report::write_docs(&medians, &params, &machine, &cpus.to_string(), &command, &checks) {
            Ok(path) => println!("wrote {path}"),
            Err(e) => eprintln!("rmi-bench: cannot write the report: {e}"),
        }
    }
    for line in report::summary(&medians) {
        println!("{line}");
    }
}

/// Nanoseconds of `d`, saturating at `u32::MAX` (4.3 s).
pub fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// The server process of one system: `serve` answers commands on its standard input.
fn serve(system: System, cpu: Option<usize>) {
    if let Some(cpu) = cpu
        && let Err(e) = os::pin_to(cpu)
    {
        eprintln!("rmi-bench serve: {e}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut server: Box<dyn FnMut(usize) -> usize> = match system {
        System::Rmi => start(&runtime, RmiServer::default()),
        System::Tarpc => start(&runtime, TarpcServer),
        System::Raw => start(&runtime, RawServer),
    };
    let stdin = std::io::stdin();
    let mut line = String::with_capacity(64);
    let mut out = std::io::stdout().lock();
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("stats") => {
                let allocs = alloc::count();
                let (rss, hwm) = os::memory_kib();
                let _ = writeln!(out, "STATS {allocs} {rss} {hwm}");
            }
            Some("quit") => std::process::exit(0),
            Some("export") => {
                let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let done = server(n);
                let _ = writeln!(out, "EXPORTED {done}");
            }
            _ => {
                let _ = writeln!(out, "ERROR unknown command");
            }
        }
        let _ = out.flush();
        line.clear();
    }
}

/// Starts `server` on `runtime`, prints its address, and returns its `export` function.
fn start<S: Server + 'static>(
    runtime: &tokio::runtime::Runtime,
    mut server: S,
) -> Box<dyn FnMut(usize) -> usize> {
    let address = runtime.block_on(server.start());
    println!("LISTEN {address}");
    let handle = runtime.handle().clone();
    Box::new(move |n| {
        let _guard = handle.enter();
        server.export(n)
    })
}

/// A running server process.
struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    address: String,
}

impl ServerProcess {
    fn start(system: System, cpu: Option<usize>) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("this program"));
        command.arg("serve").arg(system.name());
        if let Some(cpu) = cpu {
            command.arg("--cpu").arg(cpu.to_string());
        }
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start the server");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server's address");
        let address = line.strip_prefix("LISTEN ").expect("LISTEN <address>").trim().to_owned();
        Self { child, stdin, stdout, address }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("server alive");
        self.stdin.flush().expect("server alive");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("server answer");
        line
    }

    /// Allocations so far, resident set and its peak (KiB).
    fn stats(&mut self) -> (u64, u64, u64) {
        let line = self.ask("stats");
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|w| w.parse().ok()).collect();
        (v[0], v[1], v[2])
    }

    fn export(&mut self, n: usize) -> usize {
        let line = self.ask(&format!("export {n}"));
        line.split_whitespace().nth(1).and_then(|w| w.parse().ok()).unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    /// Asks the server to exit (so tools watching it, such as a profiler, see a normal exit), and
    /// kills it if it has not within a few seconds.
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit").and_then(|()| self.stdin.flush());
        let given_up = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < given_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Measures one system in one round, against a fresh server process.
fn run_one(system: System, params: &Params, cpus: Cpus) -> Sample {
    let mut server = ServerProcess::start(system, cpus.server);
    let params = params.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // The client runs in a task of the runtime, as application code does: its wake-ups stay on the
    // runtime's worker threads.
    let task = runtime.spawn(async move {
        let sample = match system {
            System::Rmi => measure::<RmiClient>(&mut server, &params).await,
            System::Tarpc => measure::<TarpcClient>(&mut server, &params).await,
            System::Raw => measure::<RawClient>(&mut server, &params).await,
        };
        (sample, server)
    });
    let (sample, server) = runtime.block_on(task).expect("the measuring task");
    runtime.shutdown_background();
    drop(server);
    sample
}

/// A client of one system, as the workloads need it.
pub trait Client: Caller + Sized {
    /// Opens a connection to the server at `address`.
    fn connect(address: &str) -> impl Future<Output = Self>;
    /// Keeps `depth` add calls in flight on this client's one connection until `until`; returns
    /// each call's latency in nanoseconds.
    fn inflight(&mut self, depth: usize, until: Instant) -> impl Future<Output = Vec<u32>>;
}

impl Client for RmiClient {
    async fn connect(address: &str) -> Self {
        RmiClient::connect(address).await
    }

    async fn inflight(&mut self, depth: usize, until: Instant) -> Vec<u32> {
        from_tasks(self, depth, until).await
    }
}

impl Client for TarpcClient {
    async fn connect(address: &str) -> Self {
        TarpcClient::connect(address).await
    }

    async fn inflight(&mut self, depth: usize, until: Instant) -> Vec<u32> {
        from_tasks(self, depth, until).await
    }
}

impl Client for RawClient {
    async fn connect(address: &str) -> Self {
        RawClient::connect(address).await
    }

    async fn inflight(&mut self, depth: usize, until: Instant) -> Vec<u32> {
        self.pipelined(depth, until).await
    }
}

/// `depth` independent tasks, each calling `add` on a clone of `client` in a loop until `until`.
async fn from_tasks<C: Caller + Clone>(client: &C, depth: usize, until: Instant) -> Vec<u32> {
    let tasks: Vec<_> = (0..depth)
        .map(|task| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut i = task as i32;
                // One clock read per call: a call's end is the next one's start.
                let mut now = Instant::now();
                while now < until {
                    let start = now;
                    let sum = client.add(i, 1).await;
                    now = Instant::now();
                    latencies.push(nanos(now - start));
                    assert_eq!(sum, i.wrapping_add(1));
                    i = i.wrapping_add(1);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a calling task"));
    }
    all
}

/// The p50 and p99 of `latencies` (nanoseconds), in µs.
fn percentiles(latencies: &mut [u32]) -> (f64, f64) {
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(latencies[i]) / 1000.0
    };
    (at(0.50), at(0.99))
}

async fn measure<C: Client>(server: &mut ServerProcess, params: &Params) -> Sample {
    let mut client = C::connect(&server.address).await;
    let mut sample = Sample::default();

    // One call at a time, counting allocations on both sides.
    for i in 0..params.warmup_calls {
        client.add(i as i32, 1).await;
    }
    if params.runs(Workload::Seq) {
        sequential(&mut client, server, params, &mut sample).await;
    }
    if params.runs(Workload::Inflight) {
        inflight(&mut client, params, &mut sample).await;
    }
    if params.runs(Workload::Echo) {
        echo(&mut client, params, &mut sample).await;
    }
    if params.runs(Workload::Memory) {
        memory::<C>(server, params, &mut sample).await;
    }
    sample
}

async fn sequential<C: Client>(
    client: &mut C,
    server: &mut ServerProcess,
    params: &Params,
    sample: &mut Sample,
) {
    let mut latencies = Vec::with_capacity(params.seq_calls);
    let (server_before, _, _) = server.stats();
    let client_before = alloc::count();
    let started = Instant::now();
    for i in 0..params.seq_calls {
        let start = Instant::now();
        let sum = client.add(i as i32, 2).await;
        latencies.push(nanos(start.elapsed()));
        assert_eq!(sum, i as i32 + 2);
    }
    let elapsed = started.elapsed();
    let client_after = alloc::count();
    let (server_after, _, _) = server.stats();
    let calls = params.seq_calls as f64;
    sample.allocs_client = (client_after - client_before) as f64 / calls;
    sample.allocs_server = (server_after - server_before) as f64 / calls;
    sample.seq_cps = calls / elapsed.as_secs_f64();
    (sample.seq_p50_us, sample.seq_p99_us) = percentiles(&mut latencies);
}

/// Calls in flight on one connection.
async fn inflight<C: Client>(client: &mut C, params: &Params, sample: &mut Sample) {
    for &depth in &params.depths {
        client.inflight(depth, Instant::now() + params.inflight_time / 4).await;
        let started = Instant::now();
        let mut latencies = client.inflight(depth, started + params.inflight_time).await;
        let elapsed = started.elapsed();
        let cps = latencies.len() as f64 / elapsed.as_secs_f64();
        let (p50, p99) = percentiles(&mut latencies);
        sample.inflight.push((depth, cps, p50, p99));
    }
}

/// Large arguments and results.
async fn echo<C: Client>(client: &mut C, params: &Params, sample: &mut Sample) {
    let mut data: Vec<u8> = (0..params.echo_len).map(|i| i as u8).collect();
    for _ in 0..3 {
        data = client.echo(data).await;
    }
    let started = Instant::now();
    for _ in 0..params.echo_calls {
        data = client.echo(data).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(data.len(), params.echo_len);
    assert!(data.iter().enumerate().all(|(i, &b)| b == i as u8), "echo changed the data");
    sample.echo_mibps =
        params.echo_calls as f64 * params.echo_len as f64 / f64::from(1 << 20) / elapsed.as_secs_f64();
}

/// The server's peak memory after the other workloads; memory per idle connection and per object.
async fn memory<C: Client>(server: &mut ServerProcess, params: &Params, sample: &mut Sample) {
    sample.server_rss_kib = server.stats().2 as f64;

    // Memory per idle connection: each makes one call, then waits.
    let (_, before, _) = server.stats();
    let mut idle = Vec::with_capacity(params.idle_connections);
    for i in 0..params.idle_connections {
        let mut c = C::connect(&server.address).await;
        c.add(i as i32, 0).await;
        idle.push(c);
    }
    let (_, after, _) = server.stats();
    sample.connection_kib = after.saturating_sub(before) as f64 / params.idle_connections as f64;
    drop(idle);

    // Memory per exported object, for systems that have objects.
    let (_, before, _) = server.stats();
    if server.export(params.objects) > 0 {
        let (_, after, _) = server.stats();
        sample.object_bytes = Some(after.saturating_sub(before) as f64 * 1024.0 / params.objects as f64);
    }
}
