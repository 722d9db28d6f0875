//! An in-process relay for the CLI tests, and concurrent write/read runs.

use super::{Finished, Sandbox};
use zebrastream::relay::{Relay, RelayConfig, RelayHandle};

/// An in-process relay on a free loopback port, on its own runtime.
pub struct TestRelay {
    rt: tokio::runtime::Runtime,
    handle: Option<RelayHandle>,
    /// `http://127.0.0.1:PORT/v0`
    pub connect_url: String,
}

impl TestRelay {
    /// An open relay (no tokens).
    pub fn open() -> TestRelay {
        TestRelay::with(RelayConfig::open_loopback())
    }

    /// A relay with the given settings.
    pub fn with(config: RelayConfig) -> TestRelay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.block_on(Relay::bind(config)).expect("relay binds");
        let connect_url = handle.connect_url();
        TestRelay {
            rt,
            handle: Some(handle),
            connect_url,
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        let _ = &self.rt;
    }
}

impl Sandbox {
    /// Runs a writer and a reader concurrently through `relay` on `path`;
    /// the connect URL and a timeout are added to both argument lists.
    pub fn transfer(
        &self,
        relay: &TestRelay,
        path: &str,
        write_args: &[&str],
        read_args: &[&str],
        stdin: &[u8],
    ) -> (Finished, Finished) {
        let common = ["-U", relay.connect_url.as_str(), "-t", "30", "-s", path];
        let mut w: Vec<&str> = vec!["write"];
        w.extend_from_slice(&common);
        w.extend_from_slice(write_args);
        let mut r: Vec<&str> = vec!["read"];
        r.extend_from_slice(&common);
        r.extend_from_slice(read_args);
        let reader = self.spawn(&r, None);
        let writer = self.spawn(&w, Some(stdin.to_vec()));
        let w = writer.finish();
        let r = reader.finish();
        (w, r)
    }
}
