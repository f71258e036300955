//! Remote references as values, within one process: by value versus by reference, references
//! passed on (three parties), callbacks to a client that does not listen, factories, calls to
//! objects of the same endpoint, and the distributed garbage collector. Separate processes are in
//! `tests/tests/references_process.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmi_runtime::{
    CallContext, Config, Endpoint, EndpointId, Error, Export, NoError, RemoteRef, Stub, remote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Says hello where it runs.
#[remote]
pub trait Hello {
    /// A greeting; the servant counts it.
    async fn hello(&self) -> String;
    /// Who called, as the servant saw it.
    async fn caller(&self) -> EndpointId;
}

/// A greeting that travels by value: its `hello` runs wherever the value is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Greeting {
    text: String,
}

impl Greeting {
    fn hello(&self) -> String {
        format!("{} (ran at the client)", self.text)
    }
}

/// Hands out greetings by value and by reference, and calls greeters it is given.
#[remote]
pub trait Test {
    /// A greeting, by value.
    async fn get_value(&self) -> Greeting;
    /// A new greeter, by reference.
    async fn get_reference(&self) -> HelloClient;
    /// Several greeters, by reference, nested in other types.
    async fn get_many(&self, n: u32) -> (Vec<HelloClient>, Option<HelloClient>);
    /// Calls `greeter` and returns what it said and who it saw calling.
    async fn call_it(&self, greeter: HelloClient) -> Result<(String, EndpointId), String>;
    /// Keeps `greeter` (`None` lets go of what it kept).
    async fn keep(&self, greeter: Option<HelloClient>);
    /// Calls the greeter it kept.
    async fn call_kept(&self) -> Result<String, String>;
}

/// A greeter servant: counts its calls, remembers who called.
struct Greeter {
    name: String,
    calls: Arc<AtomicUsize>,
}

impl Hello for Greeter {
    async fn hello(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        format!("hello from {} (ran at the server)", self.name)
    }

    async fn caller(&self) -> EndpointId {
        CallContext::current().expect("in a call").peer_endpoint()
    }
}

/// The `Test` servant of an endpoint.
struct Tester {
    endpoint: Endpoint,
    calls: Arc<AtomicUsize>,
    /// Tells of each greeter it made that became unreferenced.
    unreferenced: mpsc::UnboundedSender<()>,
    kept: Mutex<Option<HelloClient>>,
}

impl Tester {
    fn new(endpoint: &Endpoint, calls: &Arc<AtomicUsize>, unreferenced: mpsc::UnboundedSender<()>) -> Self {
        Self { endpoint: endpoint.clone(), calls: Arc::clone(calls), unreferenced, kept: Mutex::default() }
    }

    fn greeter(&self) -> HelloClient {
        let servant = Arc::new(Greeter { name: "the server".into(), calls: Arc::clone(&self.calls) });
        let tell = self.unreferenced.clone();
        let options = Export::new().on_unreferenced(move || {
            let _ = tell.send(());
        });
        HelloClient::export_with(&self.endpoint, servant, options)
    }
}

impl Test for Tester {
    async fn get_value(&self) -> Greeting {
        Greeting { text: "hello from a value".into() }
    }

    async fn get_reference(&self) -> HelloClient {
        self.greeter()
    }

    async fn get_many(&self, n: u32) -> (Vec<HelloClient>, Option<HelloClient>) {
        ((0..n).map(|_| self.greeter()).collect(), Some(self.greeter()))
    }

    async fn call_it(&self, greeter: HelloClient) -> Result<(String, EndpointId), String> {
        let said = greeter.hello().await.map_err(|e| e.to_string())?;
        let seen = greeter.caller().await.map_err(|e| e.to_string())?;
        Ok((said, seen))
    }

    async fn keep(&self, greeter: Option<HelloClient>) {
        let old = std::mem::replace(&mut *self.kept.lock().unwrap(), greeter);
        drop(old);
    }

    async fn call_kept(&self) -> Result<String, String> {
        let kept = self.kept.lock().unwrap().clone().ok_or("nothing kept")?;
        kept.hello().await.map_err(|e| e.to_string())
    }
}

