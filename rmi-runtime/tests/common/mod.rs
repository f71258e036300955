//! A hand-written test service (`Lab`): its descriptor, skeleton and client stub, written as
//! `#[remote]` would generate them, plus helpers to set up endpoints.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rmi_runtime::{
    Address, BoxFuture, Bytes, Config, Dispatch, Endpoint, Error, Fault, InterfaceDescriptor, InterfaceId,
    MethodDescriptor, NoError, ObjectId, OpId, Proxy, RemoteRef, Reply, Semantics, Stub, decode_args,
};
use tokio::sync::{Notify, mpsc};

pub const ECHO: OpId = OpId::from_name("echo");
pub const ADD: OpId = OpId::from_name("add");
pub const DIV: OpId = OpId::from_name("div");
pub const SLEEP: OpId = OpId::from_name("sleep");
pub const PANIC: OpId = OpId::from_name("panic");
pub const HANG: OpId = OpId::from_name("hang");
pub const GATE: OpId = OpId::from_name("gate");
pub const WHOAMI: OpId = OpId::from_name("whoami");
pub const RECORD: OpId = OpId::from_name("record");
pub const REPEAT: OpId = OpId::from_name("repeat");

pub static LAB: InterfaceDescriptor = InterfaceDescriptor {
    name: "Lab",
    id: InterfaceId::from_name("Lab"),
    version: 1,
    methods: &[
        MethodDescriptor::new("echo", ECHO),
        MethodDescriptor::new("add", ADD),
        MethodDescriptor::new("div", DIV),
        MethodDescriptor::new("sleep", SLEEP),
        MethodDescriptor::new("panic", PANIC),
        MethodDescriptor::new("hang", HANG),
        MethodDescriptor::new("gate", GATE),
        MethodDescriptor::new("whoami", WHOAMI),
        MethodDescriptor::new("record", RECORD).with_semantics(Semantics::Maybe),
        MethodDescriptor::new("repeat", REPEAT),
    ],
};

/// The descriptor of `Lab`'s operation `op`.
pub fn method(op: OpId) -> &'static MethodDescriptor {
    LAB.method(op).expect("an operation of Lab")
}

/// What the test observes of the servant.
pub struct Probe {
    /// Signalled when `hang` or `gate` starts.
    pub started: Notify,
    /// Lets `gate` return.
    pub release: Notify,
    /// Signalled when a `hang` call's work is dropped (cancelled or abandoned).
    pub dropped: Notify,
    records: mpsc::UnboundedSender<u32>,
}

pub struct LabSkeleton {
    pub name: String,
    pub probe: Arc<Probe>,
}

struct SignalOnDrop<'a>(&'a Notify);

impl Drop for SignalOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

fn args<A: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<A, Fault> {
    decode_args(bytes)
}

impl Dispatch for LabSkeleton {
    fn descriptor(&self) -> &'static InterfaceDescriptor {
        &LAB
    }

    fn dispatch<'a>(&'a self, op: OpId, bytes: Bytes, reply: Reply<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            macro_rules! decode {
                ($ty:ty) => {
                    match args::<$ty>(&bytes) {
                        Ok(v) => v,
                        Err(fault) => return reply.fault(fault),
                    }
                };
            }
            match op {
                ECHO => {
                    let (s,) = decode!((String,));
                    reply.ok(&s)
                }
                ADD => {
                    let (a, b) = decode!((i32, i32));
                    reply.ok(&(a + b))
                }
                DIV => {
                    let (a, b) = decode!((i32, i32));
                    match a.checked_div(b) {
                        Some(q) => reply.ok(&q),
                        None => reply.err("division by zero"),
                    }
                }
                SLEEP => {
                    let (ms, tag) = decode!((u64, u32));
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    reply.ok(&tag)
                }
                PANIC => {
                    let () = decode!(());
                    panic!("servant failed on purpose")
                }
                HANG => {
                    let () = decode!(());
                    let _signal = SignalOnDrop(&self.probe.dropped);
                    self.probe.started.notify_one();
                    std::future::pending::<()>().await;
                }
                GATE => {
                    let () = decode!(());
                    self.probe.started.notify_one();
                    self.probe.release.notified().await;
                    reply.ok(&7u32)
                }
                WHOAMI => {
                    let () = decode!(());
                    reply.ok(&self.name)
                }
                RECORD => {
                    let (n,) = decode!((u32,));
                    let _ = self.probe.records.send(n);
                    reply.ok(&())
                }
                REPEAT => {
                    let (n,) = decode!((u32,));
                    reply.ok(&"x".repeat(n as usize))
                }
                _ => reply.fault(Fault::NoSuchOperation),
            }
        })
    }
}

