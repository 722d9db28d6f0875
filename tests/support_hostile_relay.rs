//! Self-test of the hostile relay the attack tests rely on: it records what a
//! writer sends, replays it to a reader, truncates, and redirects Connect.

mod support;

use support::hostile_relay::HostileRelay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{Config, Opening, Sealing, StreamReader, StreamWriter};

fn config(relay: &HostileRelay, path: &str) -> Config {
    Config::builder(path)
        .connect_url(relay.connect_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn records_a_put_and_serves_it_again_whole_or_truncated() {
    let relay = HostileRelay::start();
    let mut writer = StreamWriter::connect(&config(&relay, "/h/rec"), &Sealing::Plain)
        .await
        .unwrap();
    writer
        .write_all(b"monday: pay 100 EUR to alice")
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(
        relay.recorded("/h/rec"),
        vec![b"monday: pay 100 EUR to alice".to_vec()]
    );

    // A second reader gets the same bytes again: the replay.
    for _ in 0..2 {
        let mut reader = StreamReader::connect(&config(&relay, "/h/rec"), &Opening::Plain)
            .await
            .unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"monday: pay 100 EUR to alice");
    }

    // A cut body is an error, seen at connect (the reader looks at the first
    // bytes to tell plaintext from age) or while reading.
    relay.truncate_at(Some(6));
    let cut = async {
        let mut reader = StreamReader::connect(&config(&relay, "/h/rec"), &Opening::Plain).await?;
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await?;
        Ok::<_, Box<dyn std::error::Error>>(got)
    }
    .await;
    assert!(cut.is_err(), "a cut body is an error, got {cut:?}");

    relay.truncate_at(None);
    relay.serve("/h/rec", b"chosen".to_vec());
    let mut reader = StreamReader::connect(&config(&relay, "/h/rec"), &Opening::Plain)
        .await
        .unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"chosen");
}

#[tokio::test]
async fn answers_connect_with_a_data_url_of_its_choosing() {
    let relay = HostileRelay::start();
    let elsewhere = HostileRelay::start();
    relay.serve("/h/redir", b"from here".to_vec());
    elsewhere.serve("/h/redir", b"from elsewhere".to_vec());
    relay.answer_connect_with(Some(format!("{}/data/h/redir", elsewhere.origin())));
    let seen_before = elsewhere.seen().len();
    let result = async {
        let mut reader =
            StreamReader::connect(&config(&relay, "/h/redir"), &Opening::Plain).await?;
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await?;
        Ok::<_, Box<dyn std::error::Error>>(got)
    }
    .await;
    // Whatever the client decides, the Connect call reached the hostile relay,
    // and the redirect target is a distinct origin.
    assert!(relay
        .seen()
        .iter()
        .any(|s| s.uri.starts_with("/v0/h/redir")));
    assert_ne!(relay.origin(), elsewhere.origin());
    let _ = (result, seen_before);
}
