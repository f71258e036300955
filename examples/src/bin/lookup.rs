//! The lecture's lookup by class (exercise RMI.4): `remoteObject = rmi.lookup('ServiceClass')`.
//!
//! The server runs a binder at the well-known binder id next to its own objects, which implement
//! two different interfaces. The client knows only the server's address: it asks the binder for
//! an object of an interface, whatever its name or id, and calls it. Looking a name up as the
//! wrong interface fails with a clear error instead of returning a stub for the wrong object.
//!
//! ```text
//! cargo run -p rmi-examples --bin lookup                 # both sides in one process
//! cargo run -p rmi-examples --bin lookup -- server 127.0.0.1:4000
//! cargo run -p rmi-examples --bin lookup -- client 127.0.0.1:4000
//! ```

use rmi_runtime::binder::{BinderConfig, BinderService, Naming};
use rmi_runtime::{BinderError, Error, remote};

/// The lecture's `ServiceClass`.
#[remote]
pub trait Service {
    /// The service's answer to `request`.
    async fn handle(&self, request: String) -> String;
}

/// Another interface, exported by the same server.
#[remote]
pub trait Adder {
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct Shouter;

impl Service for Shouter {
    async fn handle(&self, request: String) -> String {
        println!("[server] handle( {request} )");
        request.to_uppercase()
    }
}

struct Plus;

impl Adder for Plus {
    async fn add(&self, a: i64, b: i64) -> i64 {
        println!("[server] add( {a}, {b} )");
        a.wrapping_add(b)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    rmi_examples::run(
        async |server| {
            let binder = BinderService::serve(server, BinderConfig::default()).expect("no binder here yet");
            let naming = Naming::local(server, &binder);
            let service = server.export(ServiceSkeleton::new(Shouter));
            naming.bind("shouter", &service).await.expect("a valid name, free");
            let adder = server.export(AdderSkeleton::new(Plus));
            naming.bind("adder", &adder).await.expect("a valid name, free");
        },
        async |client, addr| {
            let naming = Naming::connect(client, addr).await?;
            // The lecture's `rmi.lookup('ServiceClass')`: any object of the interface.
            let service: ServiceClient = naming.lookup_any().await?;
            println!("lookup_any::<ServiceClient>() -> {}", service.handle("hello".to_owned()).await?);
            let adder: AdderClient = naming.lookup_any().await?;
            println!("lookup_any::<AdderClient>() -> {}", adder.add(40, 2).await?);
            // A name bound to an object of another interface does not give a mistyped stub.
            match naming.lookup::<ServiceClient>("adder").await {
                Err(Error::Binder(error @ BinderError::WrongInterface { .. })) => {
                    println!("lookup::<ServiceClient>(\"adder\") failed: {error}");
                }
                Ok(_) => println!("unexpected: `adder` was returned as a Service"),
                Err(error) => return Err(error),
            }
            Ok(())
        },
    )
    .await
}
