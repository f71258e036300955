//! The context of a call being served: who is calling, over which connection.

use rmi_core::EndpointId;

use crate::connection::Connection;
use crate::transport::Origin;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// Who is calling: the connection a served call arrived on.
///
/// The runtime sets it for the whole of every served call; a servant reads it with
/// [`CallContext::current`], for example to decide whether the caller
/// may do what it asks (the [binder](crate::binder) does so for changes).
///
/// # Example
///
/// ```
/// use rmi_runtime::{CallContext, remote};
///
/// #[remote]
/// pub trait WhoAmI {
///     /// Where the caller connects from, as the server sees it.
///     async fn origin(&self) -> String;
/// }
///
/// struct Mirror;
///
/// impl WhoAmI for Mirror {
///     async fn origin(&self) -> String {
///         CallContext::current().map_or_else(|| "not in a call".into(), |ctx| ctx.origin().to_string())
///     }
/// }
/// # #[tokio::main] async fn main() -> Result<(), rmi_runtime::Error> {
/// # let server = rmi_runtime::Endpoint::new();
/// # server.listen("tcp://127.0.0.1:0").await?;
/// # let r = server.export(WhoAmISkeleton::new(Mirror));
/// # let who: WhoAmIClient = rmi_runtime::Endpoint::new().proxy(&r).await?;
/// assert!(who.origin().await?.starts_with("127.0.0.1:"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CallContext {
    connection: Connection,
}

impl CallContext {
    pub(crate) fn new(connection: Connection) -> Self {
        Self { connection }
    }

    /// The context of the call this task is serving, if it is serving one.
    ///
    /// Only the call's own task has it: a task the servant spawns does not inherit it (clone it
    /// into the task if it needs it).
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The calling endpoint's identity, as it claimed it in the handshake.
    pub fn peer_endpoint(&self) -> EndpointId {
        self.connection.peer_endpoint()
    }

    /// Where the caller is, as the operating system reports it.
    pub fn origin(&self) -> Origin {
        self.connection.origin()
    }

    /// The connection the call arrived on: the way back to the caller, whoever dialled.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Runs `future` with this context as the current one.
    pub(crate) async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}
