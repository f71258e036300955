//! The binder with its registrants in other processes: servers (`rmi-test-server bind ...`) register
//! their objects at a binder hosted by the test, clients look them up and call the servers directly,
//! and a server's death shows as its entry running out within one lease.

use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use rmi_runtime::binder::{Access, BinderConfig, BinderService, Naming};
use rmi_runtime::{Address, BinderError, Binding, Endpoint, EndpointId, Error, Secret, Stub};
use rmi_tests::process::TestServer;
use rmi_tests::services::{AccountClient, CalculatorClient};
use tokio::io::{BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::Instant;

/// The binder's lease: short, so that expiry tests are quick.
const LEASE: Duration = Duration::from_secs(1);
/// How much later than one lease after the kill an entry may still be seen (scheduling, the poll
/// period, a busy machine).
const EXPIRY_MARGIN: Duration = Duration::from_millis(500);
/// The longest any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(15);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A binder hosted by the test process, listening on loopback.
struct TestBinder {
    endpoint: Endpoint,
    address: Address,
    service: BinderService,
}

impl TestBinder {
    async fn start(access: Access) -> TestBinder {
        let endpoint = Endpoint::new();
        let address = endpoint.listen("tcp://127.0.0.1:0").await.expect("listen");
        let service = BinderService::serve(&endpoint, BinderConfig::default().lease(LEASE).access(access))
            .expect("serve");
        TestBinder { endpoint, address, service }
    }

    /// A client on an endpoint of its own (not the binder's), as on another host.
    async fn client(&self) -> (Endpoint, Naming) {
        let endpoint = Endpoint::new();
        let naming =
            within("connect to the binder", Naming::connect(&endpoint, &self.address)).await.unwrap();
        (endpoint, naming)
    }
}

/// A running `rmi-test-server`; killed when dropped.
struct ServerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Where the server listens.
    address: Address,
    /// The server's endpoint.
    endpoint: EndpointId,
}

impl ServerProcess {
    /// Starts `rmi-test-server bind BINDER NAME [--secret S]` and reads its address and endpoint id.
    async fn spawn(binder: &Address, name: &str, secret: Option<&str>) -> ServerProcess {
        let mut args = vec!["bind".to_owned(), binder.to_string(), name.to_owned()];
        if let Some(secret) = secret {
            args.extend(["--secret".to_owned(), secret.to_owned()]);
        }
        let TestServer { child, lines, address, endpoint } =
            TestServer::spawn(env!("CARGO_BIN_EXE_rmi-test-server").as_ref(), args).await;
        ServerProcess { child, lines, address, endpoint }
    }

    /// Starts a server that must bind `name`, and waits until it has.
    async fn bound(binder: &Address, name: &str, secret: Option<&str>) -> ServerProcess {
        let mut server = ServerProcess::spawn(binder, name, secret).await;
        assert_eq!(server.next_line().await, format!("BOUND {name}"));
        server
    }

    /// Starts a server whose bind must fail; returns its `BIND-ERROR` line's message and its exit
    /// status.
    async fn refused(binder: &Address, name: &str, secret: Option<&str>) -> (String, ExitStatus) {
        let mut server = ServerProcess::spawn(binder, name, secret).await;
        let line = server.next_line().await;
        let message =
            line.strip_prefix("BIND-ERROR ").unwrap_or_else(|| panic!("expected BIND-ERROR: {line}"));
        let status = within("the refused server exits", server.child.wait()).await.unwrap();
        (message.to_owned(), status)
    }

    async fn next_line(&mut self) -> String {
        next_line(&mut self.lines).await
    }

    /// Sends the server a signal (`STOP`, `CONT`) with `kill(1)`.
    #[cfg(unix)]
    async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the server runs").to_string();
        let status = within("kill(1)", Command::new("kill").arg(format!("-{signal}")).arg(pid).status())
            .await
            .expect("run kill(1)");
        assert!(status.success(), "kill -{signal}: {status}");
    }

    /// Kills the server and waits until it is gone.
    async fn kill(&mut self) {
        within("kill the server", self.child.kill()).await.expect("kill the server");
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    rmi_tests::process::next_line(lines).await
}

fn names(entries: &[Binding]) -> Vec<&str> {
    entries.iter().map(|b| b.name.as_str()).collect()
}

