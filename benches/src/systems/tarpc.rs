//! tarpc: its serde transport with bincode over TCP, the way its README sets it up.

use futures::{StreamExt, future};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};

#[tarpc::service]
pub trait Bench {
    /// Adds two numbers.
    async fn add(a: i32, b: i32) -> i32;
    /// Returns its argument.
    async fn echo(data: Vec<u8>) -> Vec<u8>;
}

#[derive(Clone)]
struct BenchServer;

impl Bench for BenchServer {
    async fn add(self, _: context::Context, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    async fn echo(self, _: context::Context, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// The tarpc server.
#[derive(Default)]
pub struct TarpcServer;

impl super::Server for TarpcServer {
    async fn start(&mut self) -> String {
        let mut listener =
            tarpc::serde_transport::tcp::listen("127.0.0.1:0", Bincode::default).await.expect("listen");
        listener.config_mut().max_frame_length(64 << 20);
        let address = listener.local_addr().to_string();
        tokio::spawn(async move {
            listener
                .filter_map(|r| future::ready(r.ok()))
                .map(BaseChannel::with_defaults)
                .for_each(|channel| async move {
                    tokio::spawn(channel.execute(BenchServer.serve()).for_each(|response| async move {
                        tokio::spawn(response);
                    }));
                })
                .await;
        });
        address
    }

    fn export(&mut self, _: usize) -> usize {
        0
    }
}

/// A tarpc client: one connection, shared by its clones.
#[derive(Clone)]
pub struct TarpcClient(BenchClient);

impl TarpcClient {
    pub async fn connect(address: &str) -> Self {
        let mut transport = tarpc::serde_transport::tcp::connect(address, Bincode::default);
        transport.config_mut().max_frame_length(64 << 20);
        let transport = transport.await.expect("connect");
        Self(BenchClient::new(client::Config::default(), transport).spawn())
    }
}

impl super::Caller for TarpcClient {
    async fn add(&mut self, a: i32, b: i32) -> i32 {
        self.0.add(context::current(), a, b).await.expect("tarpc add")
    }

    async fn echo(&mut self, data: Vec<u8>) -> Vec<u8> {
        self.0.echo(context::current(), data).await.expect("tarpc echo")
    }
}
