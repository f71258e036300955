//! The floor: length-prefixed frames over a bare tokio `TcpStream`, no framework.
//!
//! A request is `len: u32 BE | op: u8 | payload` (op 0: add, two `i32` LE; op 1: echo, the bytes);
//! a reply is `len: u32 BE | payload`. The server answers in order and writes what it has answered
//! once it has no more complete requests buffered (batched writes); the pipelined client keeps a
//! number of requests in flight on one connection.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

const ADD: u8 = 0;
const ECHO: u8 = 1;

/// The raw TCP server.
#[derive(Default)]
pub struct RawServer;

impl super::Server for RawServer {
    async fn start(&mut self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address").to_string();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream));
            }
        });
        address
    }

    fn export(&mut self, _: usize) -> usize {
        0
    }
}

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut input = Vec::with_capacity(64 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        let mut at = 0;
        while let Some(prefix) = input.get(at..at + 4) {
            let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            let Some(body) = input.get(at + 4..at + 4 + len) else {
                input.reserve(len + 4 - (input.len() - at));
                break;
            };
            match body[0] {
                ADD => {
                    let a = i32::from_le_bytes(body[1..5].try_into().expect("4 bytes"));
                    let b = i32::from_le_bytes(body[5..9].try_into().expect("4 bytes"));
                    out.extend_from_slice(&4u32.to_be_bytes());
                    out.extend_from_slice(&a.wrapping_add(b).to_le_bytes());
                }
                _ => {
                    out.extend_from_slice(&((len - 1) as u32).to_be_bytes());
                    stream.write_all(&out).await?;
                    out.clear();
                    stream.write_all(&body[1..]).await?;
                }
            }
            at += 4 + len;
        }
        input.drain(..at);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// A raw TCP client connection.
pub struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    out: Vec<u8>,
}

impl RawClient {
    pub async fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (reader, writer) = stream.into_split();
        Self { reader: BufReader::with_capacity(64 * 1024, reader), writer, out: Vec::with_capacity(64) }
    }

    async fn reply_len(&mut self) -> usize {
        let mut prefix = [0u8; 4];
        self.reader.read_exact(&mut prefix).await.expect("reply");
        u32::from_be_bytes(prefix) as usize
    }

    /// Keeps `depth` add requests in flight until `until`; returns each call's latency in
    /// nanoseconds.
    pub async fn pipelined(&mut self, depth: usize, until: Instant) -> Vec<u32> {
        let mut sent: VecDeque<Instant> = VecDeque::with_capacity(depth);
        let mut latencies = Vec::with_capacity(1 << 16);
        let mut n = 0i32;
        loop {
            let now = Instant::now();
            if now < until {
                self.out.clear();
                while sent.len() < depth {
                    push_add(&mut self.out, n, 1);
                    n = n.wrapping_add(1);
                    sent.push_back(now);
                }
                if !self.out.is_empty() {
                    self.writer.write_all(&self.out).await.expect("send");
                }
            } else if sent.is_empty() {
                return latencies;
            }
            // Every reply already read, and at least one.
            loop {
                let len = self.reply_len().await;
                let mut value = [0u8; 4];
                debug_assert_eq!(len, 4);
                self.reader.read_exact(&mut value).await.expect("reply");
                let start = sent.pop_front().expect("a reply answers a request");
                latencies.push(super::super::nanos(start.elapsed()));
                if self.reader.buffer().len() < 8 {
                    break;
                }
            }
        }
    }
}

fn push_add(out: &mut Vec<u8>, a: i32, b: i32) {
    out.extend_from_slice(&9u32.to_be_bytes());
    out.push(ADD);
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(&b.to_le_bytes());
}

impl super::Caller for RawClient {
    async fn add(&mut self, a: i32, b: i32) -> i32 {
        self.out.clear();
        push_add(&mut self.out, a, b);
        self.writer.write_all(&self.out).await.expect("send");
        let len = self.reply_len().await;
        assert_eq!(len, 4, "reply length");
        let mut value = [0u8; 4];
        self.reader.read_exact(&mut value).await.expect("reply");
        i32::from_le_bytes(value)
    }

    async fn echo(&mut self, mut data: Vec<u8>) -> Vec<u8> {
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&(data.len() as u32 + 1).to_be_bytes());
        header[4] = ECHO;
        self.writer.write_all(&header).await.expect("send");
        self.writer.write_all(&data).await.expect("send");
        let len = self.reply_len().await;
        data.resize(len, 0);
        self.reader.read_exact(&mut data).await.expect("reply");
        data
    }
}