#[derive(Clone, Debug)]
pub struct LabClient(pub Proxy);

impl Stub for LabClient {
    const DESCRIPTOR: &'static InterfaceDescriptor = &LAB;

    fn from_proxy(proxy: Proxy) -> Self {
        Self(proxy)
    }

    fn proxy(&self) -> &Proxy {
        &self.0
    }
}

fn ok<T>(r: Result<T, NoError>) -> T {
    r.unwrap_or_else(|never| match never {})
}

impl LabClient {
    pub async fn echo(&self, s: &str) -> Result<String, Error> {
        self.0.call::<_, String, NoError>(method(ECHO), &(s,)).await.map(ok)
    }

    pub async fn add(&self, a: i32, b: i32) -> Result<i32, Error> {
        self.0.call::<_, i32, NoError>(method(ADD), &(a, b)).await.map(ok)
    }

    pub async fn div(&self, a: i32, b: i32) -> Result<Result<i32, String>, Error> {
        self.0.call(method(DIV), &(a, b)).await
    }

    pub async fn sleep(&self, ms: u64, tag: u32) -> Result<u32, Error> {
        self.0.call::<_, u32, NoError>(method(SLEEP), &(ms, tag)).await.map(ok)
    }

    pub async fn panic(&self) -> Result<(), Error> {
        self.0.call::<_, (), NoError>(method(PANIC), &()).await.map(ok)
    }

    pub async fn hang(&self) -> Result<(), Error> {
        self.0.call::<_, (), NoError>(method(HANG), &()).await.map(ok)
    }

    pub async fn gate(&self) -> Result<u32, Error> {
        self.0.call::<_, u32, NoError>(method(GATE), &()).await.map(ok)
    }

    pub async fn whoami(&self) -> Result<String, Error> {
        self.0.call::<_, String, NoError>(method(WHOAMI), &()).await.map(ok)
    }

    pub async fn record_oneway(&self, n: u32) -> Result<(), Error> {
        self.0.call_oneway(method(RECORD), &(n,)).await
    }

    pub async fn repeat(&self, n: u32) -> Result<String, Error> {
        self.0.call::<_, String, NoError>(method(REPEAT), &(n,)).await.map(ok)
    }
}

/// A lab servant named `name`, its probe, and the receiver of its `record` calls.
pub fn lab(name: &str) -> (LabSkeleton, Arc<Probe>, mpsc::UnboundedReceiver<u32>) {
    let (records, rx) = mpsc::unbounded_channel();
    let probe =
        Arc::new(Probe { started: Notify::new(), release: Notify::new(), dropped: Notify::new(), records });
    (LabSkeleton { name: name.to_owned(), probe: Arc::clone(&probe) }, probe, rx)
}

/// A fresh address of each kind, unique to this call.
pub fn fresh(kind: &str) -> String {
    let unique = ObjectId::random();
    match kind {
        "memory" => format!("memory://test-{unique}"),
        "unix" => format!("unix://{}", std::env::temp_dir().join(format!("rmi-{unique}.sock")).display()),
        _ => "tcp://127.0.0.1:0".to_owned(),
    }
}

/// A listening server exporting a lab servant, and a client endpoint with a stub for it.
pub struct Setup {
    pub server: Endpoint,
    pub address: Address,
    pub reference: RemoteRef,
    pub probe: Arc<Probe>,
    pub records: mpsc::UnboundedReceiver<u32>,
    pub client: Endpoint,
    pub lab: LabClient,
}

pub async fn setup(kind: &str) -> Setup {
    setup_with(kind, Config::default(), Config::default()).await
}

pub async fn setup_with(kind: &str, server_config: Config, client_config: Config) -> Setup {
    let server = Endpoint::with_config(server_config);
    let address = server.listen(fresh(kind)).await.expect("listen");
    let (skeleton, probe, records) = lab("server");
    let reference = server.export(skeleton);
    let client = Endpoint::with_config(client_config);
    let lab = client.proxy::<LabClient>(&reference).await.expect("proxy");
    Setup { server, address, reference, probe, records, client, lab }
}

/// Awaits `future` for at most `secs` seconds: tests are bounded even when the code under test hangs.
pub async fn within<F: std::future::Future>(secs: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), future).await.expect("test step timed out")
}

/// A proxy to `object` with an explicit interface and version, bypassing the local checks.
pub fn raw_proxy(setup: &Setup, object: ObjectId, interface: InterfaceId, version: u32) -> LabClient {
    LabClient(Proxy::new(setup.lab.0.connection().unwrap().clone(), object, interface, version))
}
