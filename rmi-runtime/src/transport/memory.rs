//! In-process transport: `memory://name`. A process-global registry maps names to listeners; a
//! connection is a pair of [`tokio::io::duplex`] pipes.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use rmi_core::{Address, BoxFuture};
use tokio::sync::mpsc;

use super::{Io, Listener, Origin};

/// Bytes buffered in each direction of an in-memory connection.
const PIPE_CAPACITY: usize = 256 * 1024;
/// Connections waiting to be accepted by one listener.
const BACKLOG: usize = 128;

type Registry = Mutex<HashMap<String, (u64, mpsc::Sender<tokio::io::DuplexStream>)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A named in-process listener. Dropping it frees the name.
#[derive(Debug)]
pub struct MemoryListener {
    incoming: mpsc::Receiver<tokio::io::DuplexStream>,
    address: Address,
    name: String,
    generation: u64,
}

impl MemoryListener {
    /// Registers `name`.
    ///
    /// # Errors
    /// [`io::ErrorKind::AddrInUse`] if a live listener already has the name.
    pub fn bind(name: &str) -> io::Result<Self> {
        static GENERATION: AtomicU64 = AtomicU64::new(0);
        let mut names = registry().lock().unwrap_or_else(PoisonError::into_inner);
        if names.get(name).is_some_and(|(_, tx)| !tx.is_closed()) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("memory://{name} is in use")));
        }
        let (tx, incoming) = mpsc::channel(BACKLOG);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        names.insert(name.to_owned(), (generation, tx));
        Ok(Self { incoming, address: Address::Memory(name.to_owned()), name: name.to_owned(), generation })
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        let mut names = registry().lock().unwrap_or_else(PoisonError::into_inner);
        if names.get(&self.name).is_some_and(|(generation, _)| *generation == self.generation) {
            names.remove(&self.name);
        }
    }
}

impl Listener for MemoryListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Io>> {
        Box::pin(async move {
            match self.incoming.recv().await {
                Some(stream) => {
                    let (reader, writer) = tokio::io::split(stream);
                    Ok(Io::new(reader, writer, format!("{} (accepted)", self.address))
                        .with_origin(Origin::Local))
                }
                // Unreachable while the listener lives: the registry holds a sender.
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "listener unregistered")),
            }
        })
    }

    fn local_address(&self) -> &Address {
        &self.address
    }
}

/// Connects to the listener registered as `name`.
///
/// # Errors
/// [`io::ErrorKind::ConnectionRefused`] if no listener has the name.
pub async fn connect(name: &str) -> io::Result<Io> {
    let refused =
        || io::Error::new(io::ErrorKind::ConnectionRefused, format!("no listener at memory://{name}"));
    let tx = {
        let names = registry().lock().unwrap_or_else(PoisonError::into_inner);
        names.get(name).map(|(_, tx)| tx.clone()).ok_or_else(refused)?
    };
    let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
    tx.send(theirs).await.map_err(|_| refused())?;
    let (reader, writer) = tokio::io::split(ours);
    Ok(Io::new(reader, writer, format!("memory://{name}")).with_origin(Origin::Local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_exclusive_while_bound_and_freed_on_drop() {
        let listener = MemoryListener::bind("memory-unit-exclusive").unwrap();
        let err = MemoryListener::bind("memory-unit-exclusive").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(listener);
        let err = connect("memory-unit-exclusive").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        MemoryListener::bind("memory-unit-exclusive").unwrap();
    }
}
