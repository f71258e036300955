//! Remote references between processes: a reference handed from one process to another calls the
//! object's own host, and a process killed while holding references lets their objects go within
//! one lease (while a live one keeps them for as long as it likes).

use std::time::Duration;

use rmi_runtime::{Config, Endpoint, ObjectId, Stub};
use rmi_tests::process::{TestServer, within};
use rmi_tests::services::{HubClient, HubImpl, HubSkeleton};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The hub's object id in `rmi-test-server`.
const HUB: ObjectId = ObjectId::from_u128(2);

async fn spawn(args: &[&str]) -> TestServer {
    TestServer::spawn(env!("CARGO_BIN_EXE_rmi-test-server").as_ref(), args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_handed_from_a_to_b_calls_c_directly_over_bs_own_connection() {
    let b = spawn(&[]).await;
    let c = spawn(&[]).await;
    let a = Endpoint::new();
    let hub_b: HubClient = a.proxy_at(&b.address, HUB).await.unwrap();
    let hub_c: HubClient = a.proxy_at(&c.address, HUB).await.unwrap();

    let greeter = hub_c.make_greeter("greeter on C".into()).await.unwrap();
    assert_eq!(greeter.reference().endpoint, c.endpoint);
    assert_eq!(greeter.caller().await.unwrap(), a.id(), "C saw A's own call come from someone else");

    let (said, seen) = hub_b.call_it(greeter.clone()).await.unwrap().unwrap();
    assert_eq!(said, "hello from greeter on C");
    assert_eq!(seen, b.endpoint, "C saw B's call come from someone else than B");
    assert_ne!(seen, a.id(), "B's call went through A");
    drop((b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_while_holding_references_lets_them_go_after_its_lease() {
    const LEASE: Duration = Duration::from_secs(1);
    const HELD: usize = 5;
    let server = Endpoint::with_config(Config::default().dgc_lease(LEASE));
    let address = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let (tell, mut unreferenced) = mpsc::unbounded_channel();
    server.export_with_id(HUB, HubSkeleton::new(HubImpl::new(server.clone(), Some(tell)))).unwrap();
    let baseline = server.exported_count();

    let mut client = spawn(&["hold", &address.to_string(), &HELD.to_string()]).await;
    assert_eq!(client.next_line().await, format!("HOLDING {HELD}"));
    assert_eq!(server.exported_count(), baseline + HELD);

    // A live holder keeps them past several leases.
    tokio::time::sleep(LEASE * 4).await;
    assert_eq!(server.exported_count(), baseline + HELD, "objects went while their holder lived");
    assert!(unreferenced.try_recv().is_err());

    // A killed one does not say goodbye: its lease ends, and with it its holds.
    within("kill the client", client.child.kill()).await.unwrap();
    let killed = Instant::now();
    for _ in 0..HELD {
        within("an object becomes unreferenced", unreferenced.recv()).await.unwrap();
    }
    let took = killed.elapsed();
    println!("the objects of the killed holder went {} ms after the kill", took.as_millis());
    // At most one lease after its last renewal (a third of a lease before the kill at most), plus
    // the collector's sweep period (an eighth of a lease) and scheduling.
    assert!(took <= LEASE + LEASE / 8 + Duration::from_millis(500), "went {took:?} after the kill");
    assert!(took >= LEASE / 2, "went {took:?} after the kill: before the holder's lease could end");
    assert_eq!(server.exported_count(), baseline);
}
