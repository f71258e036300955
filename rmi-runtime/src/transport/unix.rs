//! Unix domain sockets: `unix:///path/to.sock`.

use std::io;
use std::path::{Path, PathBuf};

use rmi_core::{Address, BoxFuture};

use super::{Io, Listener, Origin};

/// A listening Unix domain socket. Dropping it removes the socket file it created.
#[derive(Debug)]
pub struct UnixListener {
    inner: tokio::net::UnixListener,
    address: Address,
    path: PathBuf,
}

impl UnixListener {
    /// Creates the socket file at `path` and listens on it.
    ///
    /// # Errors
    /// The operating system's error (the file exists, the directory is missing or not writable).
    pub fn bind(path: &Path) -> io::Result<Self> {
        let inner = tokio::net::UnixListener::bind(path)?;
        Ok(Self { inner, address: Address::Unix(path.to_owned()), path: path.to_owned() })
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener for UnixListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Io>> {
        Box::pin(async move {
            let (stream, _) = self.inner.accept().await?;
            let (reader, writer) = stream.into_split();
            Ok(Io::new(reader, writer, format!("{} (accepted)", self.address)).with_origin(Origin::Local))
        })
    }

    fn local_address(&self) -> &Address {
        &self.address
    }
}

/// Connects to the socket at `path`.
///
/// # Errors
/// The operating system's error (no such file, refused).
pub async fn connect(path: &Path) -> io::Result<Io> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let (reader, writer) = stream.into_split();
    Ok(Io::new(reader, writer, format!("unix://{}", path.display())).with_origin(Origin::Local))
}
