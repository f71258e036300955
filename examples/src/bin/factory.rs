//! A remote factory: one well-known object that hands out a session object per client, and the
//! distributed garbage collector that unexports each session when nobody holds it any more.
//!
//! The server exports a `Factory` for good. `factory.open(user)` exports a new `Session` object as
//! a reference (`SessionClient::export_with`) and returns it: each client gets its own session,
//! with its own state, on the server. A session goes in one of three ways:
//!
//! - its client drops its stub: the client tells the server, and the session becomes unreferenced
//!   and is unexported at once;
//! - its client calls `close()`: the session unexports itself;
//! - its client dies without a word: the client stops renewing its lease (2 s here, set with
//!   `Config::dgc_lease`; 30 s by default), and the session goes when the lease runs out.
//!
//! ```text
//! cargo run -p rmi-examples --bin factory
//! ```
//!
//! The server and the clients (`alice`, `bob` and `carol`) are endpoints of one process, talking
//! over TCP on 127.0.0.1.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rmi_runtime::{Config, Endpoint, Error, Export, ObjectId, Stub, remote};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Hands out sessions.
#[remote]
pub trait Factory {
    /// A new session for `user`, by reference.
    async fn open(&self, user: String) -> SessionClient;
}

/// A client's session: a shopping list kept at the server.
#[remote]
pub trait Session {
    /// Adds `item` to the list; returns how many items it holds.
    async fn add_item(&self, item: String) -> usize;
    /// The items of the list.
    async fn items(&self) -> Vec<String>;
    /// Ends the session now and returns its items: later calls fail with "no such object".
    async fn close(&self) -> Vec<String>;
}

/// The server's lease for holders of its sessions: a client that stops renewing loses its
/// references this long after its last renewal (clients renew every third of it).
const LEASE: Duration = Duration::from_secs(2);

/// The factory's servant.
struct SessionFactory {
    endpoint: Endpoint,
    /// Tells the name of the user of each session that became unreferenced.
    unreferenced: mpsc::UnboundedSender<String>,
}

impl Factory for SessionFactory {
    async fn open(&self, user: String) -> SessionClient {
        let session = Arc::new(UserSession {
            user: user.clone(),
            items: Mutex::default(),
            endpoint: self.endpoint.clone(),
            object: OnceLock::new(),
        });
        let tell = self.unreferenced.clone();
        let options = Export::new().on_unreferenced(move || {
            println!("[server] {user}'s session is unreferenced: unexported");
            let _ = tell.send(user.clone());
        });
        let stub = SessionClient::export_with(&self.endpoint, Arc::clone(&session), options);
        session.object.set(stub.proxy().object()).expect("set once");
        println!(
            "[server] open({:?}): exported a new session (exported objects: {})",
            session.user,
            self.endpoint.exported_count()
        );
        stub
    }
}

/// A session's servant: one per client, with its own list.
struct UserSession {
    user: String,
    items: Mutex<Vec<String>>,
    /// The endpoint the session is exported on, and its id there, for `close`.
    endpoint: Endpoint,
    object: OnceLock<ObjectId>,
}

impl UserSession {
    fn items(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Session for UserSession {
    async fn add_item(&self, item: String) -> usize {
        println!("[server] {}'s session: add_item({item:?})", self.user);
        let mut items = self.items();
        items.push(item);
        items.len()
    }

    async fn items(&self) -> Vec<String> {
        self.items().clone()
    }

    async fn close(&self) -> Vec<String> {
        if let Some(object) = self.object.get() {
            self.endpoint.unexport(*object);
        }
        println!("[server] {}'s session: close(): unexported", self.user);
        std::mem::take(&mut *self.items())
    }
}

/// Waits for the next session to become unreferenced; returns its user.
async fn next_unreferenced(unreferenced: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(LEASE * 5, unreferenced.recv())
        .await
        .expect("a session became unreferenced in time")
        .expect("the factory is alive")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let server = Endpoint::with_config(Config::default().dgc_lease(LEASE));
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    let (tell, mut unreferenced) = mpsc::unbounded_channel();
    let factory =
        server.export(FactorySkeleton::new(SessionFactory { endpoint: server.clone(), unreferenced: tell }));
    println!(
        "[server] listening on {addr}, DGC lease {LEASE:?}; exported objects: {}",
        server.exported_count()
    );

    // Two clients, each with its own session.
    let alice = Endpoint::new();
    let bob = Endpoint::new();
    let alice_factory: FactoryClient = alice.proxy(&factory).await?;
    let bob_factory: FactoryClient = bob.proxy(&factory).await?;
    let alice_session = alice_factory.open("alice".into()).await?;
    let bob_session = bob_factory.open("bob".into()).await?;
    println!("[alice] got a session: {}", alice_session.reference());
    println!("[bob] got a session: {}", bob_session.reference());
    for item in ["apples", "bread"] {
        println!("[alice] add_item({item:?}) -> {}", alice_session.add_item(item.into()).await?);
    }
    println!("[bob] add_item(\"coffee\") -> {}", bob_session.add_item("coffee".into()).await?);
    println!("[alice] items() -> {:?}", alice_session.items().await?);
    println!("[bob] items() -> {:?}", bob_session.items().await?);

    // alice is done: she drops her stub, and her session goes.
    let before = server.exported_count();
    println!("[alice] drop(session)");
    drop(alice_session);
    let user = next_unreferenced(&mut unreferenced).await;
    println!(
        "[server] exported objects: {before} before {user} dropped her stub, {} after",
        server.exported_count()
    );

    // bob's session lives on, until he closes it.
    println!("[bob] add_item(\"milk\") -> {}", bob_session.add_item("milk".into()).await?);
    println!("[bob] close() -> {:?}", bob_session.close().await?);
    match bob_session.items().await {
        Err(Error::NoSuchObject(object)) => {
            println!("[bob] items() after close failed: no such object {object}")
        }
        other => println!("[bob] unexpected: items() after close gave {other:?}"),
    }
    drop(bob_session);
    println!("[server] exported objects: {}", server.exported_count());

    // carol's client dies holding her session: nobody tells the server, her lease runs out.
    let carol = Endpoint::new();
    let carol_factory: FactoryClient = carol.proxy(&factory).await?;
    let carol_session = carol_factory.open("carol".into()).await?;
    println!("[carol] add_item(\"tea\") -> {}", carol_session.add_item("tea".into()).await?);
    println!("[carol] stops without dropping her stub, as a crashed client would");
    let stopped = Instant::now();
    // Her connection breaks first, so her shutdown cannot let go of what she holds (it tells only
    // over connections still open): to the server she just goes silent, as a crashed client would.
    for conn in carol.connections() {
        conn.close();
    }
    carol.shutdown().await;
    let user = next_unreferenced(&mut unreferenced).await;
    println!(
        "[server] {user}'s session went {:.1}s after she stopped (lease {LEASE:?}); exported objects: {}",
        stopped.elapsed().as_secs_f64(),
        server.exported_count()
    );
    drop(carol_session);

    for client in [alice, bob] {
        client.shutdown().await;
    }
    server.shutdown().await;
    Ok(())
}
