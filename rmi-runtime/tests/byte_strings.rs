//! `Vec<u8>` arguments and results travel as postcard byte strings, in one copy. Those are the same
//! bytes as the sequence of `u8` serde makes of a `Vec<u8>`, so peers that send or expect the
//! sequence (hand-written, or built before the fast path) understand them.

mod common;

use bytes::{Bytes, BytesMut};
use common::{fresh, within};
use rmi_core::{Outcome, codec};
use rmi_runtime::{
    BoxFuture, Dispatch, Endpoint, InterfaceDescriptor, NoError, OpId, Reply, Stub, decode_args, remote,
};
use serde::{Deserialize, Serialize};

/// The application error of [`Blobs::bounded`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct TooLong {
    /// How long the refused data was.
    pub len: u64,
}

/// A store of bytes.
#[remote]
pub trait Blobs {
    /// Returns `data` as it came.
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// Returns `data` reversed, after `tag`.
    async fn tagged(&self, tag: u8, data: std::vec::Vec<u8>) -> Vec<u8>;
    /// Returns `data`, unless it is longer than `max` bytes.
    async fn bounded(&self, data: Vec<u8>, max: u64) -> Result<Vec<u8>, TooLong>;
    /// Bytes nested in other types travel as serde sends them: their lengths, and the bytes again.
    async fn nested(&self, maybe: Option<Vec<u8>>, parts: Vec<Vec<u8>>) -> (usize, Option<Vec<u8>>);
}

struct Store;

impl Blobs for Store {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    async fn tagged(&self, tag: u8, mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data.insert(0, tag);
        data
    }

    async fn bounded(&self, data: Vec<u8>, max: u64) -> Result<Vec<u8>, TooLong> {
        let len = data.len() as u64;
        if len > max { Err(TooLong { len }) } else { Ok(data) }
    }

    async fn nested(&self, maybe: Option<Vec<u8>>, parts: Vec<Vec<u8>>) -> (usize, Option<Vec<u8>>) {
        (parts.iter().map(Vec::len).sum(), maybe)
    }
}

/// `len` bytes that are not all alike.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A server endpoint listening on a fresh address of `kind` and exporting `skeleton`, and a client
/// endpoint with a stub for it.
async fn serve<D: Dispatch>(kind: &str, skeleton: D) -> (Endpoint, Endpoint, BlobsClient) {
    let server = Endpoint::new();
    server.listen(fresh(kind)).await.expect("listen");
    let reference = server.export(skeleton);
    let client = Endpoint::new();
    let blobs = client.proxy::<BlobsClient>(&reference).await.expect("proxy");
    (server, client, blobs)
}

async fn a_mebibyte_goes_and_comes_back(kind: &str) {
    let (server, _client, blobs) = serve(kind, BlobsSkeleton::new(Store)).await;
    let data = pattern(1 << 20);
    assert_eq!(within(30, blobs.echo(data.clone())).await.unwrap(), data);
    let tagged = within(30, blobs.tagged(9, data.clone())).await.unwrap();
    assert_eq!(tagged.len(), data.len() + 1);
    assert_eq!(tagged[0], 9);
    assert!(tagged[1..].iter().eq(data.iter().rev()));
    assert_eq!(within(5, blobs.echo(Vec::new())).await.unwrap(), Vec::<u8>::new());
    server.shutdown().await;
}

#[tokio::test]
async fn a_mebibyte_goes_and_comes_back_over_tcp() {
    a_mebibyte_goes_and_comes_back("tcp").await;
}

#[tokio::test]
async fn a_mebibyte_goes_and_comes_back_over_the_memory_transport() {
    a_mebibyte_goes_and_comes_back("memory").await;
}

#[tokio::test]
async fn a_result_of_bytes_carries_the_value_or_the_error() {
    let (server, _client, blobs) = serve("tcp", BlobsSkeleton::new(Store)).await;
    let data = pattern(1 << 20);
    assert_eq!(within(30, blobs.bounded(data.clone(), 1 << 20)).await.unwrap(), Ok(data.clone()));
    assert_eq!(within(30, blobs.bounded(data, 10)).await.unwrap(), Err(TooLong { len: 1 << 20 }));
    assert_eq!(within(5, blobs.bounded(vec![1, 2], 2)).await.unwrap(), Ok(vec![1, 2]));
    server.shutdown().await;
}