struct Side {
    endpoint: Endpoint,
    test: TestClient,
    reference: RemoteRef,
    calls: Arc<AtomicUsize>,
    unreferenced: mpsc::UnboundedReceiver<()>,
}

/// An endpoint listening on `address` with a `Test` object, exported for good.
async fn server(address: &str, config: Config) -> Side {
    let endpoint = Endpoint::with_config(config);
    endpoint.listen(address).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, unreferenced) = mpsc::unbounded_channel();
    let tester = Tester::new(&endpoint, &calls, tx);
    let reference = endpoint.export(TestSkeleton::new(tester));
    let test = endpoint.proxy(&reference).await.unwrap();
    Side { endpoint, test, reference, calls, unreferenced }
}

/// Awaits `future` for at most `secs` seconds (of the test's clock).
async fn within<F: Future>(secs: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), future).await.expect("test step timed out")
}

#[tokio::test]
async fn a_value_runs_at_the_client_and_a_reference_at_the_server() {
    let server = server("tcp://127.0.0.1:0", Config::default()).await;
    let client = Endpoint::new();
    let test: TestClient = client.proxy(&server.reference).await.unwrap();

    let value = test.get_value().await.unwrap();
    assert_eq!(value.hello(), "hello from a value (ran at the client)");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0, "a value's method ran at the server");

    let reference = test.get_reference().await.unwrap();
    assert!(!reference.proxy().is_local());
    assert_eq!(reference.reference().endpoint, server.endpoint.id());
    assert!(reference.reference().collected);
    assert_eq!(reference.hello().await.unwrap(), "hello from the server (ran at the server)");
    assert_eq!(server.calls.load(Ordering::SeqCst), 1, "a reference's method did not run at the server");
    assert_eq!(reference.caller().await.unwrap(), client.id());
}

#[tokio::test]
async fn references_arrive_nested_in_other_types() {
    let mut server = server("memory://refs-nested", Config::default()).await;
    let client = Endpoint::new();
    let test: TestClient = client.proxy(&server.reference).await.unwrap();
    let baseline = server.endpoint.exported_count();
    let (many, one) = test.get_many(3).await.unwrap();
    assert_eq!(server.endpoint.exported_count(), baseline + 4);
    for greeter in many.iter().chain(&one) {
        assert!(greeter.hello().await.unwrap().contains("ran at the server"));
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 4);
    drop((many, one));
    for _ in 0..4 {
        within(10, server.unreferenced.recv()).await.unwrap();
    }
    assert_eq!(server.endpoint.exported_count(), baseline);
}

#[tokio::test]
async fn a_proxy_passed_on_travels_as_the_original_reference() {
    // A (this client) gets a greeter from C and hands it to B: B calls C directly.
    let c = server("tcp://127.0.0.1:0", Config::default()).await;
    let b = server("tcp://127.0.0.1:0", Config::default()).await;
    let a = Endpoint::new();
    let at_c: TestClient = a.proxy(&c.reference).await.unwrap();
    let at_b: TestClient = a.proxy(&b.reference).await.unwrap();

    let greeter = at_c.get_reference().await.unwrap();
    let (said, seen) = at_b.call_it(greeter.clone()).await.unwrap().unwrap();
    assert!(said.contains("ran at the server"));
    assert_eq!(seen, b.endpoint.id(), "C saw the call come from someone else than B");
    assert!(c.endpoint.connection_to(b.endpoint.id()).is_some(), "B did not connect to C");
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
    // A's own stub still calls C directly.
    assert_eq!(greeter.caller().await.unwrap(), a.id());

    // Passed back to its own endpoint, a reference becomes a local object: no network.
    let (_, seen) = c.test.call_it(greeter.clone()).await.unwrap().unwrap();
    assert_eq!(seen, c.endpoint.id());
}

