//! rmi: a `#[remote]` trait exported by an endpoint, called through its generated stub.

use rmi_runtime::{Endpoint, ObjectId, remote};

/// The benchmark's interface.
#[remote]
pub trait Bench {
    /// Adds two numbers.
    async fn add(&self, a: i32, b: i32) -> i32;
    /// Returns its argument.
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
}

struct Servant;

impl Bench for Servant {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// The well-known id of the benchmark object.
const OBJECT: ObjectId = ObjectId::from_u128(1);

/// The rmi server: one endpoint.
pub struct RmiServer {
    endpoint: Endpoint,
    exported: u128,
}

impl Default for RmiServer {
    fn default() -> Self {
        Self { endpoint: Endpoint::new(), exported: 1 }
    }
}

impl super::Server for RmiServer {
    async fn start(&mut self) -> String {
        self.endpoint.export_with_id(OBJECT, BenchSkeleton::new(Servant)).expect("a fresh endpoint");
        self.endpoint.listen("tcp://127.0.0.1:0").await.expect("listen").to_string()
    }

    fn export(&mut self, n: usize) -> usize {
        for _ in 0..n {
            self.exported += 1;
            let id = ObjectId::from_u128(self.exported);
            self.endpoint.export_with_id(id, BenchSkeleton::new(Servant)).expect("a fresh id");
        }
        n
    }
}

/// An rmi client: an endpoint and a stub, which clones share (one connection).
#[derive(Clone)]
pub struct RmiClient {
    stub: BenchClient,
    /// Keeps the endpoint (and its connection) alive as long as a stub is.
    _endpoint: Endpoint,
}

impl RmiClient {
    pub async fn connect(address: &str) -> Self {
        let endpoint = Endpoint::new();
        let address = address.parse().expect("an rmi address");
        let stub = endpoint.proxy_at(&address, OBJECT).await.expect("connect");
        Self { stub, _endpoint: endpoint }
    }
}

impl super::Caller for RmiClient {
    async fn add(&mut self, a: i32, b: i32) -> i32 {
        self.stub.add(a, b).await.expect("rmi add")
    }

    async fn echo(&mut self, data: Vec<u8>) -> Vec<u8> {
        self.stub.echo(data).await.expect("rmi echo")
    }
}
