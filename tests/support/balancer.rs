//! nginx running the recipe in `deploy/nginx.conf` in front of relay nodes on
//! loopback: shared by the scale-out test and the scale-out bench.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// nginx running `deploy/nginx.conf`, with the test's ports filled in.
pub struct Balancer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    reserve_port().local_addr().unwrap().port()
}

/// A free loopback port, held until the listener is dropped: keep it while
/// binding other sockets (so none of them can get this port), drop it just
/// before the balancer binds it.
pub fn reserve_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A certificate and key (PEM files) for the balancer to terminate TLS with.
#[derive(Debug, Clone, Copy)]
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// The recipe with its listen port and node list replaced, files kept in
/// `dir`, and with `tls` its commented-out TLS termination switched on.
pub fn render_recipe(
    recipe: &str,
    port: u16,
    nodes: &[SocketAddr],
    dir: &Path,
    tls: Option<TlsFiles<'_>>,
) -> String {
    let mut out = String::new();
    let mut servers_written = false;
    for line in recipe.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("server 127.0.0.1:") {
            if !servers_written {
                for node in nodes {
                    out.push_str(&format!(
                        "        server {node} max_fails=1 fail_timeout=10s;\n"
                    ));
                }
                servers_written = true;
            }
            continue;
        }
        if trimmed.starts_with("listen 8080;") {
            let ssl = if tls.is_some() { " ssl" } else { "" };
            out.push_str(&format!("        listen 127.0.0.1:{port}{ssl};\n"));
            continue;
        }
        if trimmed.starts_with("# listen 8443 ssl;") {
            continue;
        }
        if let (Some(files), Some(setting)) = (tls, trimmed.strip_prefix("# ssl_certificate")) {
            let (name, file) = match setting.starts_with("_key") {
                true => ("ssl_certificate_key", files.key),
                false => ("ssl_certificate", files.cert),
            };
            out.push_str(&format!("        {name} {};\n", file.display()));
            continue;
        }
        if trimmed.starts_with("worker_processes") {
            out.push_str("worker_processes 1;\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if trimmed.starts_with("http {") {
            let d = dir.display();
            out.push_str(&format!(
                "    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
            ));
        }
    }
    assert!(
        servers_written,
        "the recipe lists its nodes as `server 127.0.0.1:…` lines"
    );
    out
}

/// Starts nginx on `port` with the recipe, in front of `nodes`.
pub async fn start_balancer(nginx: &Path, port: u16, nodes: &[SocketAddr]) -> Balancer {
    start_balancer_with(nginx, port, nodes, None).await
}

/// [`start_balancer`], terminating TLS with `tls` when given (URL `https://…`).
pub async fn start_balancer_with(
    nginx: &Path,
    port: u16,
    nodes: &[SocketAddr],
    tls: Option<TlsFiles<'_>>,
) -> Balancer {
    let recipe_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
    let recipe = std::fs::read_to_string(recipe_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, render_recipe(&recipe, port, nodes, dir.path(), tls)).unwrap();
    let globals = format!(
        "daemon off; master_process off; pid {0}/nginx.pid; error_log {0}/error.log warn;",
        dir.path().display()
    );
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-g")
        .arg(globals)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    // Owned by the Balancer at once, so nginx is stopped on every path out.
    let mut balancer = Balancer {
        child,
        url: match tls {
            Some(_) => format!("https://127.0.0.1:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        },
        _dir: dir,
    };
    let mut client = reqwest::Client::builder();
    if let Some(files) = tls {
        let pem = std::fs::read(files.cert).unwrap();
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    let client = client.build().unwrap();
    let log =
        |b: &Balancer| std::fs::read_to_string(b._dir.path().join("error.log")).unwrap_or_default();
    for _ in 0..100 {
        // nginx that could not bind its port (another test's relay took it
        // between free_port() and here) exits: then whatever answers on the
        // port is not this balancer.
        if let Ok(Some(status)) = balancer.child.try_wait() {
            panic!(
                "nginx exited ({status}) before it served: {}",
                log(&balancer)
            );
        }
        if let Ok(r) = client.get(format!("{}/healthz", balancer.url)).send().await {
            // Only nginx names itself in `Server`; a relay answering on this
            // port by accident does not.
            let from_nginx = r
                .headers()
                .get(reqwest::header::SERVER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("nginx"));
            if r.status().is_success() && from_nginx {
                return balancer;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not come up: {}", log(&balancer));
}

/// nginx from PATH or /usr/sbin (None: skip locally; panics under CI).
pub fn nginx() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        return Some(sbin);
    }
    super::tool("nginx")
}
