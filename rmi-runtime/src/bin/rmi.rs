//! `rmi`: run a standalone binder and inspect binders from the command line.
//!
//! ```text
//! rmi binder --listen 127.0.0.1:1099        # a binder, until Ctrl-C
//! rmi list 127.0.0.1:1099                   # its entries, as a table
//! rmi lookup 127.0.0.1:1099 calculator      # one entry
//! rmi find 127.0.0.1:1099 Calculator        # entries by interface name
//! ```

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rmi_runtime::binder::{Access, BinderConfig, BinderService, Naming, is_hidden_char};
use rmi_runtime::{Address, Binding, Config, Endpoint, Error, InterfaceId, Secret, Versions};

/// Run and inspect rmi binders (naming services for remote objects).
#[derive(Debug, Parser)]
#[command(name = "rmi", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a standalone binder until interrupted (Ctrl-C or SIGTERM).
    Binder(BinderArgs),
    /// Print the entries of the binder at ADDR as a table.
    List(Target),
    /// Print the entry NAME of the binder at ADDR.
    Lookup {
        #[command(flatten)]
        target: Target,
        /// The name to look up.
        name: String,
    },
    /// Print the entries of the binder at ADDR whose objects implement INTERFACE (its name, as in
    /// `#[remote(name = ...)]`, by default the trait's name).
    Find {
        #[command(flatten)]
        target: Target,
        /// The interface's name.
        interface: String,
        /// The versions to accept: `2`, `1..=3`, `2..` or `..`.
        #[arg(long, default_value = "..")]
        versions: Versions,
    },
    /// Remove the entry NAME from the binder at ADDR.
    Unbind {
        #[command(flatten)]
        target: Target,
        /// The name to remove.
        name: String,
        /// The binder's secret, if it requires one.
        #[arg(long, env = "RMI_BINDER_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

#[derive(Debug, Args)]
struct Target {
    /// The binder's address: `tcp://HOST:PORT` (or `HOST:PORT`) or `unix://PATH`.
    addr: Address,
    /// How long to wait for the binder.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
struct BinderArgs {
    /// Where to listen: `tcp://HOST:PORT` (or `HOST:PORT`; port 0 picks one) or `unix://PATH`.
    #[arg(long, default_value = "127.0.0.1:1099")]
    listen: Address,
    /// The address references to the binder carry, if not the listen address.
    #[arg(long)]
    advertise: Option<Address>,
    /// How long an entry lives without a renewal from its registrant.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// The most entries the binder holds.
    #[arg(long, default_value_t = BinderConfig::DEFAULT_MAX_ENTRIES)]
    max_entries: usize,
    /// Also let peers in this network change the binder (CIDR, repeatable): `10.0.0.0/8`,
    /// `0.0.0.0/0`. By default only peers on this host may.
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<ipnet::IpNet>,
    /// Refuse changes from this host unless an --allow network covers it.
    #[arg(long)]
    no_local: bool,
    /// Require this secret for changes.
    #[arg(long, env = "RMI_BINDER_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rmi: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Binder(args) => serve(args).await,
        Command::List(target) => {
            let entries = connect(&target).await?.list().await.map_err(|e| failed(&target, e))?;
            print!("{}", table(&entries));
            Ok(())
        }
        Command::Lookup { target, name } => {
            let binding = connect(&target).await?.resolve(&name).await.map_err(|e| failed(&target, e))?;
            print!("{}", details(&binding));
            Ok(())
        }
        Command::Find { target, interface, versions } => {
            let naming = connect(&target).await?;
            let entries = naming
                .lookup_interface(InterfaceId::from_name(&interface), versions)
                .await
                .map_err(|e| failed(&target, e))?;
            print!("{}", table(&entries));
            Ok(())
        }
        Command::Unbind { target, name, secret } => {
            let mut naming = connect(&target).await?;
            if let Some(secret) = secret {
                naming = naming.with_secret(Secret::new(secret));
            }
            naming.unbind(&name).await.map_err(|e| failed(&target, e))?;
            println!("unbound {name}");
            Ok(())
        }
    }
}

async fn serve(args: BinderArgs) -> Result<(), String> {
    let mut access = Access::local_only().allow_local(!args.no_local);
    for network in args.allow {
        access = access.allow(network);
    }
    if let Some(secret) = args.secret {
        access = access.secret(Secret::new(secret));
    }
    let config = BinderConfig::default().lease(args.lease).max_entries(args.max_entries).access(access);
    let endpoint = Endpoint::new();
    let address = endpoint.listen(&args.listen).await.map_err(|e| e.to_string())?;
    if let Some(advertise) = args.advertise {
        endpoint.set_advertised_address(advertise);
    }
    BinderService::serve(&endpoint, config).map_err(|e| e.to_string())?;
    println!("binder listening on {address}");
    shutdown_signal().await;
    eprintln!("rmi: shutting down");
    endpoint.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn connect(target: &Target) -> Result<Naming, String> {
    let endpoint = Endpoint::with_config(
        Config::default().handshake_timeout(target.timeout).call_timeout(target.timeout),
    );
    Naming::connect(&endpoint, &target.addr).await.map_err(|e| failed(target, e))
}

/// An error message that says which binder, with a hint for the usual mistakes.
fn failed(target: &Target, error: Error) -> String {
    let addr = &target.addr;
    match error {
        Error::Connect { .. } | Error::Handshake { .. } => {
            format!(
                "cannot reach a binder at {addr}: {error} (is the binder running, and is the address right?)"
            )
        }
        Error::NoSuchObject(_) => format!("{addr} is an rmi endpoint, but it serves no binder"),
        Error::Timeout(after) => format!("the binder at {addr} did not answer within {after:?}"),
        other => format!("binder at {addr}: {other}"),
    }
}

/// `text` with control and formatting characters escaped: what a binder sends is printed to a
/// terminal, and a binder may be hostile.
fn shown(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if is_hidden_char(c) { c.escape_unicode().collect() } else { vec![c] };
            escaped
        })
        .collect()
}

fn interface(binding: &Binding) -> String {
    let reference = &binding.reference;
    if binding.interface_name.is_empty() {
        format!("{} v{}", reference.interface, reference.version)
    } else {
        format!("{} v{}", shown(&binding.interface_name), reference.version)
    }
}

fn lease(binding: &Binding) -> String {
    match binding.expires_in {
        None => "permanent".into(),
        Some(left) => format!("{:.1}s", left.as_secs_f64()),
    }
}

fn address(binding: &Binding) -> String {
    binding.reference.address.as_ref().map_or_else(|| "(none)".into(), |a| shown(&a.to_string()))
}

/// The entries as a table with aligned columns.
fn table(entries: &[Binding]) -> String {
    if entries.is_empty() {
        return "(no entries)\n".into();
    }
    let header = ["NAME", "INTERFACE", "ADDRESS", "OBJECT", "LEASE"].map(String::from);
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|b| [shown(&b.name), interface(b), address(b), b.reference.object.to_string(), lease(b)])
        .collect();
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One entry, one field per line.
fn details(binding: &Binding) -> String {
    let reference = &binding.reference;
    format!(
        "name:        {}\ninterface:   {} ({})\naddress:     {}\nobject:      {}\nendpoint:    {}\nregistrant:  {}\nlease:       {}\n",
        shown(&binding.name),
        interface(binding),
        reference.interface,
        address(binding),
        reference.object,
        reference.endpoint,
        binding.registrant,
        lease(binding),
    )
}