#[tokio::test]
async fn bytes_nested_in_other_types_still_travel() {
    let (server, _client, blobs) = serve("memory", BlobsSkeleton::new(Store)).await;
    let got = within(5, blobs.nested(Some(pattern(300)), vec![pattern(3), Vec::new(), pattern(200)])).await;
    assert_eq!(got.unwrap(), (203, Some(pattern(300))));
    assert_eq!(within(5, blobs.nested(None, Vec::new())).await.unwrap(), (0, None));
    server.shutdown().await;
}

/// A `Blobs` skeleton written by hand the way generated code was before byte strings: it decodes
/// and encodes `Vec<u8>` as serde's sequence of `u8`.
struct OldSkeleton;

impl Dispatch for OldSkeleton {
    fn descriptor(&self) -> &'static InterfaceDescriptor {
        BlobsOp::DESCRIPTOR
    }

    fn dispatch<'a>(&'a self, op: OpId, args: Bytes, reply: Reply<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match BlobsOp::from_id(op) {
                Some(BlobsOp::Echo) => match decode_args::<(Vec<u8>,)>(args) {
                    Ok((data,)) => reply.ok(&data),
                    Err(fault) => reply.fault(fault),
                },
                Some(BlobsOp::Bounded) => match decode_args::<(Vec<u8>, u64)>(args) {
                    Ok((data, max)) if data.len() as u64 > max => {
                        reply.err(&TooLong { len: data.len() as u64 })
                    }
                    Ok((data, _)) => reply.ok(&data),
                    Err(fault) => reply.fault(fault),
                },
                _ => reply.fault(rmi_runtime::Fault::NoSuchOperation),
            }
        })
    }
}

#[tokio::test]
async fn a_new_client_understands_an_old_server() {
    let (server, _client, blobs) = serve("tcp", OldSkeleton).await;
    let data = pattern(70_000);
    assert_eq!(within(30, blobs.echo(data.clone())).await.unwrap(), data);
    assert_eq!(within(30, blobs.bounded(data.clone(), 70_000)).await.unwrap(), Ok(data.clone()));
    assert_eq!(within(30, blobs.bounded(data, 5)).await.unwrap(), Err(TooLong { len: 70_000 }));
    server.shutdown().await;
}

#[tokio::test]
async fn an_old_client_is_understood_by_a_new_server() {
    let (server, _client, blobs) = serve("tcp", BlobsSkeleton::new(Store)).await;
    let data = pattern(70_000);
    // Encoded as a plain tuple `(Vec<u8>,)`, decoded as a plain `Vec<u8>`.
    let echoed = blobs.proxy().call::<_, Vec<u8>, NoError>(BlobsOp::Echo.descriptor(), &(data.clone(),));
    assert_eq!(within(30, echoed).await.unwrap(), Ok(data.clone()));
    let refused = blobs.proxy().call::<_, Vec<u8>, TooLong>(BlobsOp::Bounded.descriptor(), &(data, 5u64));
    assert_eq!(within(30, refused).await.unwrap(), Err(TooLong { len: 70_000 }));
    server.shutdown().await;
}

#[tokio::test]
async fn the_skeleton_replies_with_the_bytes_of_a_plain_vec() {
    let data = pattern(300);
    let args = postcard::to_allocvec(&(data.clone(),)).unwrap();
    let mut buf = BytesMut::new();
    BlobsSkeleton::new(Store).dispatch(BlobsOp::Echo.id(), Bytes::from(args), Reply::new(&mut buf)).await;
    assert_eq!(&buf[..], postcard::to_allocvec(&Outcome::<_, NoError>::Ok(&data)).unwrap());
    assert_eq!(codec::decode::<Outcome<Vec<u8>, NoError>>(&buf).unwrap(), Outcome::Ok(data));
}

#[tokio::test]
async fn a_large_reply_is_acknowledged_at_once_and_a_small_one_waits_for_the_next_frames() {
    let server = Endpoint::new();
    server.listen(fresh("tcp")).await.expect("listen");
    let reference = server.export(BlobsSkeleton::new(Store));
    // Acks owed on their own would wait an hour: only the at-once path can empty the history.
    let client =
        Endpoint::with_config(rmi_runtime::Config::default().ack_delay(std::time::Duration::from_secs(3600)));
    let blobs = client.proxy::<BlobsClient>(&reference).await.expect("proxy");
    within(5, blobs.echo(pattern(10))).await.unwrap();
    assert_eq!(
        server.reply_history_len(),
        1,
        "a small reply is kept until its ack goes with the next frames"
    );
    within(5, blobs.echo(pattern(128 * 1024))).await.unwrap();
    // The large reply's ack is queued at once (the small one's went with the request before it).
    within(5, async {
        while server.reply_history_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.shutdown().await;
}