#[tokio::test]
async fn a_reference_handed_on_and_dropped_survives_until_the_receiver_holds_it() {
    let mut c =
        server("memory://refs-handoff-c", Config::default().dgc_lease(Duration::from_millis(300))).await;
    let b = server("memory://refs-handoff-b", Config::default()).await;
    // A keeps a reference it passed on for one lease of C (its own, before C has granted one).
    let a = Endpoint::with_config(Config::default().dgc_lease(Duration::from_millis(300)));
    let at_c: TestClient = a.proxy(&c.reference).await.unwrap();
    let at_b: TestClient = a.proxy(&b.reference).await.unwrap();
    let baseline = c.endpoint.exported_count();

    let greeter = at_c.get_reference().await.unwrap();
    at_b.keep(Some(greeter.clone())).await.unwrap();
    drop(greeter); // A lets go at once; B's registration may not have reached C yet.
    tokio::time::sleep(Duration::from_millis(900)).await; // three of C's leases
    assert_eq!(at_b.call_kept().await.unwrap(), Ok("hello from the server (ran at the server)".into()));
    assert_eq!(c.endpoint.exported_count(), baseline + 1);
    assert!(c.unreferenced.try_recv().is_err(), "the greeter was unreferenced while B held it");

    at_b.keep(None).await.unwrap();
    within(10, c.unreferenced.recv()).await.unwrap();
    assert_eq!(c.endpoint.exported_count(), baseline);
}

/// Told of new messages.
#[remote]
pub trait Listener {
    /// A message for the listener.
    async fn on_message(&self, from: String, text: String);
}

/// A chat room: listeners subscribe; a message goes to all of them.
#[remote]
pub trait Room {
    /// Adds a listener.
    async fn subscribe(&self, listener: ListenerClient);
    /// Sends `text` to every listener; returns how many got it.
    async fn say(&self, from: String, text: String) -> usize;
}

#[derive(Default)]
struct ChatRoom {
    listeners: tokio::sync::Mutex<Vec<ListenerClient>>,
}

impl Room for ChatRoom {
    async fn subscribe(&self, listener: ListenerClient) {
        self.listeners.lock().await.push(listener);
    }

    async fn say(&self, from: String, text: String) -> usize {
        let listeners = self.listeners.lock().await.clone();
        let mut reached = 0;
        for listener in listeners {
            if listener.on_message(from.clone(), text.clone()).await.is_ok() {
                reached += 1;
            }
        }
        reached
    }
}

struct Inbox(mpsc::UnboundedSender<String>);

impl Listener for Inbox {
    async fn on_message(&self, from: String, text: String) {
        let _ = self.0.send(format!("{from}: {text}"));
    }
}

#[tokio::test]
async fn callbacks_reach_clients_without_a_listening_socket() {
    let server = Endpoint::new();
    server.listen("tcp://127.0.0.1:0").await.unwrap();
    let room = server.export(RoomSkeleton::new(ChatRoom::default()));

    let mut inboxes = Vec::new();
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let client = Endpoint::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = ListenerClient::export(&client, Inbox(tx));
        assert_eq!(listener.reference().address, None, "a client that does not listen has no address");
        let at_room: RoomClient = client.proxy(&room).await.unwrap();
        at_room.subscribe(listener).await.unwrap();
        inboxes.push(rx);
        rooms.push((client, at_room));
    }
    assert!(rooms.iter().all(|(client, _)| client.address().is_none()));
    assert_eq!(rooms[0].1.say("ann".into(), "hi".into()).await.unwrap(), 2);
    for inbox in &mut inboxes {
        assert_eq!(within(5, inbox.recv()).await.unwrap(), "ann: hi");
    }
    // The callbacks used the connections the clients opened: the server dialled nobody.
    assert!(server.connections().iter().all(|c| !c.dialled()));
    // The listeners stay exported while the room holds them, though the clients dropped theirs.
    assert!(rooms.iter().all(|(client, _)| client.exported_count() == 1));
}

