//! Callbacks (the observer pattern): a chat room that pushes messages to its clients.
//!
//! The server exports a `Room` for good. Each client exports a `Listener` object of its own, as a
//! reference (`ListenerClient::export`), and subscribes it to the room by passing it as an
//! argument. When someone says something, the room calls every listener back. The clients do not
//! listen: they have no address, and the room reaches them over the connections they opened to it.
//! When a client goes away, the room's call to its listener fails and the room drops that listener.
//!
//! ```text
//! cargo run -p rmi-examples --bin callbacks
//! ```
//!
//! The server and the three clients (`ann`, `bob` and `carol`) are endpoints of one process,
//! talking over TCP on 127.0.0.1.

use std::time::Duration;

use rmi_runtime::{CallContext, Endpoint, Error, RemoteRef, Stub, remote};
use tokio::sync::{Mutex, mpsc};

/// Told of the room's messages; implemented by each client.
#[remote]
pub trait Listener {
    /// `from` said `text` in the room.
    async fn on_message(&self, from: String, text: String);
}

/// A chat room: listeners subscribe, and every message goes to all of them.
#[remote]
pub trait Room {
    /// Adds `listener`, a callback object of the client `name`; returns how many listeners the room
    /// has now.
    async fn subscribe(&self, name: String, listener: ListenerClient) -> usize;
    /// Sends `text` to every listener; returns how many got it. Listeners that cannot be reached
    /// are unsubscribed.
    async fn say(&self, from: String, text: String) -> usize;
}

/// The room's servant: its listeners, by the name of their client.
#[derive(Default)]
struct ChatRoom {
    listeners: Mutex<Vec<(String, ListenerClient)>>,
}

impl Room for ChatRoom {
    async fn subscribe(&self, name: String, listener: ListenerClient) -> usize {
        let mut listeners = self.listeners.lock().await;
        println!("[server] {name} subscribed a listener: {}", listener.reference());
        listeners.push((name, listener));
        listeners.len()
    }

    async fn say(&self, from: String, text: String) -> usize {
        let listeners = self.listeners.lock().await.clone();
        println!("[server] {from} says {text:?}: calling {} listeners back", listeners.len());
        let mut gone = Vec::new();
        for (name, listener) in &listeners {
            if let Err(error) = listener.on_message(from.clone(), text.clone()).await {
                println!("[server] the call to {name}'s listener failed ({error}): unsubscribing it");
                gone.push(listener.proxy().object());
            }
        }
        self.listeners.lock().await.retain(|(_, listener)| !gone.contains(&listener.proxy().object()));
        listeners.len() - gone.len()
    }
}

/// A client's listener: prints what it is told and passes it on to the client.
struct Inbox {
    name: &'static str,
    messages: mpsc::UnboundedSender<String>,
}

impl Listener for Inbox {
    async fn on_message(&self, from: String, text: String) {
        // The call came in over a connection: the one this client dialled to the room.
        let dialled_here = CallContext::current().and_then(|ctx| ctx.connection().map(|c| c.dialled()));
        println!(
            "[{}] received {from}: {text:?} (over a connection this client dialled: {})",
            self.name,
            dialled_here.unwrap_or(false)
        );
        let _ = self.messages.send(format!("{from}: {text}"));
    }
}

/// A client: its endpoint (which does not listen), its stub for the room, and what its listener
/// received.
struct Client {
    name: &'static str,
    endpoint: Endpoint,
    room: RoomClient,
    inbox: mpsc::UnboundedReceiver<String>,
}

impl Client {
    /// A new client `name`, subscribed to the room `room`.
    async fn join(name: &'static str, room: &RemoteRef) -> Result<Self, Error> {
        let endpoint = Endpoint::new();
        let (messages, inbox) = mpsc::unbounded_channel();
        let listener = ListenerClient::export(&endpoint, Inbox { name, messages });
        let room: RoomClient = endpoint.proxy(room).await?;
        println!("[{name}] address() = {:?}: this client does not listen", endpoint.address());
        // The listener travels by reference: the room gets a stub that calls back this endpoint.
        let members = room.subscribe(name.to_owned(), listener).await?;
        // Its own stub went with the call; the room's stub keeps the listener exported here.
        println!(
            "[{name}] subscribed (listeners in the room: {members}; objects exported here: {})",
            endpoint.exported_count()
        );
        Ok(Self { name, endpoint, room, inbox })
    }

    /// Says `text` in the room; returns how many listeners got it.
    async fn say(&self, text: &str) -> Result<usize, Error> {
        println!("[{}] says {text:?}", self.name);
        self.room.say(self.name.to_owned(), text.to_owned()).await
    }

    /// Waits for the next message the listener received.
    async fn next_message(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), self.inbox.recv())
            .await
            .expect("a message within 5 s")
            .expect("the listener is alive")
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let server = Endpoint::new();
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    let room = server.export(RoomSkeleton::new(ChatRoom::default()));
    println!("[server] listening on {addr}; the room is {room}");

    let mut clients = Vec::new();
    for name in ["ann", "bob", "carol"] {
        clients.push(Client::join(name, &room).await?);
    }

    let reached = clients[0].say("hi, everyone").await?;
    for client in &mut clients {
        let message = client.next_message().await;
        println!("[{}] inbox: {message}", client.name);
    }
    println!("[ann] the message reached {reached} listeners");
    let dialled = server.connections().iter().filter(|c| c.dialled()).count();
    println!("[server] connections: {}, dialled by the server: {dialled}", server.connections().len());

    // carol leaves without unsubscribing: her endpoint shuts down, and her listener with it.
    let carol = clients.pop().expect("three clients");
    println!("[carol] shutting down");
    carol.endpoint.shutdown().await;
    drop(carol);

    let reached = clients[1].say("carol, are you there?").await?;
    for client in &mut clients {
        let message = client.next_message().await;
        println!("[{}] inbox: {message}", client.name);
    }
    println!("[bob] the message reached {reached} listeners");

    for client in clients {
        client.endpoint.shutdown().await;
    }
    server.shutdown().await;
    Ok(())
}
