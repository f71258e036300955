//! The three systems measured: rmi, tarpc and raw tokio TCP, each with the same two calls,
//! `add(i32, i32) -> i32` and `echo(Vec<u8>) -> Vec<u8>`.

use std::future::Future;

pub mod raw;
pub mod rmi;
pub mod tarpc;

/// A system under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    Rmi,
    Tarpc,
    Raw,
}

impl System {
    /// Every system, in the order of the report's columns.
    pub const ALL: [System; 3] = [System::Rmi, System::Tarpc, System::Raw];

    pub fn name(self) -> &'static str {
        match self {
            System::Rmi => "rmi",
            System::Tarpc => "tarpc",
            System::Raw => "raw",
        }
    }
}

/// A client connection of one system, making calls one at a time.
pub trait Caller: Send + 'static {
    /// Calls `add(a, b)`.
    fn add(&mut self, a: i32, b: i32) -> impl Future<Output = i32> + Send;
    /// Calls `echo(data)`, returning the echoed bytes.
    fn echo(&mut self, data: Vec<u8>) -> impl Future<Output = Vec<u8>> + Send;
}

/// The server side of a system, started by the `serve` subcommand.
pub trait Server {
    /// Starts serving on `127.0.0.1:0`; returns the address clients connect to.
    fn start(&mut self) -> impl Future<Output = String>;
    /// Exports `n` more objects, if the system has objects; returns how many it exported.
    fn export(&mut self, n: usize) -> usize;
}