#[tokio::test]
async fn a_proxy_to_an_object_of_its_own_endpoint_skips_the_network() {
    let endpoint = Endpoint::new(); // does not even listen
    let (tx, _rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let tester = Tester::new(&endpoint, &calls, tx);
    let reference = endpoint.export(TestSkeleton::new(tester));
    let test: TestClient = endpoint.proxy(&reference).await.unwrap();
    assert!(test.proxy().is_local() && test.proxy().connection().is_none());

    let greeter = test.get_reference().await.unwrap();
    assert!(greeter.proxy().is_local());
    let (said, seen) = test.call_it(greeter).await.unwrap().unwrap();
    assert!(said.contains("ran at the server"));
    assert_eq!(seen, endpoint.id(), "a local call's context names this endpoint");
    assert!(endpoint.connections().is_empty(), "a local call opened a connection");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // By value still: a value is copied, and a panicking servant is an error, not a crash.
    let value = test.get_value().await.unwrap();
    assert_eq!(value.hello(), "hello from a value (ran at the client)");
}

/// Hands out sessions; the factory of the DGC tests.
#[remote]
pub trait Factory {
    /// A new session object.
    async fn open(&self) -> SessionClient;
}

/// A per-client session.
#[remote]
pub trait Session {
    /// Counts calls to this session.
    async fn touch(&self) -> u32;
}

struct Sessions {
    endpoint: Endpoint,
    gone: mpsc::UnboundedSender<()>,
}

struct OneSession(AtomicUsize);

impl Session for OneSession {
    async fn touch(&self) -> u32 {
        u32::try_from(self.0.fetch_add(1, Ordering::SeqCst) + 1).unwrap()
    }
}

impl Factory for Sessions {
    async fn open(&self) -> SessionClient {
        let gone = self.gone.clone();
        let options = Export::new().on_unreferenced(move || {
            let _ = gone.send(());
        });
        SessionClient::export_with(&self.endpoint, Arc::new(OneSession(AtomicUsize::new(0))), options)
    }
}

/// A server endpoint with a factory (exported for good), a client endpoint with a stub for it, the
/// server's unreferenced sessions, and how many objects the server exported before any session.
struct Factories {
    server: Endpoint,
    client: Endpoint,
    factory: FactoryClient,
    gone: mpsc::UnboundedReceiver<()>,
    baseline: usize,
}

async fn factories(address: &str, config: Config) -> Factories {
    let server = Endpoint::with_config(config);
    server.listen(address).await.unwrap();
    let (tell, gone) = mpsc::unbounded_channel();
    let reference = server.export(FactorySkeleton::new(Sessions { endpoint: server.clone(), gone: tell }));
    let client = Endpoint::new();
    let factory = client.proxy(&reference).await.unwrap();
    let baseline = server.exported_count();
    Factories { server, client, factory, gone, baseline }
}

#[tokio::test]
async fn ten_thousand_references_created_and_dropped_leave_the_table_as_it_was() {
    let Factories { server, client, factory, mut gone, baseline } =
        factories("memory://refs-10k", Config::default()).await;
    const N: usize = 10_000;
    let mut batch = Vec::new();
    for i in 0..N {
        let session = factory.open().await.unwrap();
        if i % 100 == 0 {
            assert_eq!(session.touch().await.unwrap(), 1);
        }
        batch.push(session);
        if batch.len() == 100 {
            batch.clear(); // dropped: held by nobody
        }
    }
    drop(batch);
    for _ in 0..N {
        within(30, gone.recv()).await.unwrap();
    }
    assert_eq!(server.exported_count(), baseline);
    // Every hold was let go: the client's collector keeps nothing (it forgets before it tells).
    assert_eq!(client.held_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn holding_a_reference_keeps_its_object_past_many_leases() {
    let lease = Duration::from_secs(1);
    let Factories { server, factory, mut gone, baseline, .. } =
        factories("memory://refs-hold", Config::default().dgc_lease(lease)).await;
    let session = factory.open().await.unwrap();
    let copy = session.clone();
    drop(session); // clones share one hold

    tokio::time::sleep(lease * 10).await;
    assert_eq!(copy.touch().await.unwrap(), 1, "the object went while held");
    assert_eq!(server.exported_count(), baseline + 1);
    assert!(gone.try_recv().is_err());

    drop(copy);
    within(5, gone.recv()).await.unwrap();
    assert_eq!(server.exported_count(), baseline);
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_stops_renewing_loses_its_holds_when_its_lease_ends() {
    let lease = Duration::from_secs(2);
    let Factories { server, client, factory, mut gone, baseline } =
        factories("memory://refs-dead", Config::default().dgc_lease(lease)).await;
    let sessions: Vec<_> = futures_join(&factory, 5).await;
    assert_eq!(server.exported_count(), baseline + 5);

    // The client goes silent without letting go: cut off first, its shutdown cannot say goodbye,
    // and its keepers stop.
    let stopped = tokio::time::Instant::now();
    server.connection_to(client.id()).expect("the client's connection").close();
    client.shutdown().await;
    for _ in 0..5 {
        within(60, gone.recv()).await.unwrap();
    }
    let after = stopped.elapsed();
    assert!(
        after <= lease + lease / 4 + Duration::from_millis(100),
        "collected {after:?} after the holder stopped"
    );
    assert!(after >= lease / 2, "collected {after:?} after the holder stopped, before its lease could end");
    assert_eq!(server.exported_count(), baseline);
    drop(sessions);
}

async fn futures_join(factory: &FactoryClient, n: usize) -> Vec<SessionClient> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(factory.open().await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_reference_in_transit_is_kept_one_lease_for_its_receiver() {
    let lease = Duration::from_secs(1);
    let Factories { server, client, factory, mut gone, baseline } =
        factories("memory://refs-transit", Config::default().dgc_lease(lease)).await;

    // Read the reply as a plain reference: nobody registers it.
    let open = FactoryOp::Open.descriptor();
    let raw = factory.proxy().call::<_, RemoteRef, NoError>(open, &()).await.unwrap().unwrap();
    assert!(raw.collected);
    tokio::time::sleep(lease * 3 / 4).await;
    assert_eq!(server.exported_count(), baseline + 1, "collected while in transit");
    // Registered late, but within the lease: it lives on.
    let session: SessionClient = client.proxy(&raw).await.unwrap();
    tokio::time::sleep(lease * 5).await;
    assert_eq!(session.touch().await.unwrap(), 1);
    drop(session);
    within(5, gone.recv()).await.unwrap();

    // Never registered: it goes one lease after it was sent.
    let sent = tokio::time::Instant::now();
    let _raw = factory.proxy().call::<_, RemoteRef, NoError>(open, &()).await.unwrap().unwrap();
    within(5, gone.recv()).await.unwrap();
    assert!(sent.elapsed() >= lease, "collected before its lease ended");
    assert_eq!(server.exported_count(), baseline);
}

#[tokio::test]
async fn pinned_objects_stay_and_are_told_when_unreferenced() {
    let endpoint = Endpoint::new();
    endpoint.listen("memory://refs-pinned").await.unwrap();
    let (tx, mut told) = mpsc::unbounded_channel();
    let options = Export::new().pinned().on_unreferenced(move || {
        let _ = tx.send(());
    });
    let session = SessionClient::export_with(&endpoint, Arc::new(OneSession(AtomicUsize::new(0))), options);
    let object = session.proxy().object();
    drop(session);
    within(5, told.recv()).await.unwrap();
    assert_eq!(endpoint.exported_count(), 1, "a pinned object was collected");
    assert!(endpoint.unpin(object));
    assert_eq!(endpoint.exported_count(), 0, "an unpinned, unreferenced object stayed");
    assert!(!endpoint.pin(object), "pinned an object that is gone");
}

#[tokio::test]
async fn a_reference_of_another_interface_is_refused_when_decoded() {
    let Factories { server, factory, .. } =
        factories("memory://refs-wrong-interface", Config::default()).await;
    let open = FactoryOp::Open.descriptor();
    // The reply holds a SessionClient; decoding it as a HelloClient must fail, not mistype it.
    let r = factory.proxy().call::<_, HelloClient, NoError>(open, &()).await;
    let Err(Error::Decode(message)) = r else { panic!("decoded a session as a greeter: {r:?}") };
    assert!(message.contains("Hello"), "{message}");
    // Outside a call, a stub cannot be decoded: there is no endpoint to bind it to.
    let bytes =
        postcard::to_allocvec(&server.export(SessionSkeleton::new(OneSession(AtomicUsize::new(0))))).unwrap();
    assert!(postcard::from_bytes::<SessionClient>(&bytes).is_err());
}

#[tokio::test(start_paused = true)]
async fn an_object_bound_in_a_binder_stays_until_unbound() {
    use rmi_runtime::binder::{BinderConfig, BinderService, Naming};

    let lease = Duration::from_secs(1);
    let binder = Endpoint::new();
    let binder_address = binder.listen("memory://refs-bound-binder").await.unwrap();
    let _service = BinderService::serve(&binder, BinderConfig::default().lease(lease)).unwrap();

    let server = Endpoint::with_config(Config::default().dgc_lease(lease));
    server.listen("memory://refs-bound-server").await.unwrap();
    let (tx, mut gone) = mpsc::unbounded_channel();
    let options = Export::new().on_unreferenced(move || {
        let _ = tx.send(());
    });
    let session = SessionClient::export_with(&server, Arc::new(OneSession(AtomicUsize::new(0))), options);
    let naming = Naming::connect(&server, &binder_address).await.unwrap();
    naming.bind("session", &session.reference()).await.unwrap();
    drop(session);

    tokio::time::sleep(lease * 5).await;
    assert_eq!(server.exported_count(), 1, "a bound object was collected");
    let client = Endpoint::new();
    let found: SessionClient =
        Naming::connect(&client, &binder_address).await.unwrap().lookup("session").await.unwrap();
    assert_eq!(found.touch().await.unwrap(), 1);
    drop(found);

    naming.unbind("session").await.unwrap();
    within(10, gone.recv()).await.unwrap();
    assert_eq!(server.exported_count(), 0);
}

/// Hands out references it makes up: to objects of endpoints that do not exist.
#[remote]
pub trait Forger {
    /// `n` references, each to an object of another made-up endpoint.
    async fn forged(&self, n: u32) -> Vec<RemoteRef>;
}

struct Forgeries;

impl Forger for Forgeries {
    async fn forged(&self, n: u32) -> Vec<RemoteRef> {
        let hello = <HelloClient as Stub>::DESCRIPTOR;
        (0..n)
            .map(|i| RemoteRef {
                endpoint: EndpointId::random(),
                address: Some(format!("memory://refs-forged-nowhere-{i}").parse().unwrap()),
                object: rmi_runtime::ObjectId::random(),
                interface: hello.id,
                version: hello.version,
                collected: true,
            })
            .collect()
    }
}

#[tokio::test]
async fn references_to_countless_endpoints_hold_at_most_the_limit() {
    let server = Endpoint::new();
    server.listen("memory://refs-forger").await.unwrap();
    let forger = server.export(ForgerSkeleton::new(Forgeries));
    let client = Endpoint::with_config(Config::default().max_held_endpoints(2));
    let forger: ForgerClient = client.proxy(&forger).await.unwrap();

    // The made-up references arrive as greeters (the same bytes on the wire).
    let op = ForgerOp::Forged.descriptor();
    let greeters = forger.proxy().call::<_, Vec<HelloClient>, NoError>(op, &(50u32,)).await.unwrap().unwrap();
    assert_eq!(greeters.len(), 50);
    assert_eq!(client.held_count(), 2, "held objects of more endpoints than the limit");
    // They fail like any unreachable object, without harm to the rest.
    let r = within(10, greeters[0].hello()).await;
    assert!(matches!(r, Err(Error::Connect { .. })), "{r:?}");
    assert_eq!(within(10, forger.forged(1)).await.unwrap().len(), 1);
    drop(greeters);
    within(10, client.shutdown()).await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_lets_go_of_what_its_endpoint_held_at_once() {
    let lease = Duration::from_secs(30);
    let Factories { server, client, factory, mut gone, baseline } =
        factories("memory://refs-shutdown", Config::default().dgc_lease(lease)).await;
    let sessions = futures_join(&factory, 3).await;
    let stopped = tokio::time::Instant::now();
    client.shutdown().await;
    for _ in 0..3 {
        within(60, gone.recv()).await.unwrap();
    }
    assert!(stopped.elapsed() < lease / 10, "objects went {:?} after the shutdown", stopped.elapsed());
    assert_eq!(server.exported_count(), baseline);
    drop(sessions);
}