/// What identifies an entry, without its remaining lease.
fn identity(binding: &Binding) -> (String, rmi_runtime::RemoteRef, String, EndpointId) {
    (binding.name.clone(), binding.reference.clone(), binding.interface_name.clone(), binding.registrant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_binds_and_clients_call_it_directly_by_name_and_by_interface() {
    let binder = TestBinder::start(Access::local_only()).await;
    let server = ServerProcess::bound(&binder.address, "calc", None).await;
    let (client, naming) = binder.client().await;

    // The entry says where the object lives: the server process, not the binder.
    let binding = within("resolve", naming.resolve("calc")).await.unwrap();
    assert_eq!(binding.name, "calc");
    assert_eq!(binding.interface_name, "Calculator");
    assert_eq!(binding.reference.endpoint, server.endpoint);
    assert_eq!(binding.reference.address.as_ref(), Some(&server.address));
    assert_eq!(binding.reference.interface, CalculatorClient::DESCRIPTOR.id);
    assert_eq!(binding.registrant, server.endpoint, "the server process registered it");
    let left = binding.expires_in.expect("an entry made over the network has a lease");
    assert!(left <= LEASE, "{left:?}");
    assert_ne!(binding.reference.endpoint, binder.endpoint.id());

    // By name: the stub's connection goes straight to the server process.
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(calc.proxy().object(), binding.reference.object);
    assert_eq!(calc.proxy().connection().unwrap().peer_endpoint(), binding.reference.endpoint);
    assert_ne!(calc.proxy().connection().unwrap().peer_endpoint(), binder.endpoint.id());
    assert_eq!(within("add", calc.add(20, 22)).await.unwrap(), 42);
    assert_eq!(within("calls", calc.calls()).await.unwrap(), 1);

    // By interface: the same object.
    let all: Vec<(String, CalculatorClient)> = within("lookup_all", naming.lookup_all()).await.unwrap();
    assert_eq!(all.len(), 1);
    let (name, by_interface) = &all[0];
    assert_eq!(name, "calc");
    assert_eq!(by_interface.proxy().object(), binding.reference.object);
    assert_eq!(by_interface.proxy().connection().unwrap().peer_endpoint(), server.endpoint);
    assert_eq!(within("add", by_interface.add(1, 2)).await.unwrap(), 3);

    let any: CalculatorClient = within("lookup_any", naming.lookup_any()).await.unwrap();
    assert_eq!(any.proxy().object(), binding.reference.object);
    assert_eq!(any.proxy().connection().unwrap().peer_endpoint(), server.endpoint);
    assert_eq!(within("calls", any.calls()).await.unwrap(), 2, "every stub reached the one servant");

    let by_id = within("lookup_interface", naming.lookup_interface(CalculatorClient::DESCRIPTOR.id, 1..=1))
        .await
        .unwrap();
    assert_eq!(names(&by_id), ["calc"]);

    // The client talks to two endpoints: the binder and the server, nothing else.
    let mut peers: Vec<EndpointId> = client.connections().iter().map(|c| c.peer_endpoint()).collect();
    peers.sort();
    let mut expected = vec![binder.endpoint.id(), server.endpoint];
    expected.sort();
    assert_eq!(peers, expected);
    assert_eq!(binder.service.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_entry_lives_on_while_it_renews_and_vanishes_within_one_lease_of_its_death() {
    let binder = TestBinder::start(Access::local_only()).await;
    let mut server = ServerProcess::bound(&binder.address, "calc", None).await;
    let bound_at = Instant::now();
    let (_client, naming) = binder.client().await;

    // While the server runs, its endpoint renews the lease: the entry outlives its first lease.
    while bound_at.elapsed() < LEASE + LEASE / 2 {
        let entries = within("list", naming.list()).await.unwrap();
        assert_eq!(
            names(&entries),
            ["calc"],
            "the live server's entry vanished after {:?}",
            bound_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.kill().await;
    let killed_at = Instant::now();
    // The binder does not notice a death: the entry stays until the lease runs out.
    let entries = within("list", naming.list()).await.unwrap();
    assert_eq!(names(&entries), ["calc"], "the entry went at once");
    let left = entries[0].expires_in.expect("a leased entry");
    assert!(left <= LEASE, "{left:?}");

    let deadline = killed_at + LEASE + EXPIRY_MARGIN + Duration::from_secs(5);
    let gone_after = loop {
        let entries = within("list", naming.list()).await.unwrap();
        if entries.is_empty() {
            break killed_at.elapsed();
        }
        assert_eq!(names(&entries), ["calc"]);
        assert!(
            Instant::now() < deadline,
            "the dead server's entry is still listed {:?} after the kill",
            killed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("the killed server's entry vanished {gone_after:?} after the kill (lease {LEASE:?})");
    assert!(gone_after <= LEASE + EXPIRY_MARGIN, "the entry vanished {gone_after:?} after the kill");
    assert!(
        gone_after >= left,
        "the entry vanished after {gone_after:?}, before its lease ({left:?}) ran out"
    );
    assert!(matches!(
        within("resolve", naming.resolve("calc")).await,
        Err(Error::Binder(BinderError::NotBound(name))) if name == "calc"
    ));
    assert!(within("lookup_all", naming.lookup_all::<CalculatorClient>()).await.unwrap().is_empty());

    // The name is free again: a new server takes it, and lookups find the new one.
    let successor = ServerProcess::bound(&binder.address, "calc", None).await;
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(calc.proxy().connection().unwrap().peer_endpoint(), successor.endpoint);
    assert_eq!(within("add", calc.add(2, 2)).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_cannot_bind_a_taken_name_and_the_first_entry_stays() {
    let binder = TestBinder::start(Access::local_only()).await;
    let first = ServerProcess::bound(&binder.address, "calc", None).await;
    let (_client, naming) = binder.client().await;
    let before = within("resolve", naming.resolve("calc")).await.unwrap();

    let (message, status) = ServerProcess::refused(&binder.address, "calc", None).await;
    assert!(message.contains("NameTaken"), "{message}");
    assert!(message.contains("the name `calc` is already bound"), "{message}");
    assert!(!status.success(), "{status}");

    let after = within("resolve", naming.resolve("calc")).await.unwrap();
    assert_eq!(identity(&after), identity(&before));
    assert_eq!(after.registrant, first.endpoint);
    assert_eq!(names(&within("list", naming.list()).await.unwrap()), ["calc"]);
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(calc.proxy().connection().unwrap().peer_endpoint(), first.endpoint);
    assert_eq!(within("add", calc.add(40, 2)).await.unwrap(), 42);

    // Another name is no problem for a second server.
    let second = ServerProcess::bound(&binder.address, "calc-2", None).await;
    let all = within("lookup_all", naming.lookup_all::<CalculatorClient>()).await.unwrap();
    let found: Vec<(&str, EndpointId)> = all
        .iter()
        .map(|(name, stub)| (name.as_str(), stub.proxy().connection().unwrap().peer_endpoint()))
        .collect();
    assert_eq!(found, [("calc", first.endpoint), ("calc-2", second.endpoint)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_with_the_wrong_interface_is_refused() {
    let binder = TestBinder::start(Access::local_only()).await;
    let server = ServerProcess::bound(&binder.address, "calc", None).await;
    let (client, naming) = binder.client().await;

    let error =
        within("lookup", naming.lookup::<AccountClient>("calc")).await.expect_err("a mistyped lookup fails");
    let message = error.to_string();
    assert!(message.starts_with("`calc` is bound to an object of interface Calculator ("), "{message}");
    assert!(message.contains(", not Account ("), "{message}");
    match error {
        Error::Binder(BinderError::WrongInterface { name, expected, expected_name, bound, bound_name }) => {
            assert_eq!(name, "calc");
            assert_eq!((expected, expected_name.as_str()), (AccountClient::DESCRIPTOR.id, "Account"));
            assert_eq!((bound, bound_name.as_str()), (CalculatorClient::DESCRIPTOR.id, "Calculator"));
        }
        other => panic!("expected WrongInterface, got {other:?}"),
    }
    // A mistyped lookup does not even contact the server.
    assert!(client.connection_to(server.endpoint).is_none());

    assert!(within("lookup_all", naming.lookup_all::<AccountClient>()).await.unwrap().is_empty());
    assert!(matches!(
        within("lookup_any", naming.lookup_any::<AccountClient>()).await,
        Err(Error::Binder(BinderError::NoneBound { interface, .. })) if interface == AccountClient::DESCRIPTOR.id
    ));
    // The right interface still works.
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(within("add", calc.add(1, 1)).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binder_with_a_secret_refuses_servers_without_it() {
    let binder = TestBinder::start(Access::local_only().secret(Secret::new("open sesame"))).await;
    let (_client, naming) = binder.client().await;

    let (message, status) = ServerProcess::refused(&binder.address, "calc", None).await;
    assert!(message.contains("not allowed to change the binder"), "{message}");
    assert!(message.contains("Unauthorized"), "{message}");
    assert!(message.contains("requires a secret"), "{message}");
    assert!(!status.success(), "{status}");
    assert!(within("list", naming.list()).await.unwrap().is_empty());

    let (message, status) = ServerProcess::refused(&binder.address, "calc", Some("open sesame!")).await;
    assert!(message.contains("not allowed to change the binder"), "{message}");
    assert!(message.contains("wrong secret"), "{message}");
    assert!(!message.contains("open sesame"), "the error shows the secret: {message}");
    assert!(!status.success(), "{status}");
    assert!(within("list", naming.list()).await.unwrap().is_empty());

    let server = ServerProcess::bound(&binder.address, "calc", Some("open sesame")).await;
    let entries = within("list", naming.list()).await.unwrap();
    assert_eq!(names(&entries), ["calc"]);
    assert_eq!(entries[0].registrant, server.endpoint);
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(within("add", calc.add(3, 4)).await.unwrap(), 7);

    // Lookups are open, but changes need the secret: a client without it cannot unbind the entry.
    assert!(matches!(
        within("unbind", naming.unbind("calc")).await,
        Err(Error::Binder(BinderError::Unauthorized(_)))
    ));
    assert_eq!(names(&within("list", naming.list()).await.unwrap()), ["calc"]);
    let with_secret = naming.clone().with_secret(Secret::new("open sesame"));
    within("unbind", with_secret.unbind("calc")).await.unwrap();
    assert!(within("list", naming.list()).await.unwrap().is_empty());
}

/// Polls `list()` every 20 ms until `done` holds of the names listed, and returns how long that took
/// (failing after `limit` plus a generous allowance, so a regression fails rather than hangs).
async fn poll_names(naming: &Naming, limit: Duration, done: impl Fn(&[&str]) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let entries = within("list", naming.list()).await.unwrap();
        if done(&names(&entries)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit + Duration::from_secs(5),
            "still {:?} after {:?}",
            names(&entries),
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stalled_past_its_lease_loses_its_entry_and_binds_it_again_when_it_resumes() {
    let binder = TestBinder::start(Access::local_only()).await;
    let server = ServerProcess::bound(&binder.address, "calc", None).await;
    let (_client, naming) = binder.client().await;
    let before = within("resolve", naming.resolve("calc")).await.unwrap();

    // A stopped process renews nothing: its entry runs out as a dead one's would.
    server.signal("STOP").await;
    let gone_after = poll_names(&naming, LEASE, |names| names.is_empty()).await;
    assert!(gone_after <= LEASE + EXPIRY_MARGIN, "the stalled server's entry vanished after {gone_after:?}");

    // Resumed, its endpoint finds its lease gone at the next renewal and binds the entry again.
    server.signal("CONT").await;
    let back_after = poll_names(&naming, LEASE / 3, |names| names == ["calc"]).await;
    assert!(back_after <= LEASE / 3 + EXPIRY_MARGIN, "the entry came back after {back_after:?}");
    let after = within("resolve", naming.resolve("calc")).await.unwrap();
    assert_eq!(identity(&after), identity(&before));
    let calc: CalculatorClient = within("lookup", naming.lookup("calc")).await.unwrap();
    assert_eq!(within("add", calc.add(5, 6)).await.unwrap(), 11);
}

/// An entry another endpoint unbound stays unbound when its registrant's lease lapses and the
/// registrant binds its other entries again: the binder tells it which ones it may.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_unbound_by_an_administrator_stays_unbound_after_its_server_stalls() {
    let binder = TestBinder::start(Access::local_only()).await;
    let server = ServerProcess::bound(&binder.address, "calc", None).await;
    let (_client, naming) = binder.client().await;
    within("unbind", naming.unbind("calc")).await.unwrap();
    assert!(within("list", naming.list()).await.unwrap().is_empty());

    // The server stalls for longer than its lease. (A deliberate stall, not a synchronisation: the
    // lapse of a lease without entries is visible nowhere to wait for.)
    server.signal("STOP").await;
    tokio::time::sleep(LEASE + LEASE / 2).await;
    server.signal("CONT").await;

    // Once resumed, its renewal finds no lease; the entry must stay unbound.
    let start = Instant::now();
    while start.elapsed() < LEASE {
        let entries = within("list", naming.list()).await.unwrap();
        assert!(
            entries.is_empty(),
            "{:?} is bound again {:?} after the server resumed",
            names(&entries),
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
