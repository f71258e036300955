//! Tests where separate processes are the point.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmi_runtime::{Endpoint, Error, ObjectId, Stub};
use rmi_tests::services::CalculatorClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_call_gives_the_caller_an_error_within_its_deadline() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmi-test-server"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the test server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("the server announces its address");
    let addr = first.strip_prefix("LISTENING ").expect("LISTENING line").parse().unwrap();
    let second = lines.next_line().await.unwrap().expect("the server announces its endpoint");
    assert!(second.starts_with("ENDPOINT "), "{second}");

    let calc: CalculatorClient = Endpoint::new().proxy_at(&addr, ObjectId::from_u128(1)).await.unwrap();
    assert_eq!(calc.add(20, 22).await.unwrap(), 42);

    let deadline = Duration::from_secs(20);
    let call = tokio::spawn({
        let calc = calc.with_timeout(deadline);
        async move {
            let start = Instant::now();
            (calc.hang().await, start.elapsed())
        }
    });
    // Wait until the server is inside the call, then kill it.
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("HANG"));
    child.kill().await.unwrap();

    let (result, took) = call.await.unwrap();
    assert!(matches!(result, Err(Error::ConnectionClosed(_))), "{result:?}");
    assert!(took < deadline, "the error came after the deadline: {took:?}");
    // A new call fails promptly too, instead of hanging.
    let start = Instant::now();
    assert!(calc.add(1, 1).await.is_err());
    assert!(start.elapsed() < deadline);
}
