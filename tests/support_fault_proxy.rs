//! Self-test of the fault-injection proxy the reliability tests rely on.

mod support;

use support::fault_proxy::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free port.
async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn echo_through(fault: Fault, len: usize) -> std::io::Result<Vec<u8>> {
    let proxy = FaultProxy::start(echo_server().await, fault).await;
    let mut s = TcpStream::connect(proxy.addr()).await?;
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(&data).await?;
        w.shutdown().await
    };
    let mut got = Vec::new();
    let (wr, rr) = tokio::join!(write, r.read_to_end(&mut got));
    wr?;
    rr?;
    Ok(got)
}

#[tokio::test]
async fn forwards_faithfully_without_fault() {
    let got = echo_through(Fault::None, 100_000).await.unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().enumerate().all(|(i, b)| *b == i as u8));
}

#[tokio::test]
async fn reset_upstream_is_an_error_not_a_short_success() {
    let r = echo_through(Fault::ResetUpstreamAfter(10_000), 100_000).await;
    assert!(
        r.is_err(),
        "expected a connection error, got {:?} bytes",
        r.map(|v| v.len())
    );
}

#[tokio::test]
async fn reset_downstream_is_an_error_not_a_short_success() {
    let r = echo_through(Fault::ResetDownstreamAfter(5_000), 100_000).await;
    assert!(
        r.is_err(),
        "expected a connection error, got {:?} bytes",
        r.map(|v| v.len())
    );
}

#[tokio::test]
async fn throttle_and_stall_still_deliver_everything() {
    let got = echo_through(
        Fault::Throttle {
            bytes_per_sec: 200_000,
        },
        20_000,
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 20_000);
    let got = echo_through(
        Fault::StallUpstream {
            after: 1_000,
            millis: 200,
        },
        5_000,
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 5_000);
}
