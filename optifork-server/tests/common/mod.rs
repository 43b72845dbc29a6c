//! Test harness: starts the real `optifork-server` binary on an ephemeral port, on SQLite
//! (a temporary file) or on PostgreSQL (a fresh database per server, dropped afterwards).
//!
//! PostgreSQL is `OPTIFORK_TEST_PG_URL` or `postgres://postgres@127.0.0.1:5432/postgres`.
//! When it cannot be reached, tests fail under `CI=true` and are skipped (with a printed
//! reason) otherwise.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The admin key every test server is started with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Which database a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A throwaway PostgreSQL database, dropped when this is dropped.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we can block on; use a private one on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("OPTIFORK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, or `None` (skip) when PostgreSQL is unreachable outside CI.
pub async fn pg_database() -> Option<PgDatabase> {
    let admin_url = pg_admin_url();
    let name = format!("optifork_it_{}", uuid::Uuid::new_v4().simple());
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls),
    )
    .await;
    let (client, conn) = match connected {
        Ok(Ok(pair)) => pair,
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("PostgreSQL at {admin_url} is required in CI: {why}");
            }
            eprintln!("SKIPPED: PostgreSQL at {admin_url} is unreachable ({why})");
            return None;
        }
    };
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("creating a test database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    Some(PgDatabase {
        url: format!("{base}/{name}"),
        admin_url,
        name,
    })
}

/// Where a test server keeps its data; survives restarts of the server.
pub enum Data {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
    /// Another server's database (a replica); owned by that server.
    Shared(String),
}

impl Data {
    pub async fn new(backend: Backend) -> Option<Data> {
        match backend {
            Backend::Sqlite => Some(Data::Sqlite(tempfile::tempdir().expect("temp dir"))),
            Backend::Postgres => pg_database().await.map(Data::Postgres),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Data::Sqlite(dir) => dir.path().join("optifork.db").display().to_string(),
            Data::Postgres(db) => db.url.clone(),
            Data::Shared(url) => url.clone(),
        }
    }
}

/// A running server process.
pub struct Server {
    pub backend: Backend,
    child: Option<Child>,
    pub url: String,
    pub data: Data,
    pub http: reqwest::Client,
    pub stdout: Vec<String>,
    extra_args: Vec<String>,
}

impl Server {
    /// Starts a server on new data; `None` when the backend is unavailable (skip).
    pub async fn start(backend: Backend) -> Option<Server> {
        Server::start_with(backend, &[]).await
    }

    /// Starts a server with extra command-line arguments.
    pub async fn start_with(backend: Backend, args: &[&str]) -> Option<Server> {
        let data = Data::new(backend).await?;
        let mut server = Server {
            backend,
            child: None,
            url: String::new(),
            data,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            stdout: Vec::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn(true);
        Some(server)
    }

    fn spawn(&mut self, with_admin_key: bool) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_optifork-server"));
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &self.data.url(),
        ])
        .args(["--log", "warn"])
        .args(&self.extra_args)
        .env_remove("OPTIFORK_ADMIN_KEY")
        .env_remove("OPTIFORK_INSECURE_DEV_MODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if !self.extra_args.iter().any(|a| a == "--exposure-flush-ms") {
            cmd.args(["--exposure-flush-ms", "50"]);
        }
        if with_admin_key {
            cmd.env("OPTIFORK_ADMIN_KEY", ADMIN_KEY);
        }
        let mut child = cmd.spawn().expect("starting optifork-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let found = line
                        .strip_prefix("OptiFork listening on ")
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned);
                    seen.push(line);
                    if let Some(url) = found {
                        break url;
                    }
                }
                _ => panic!("the server exited before listening; it printed: {seen:?}"),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.stdout = seen;
        self.url = url;
        self.child = Some(child);
    }

    /// Starts a second server process on this server's database (a replica).
    pub fn replica(&self, args: &[&str]) -> Server {
        let mut server = Server {
            backend: self.backend,
            child: None,
            url: String::new(),
            data: Data::Shared(self.data.url()),
            http: self.http.clone(),
            stdout: Vec::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn(true);
        server
    }

    /// Starts the server process again on the same data (without the seeded admin key when
    /// `with_admin_key` is false).
    pub fn start_again(&mut self, with_admin_key: bool) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn(with_admin_key);
    }

    /// Starts the server process again on the same data with other extra arguments.
    pub fn start_again_with(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|s| s.to_string()).collect();
        self.start_again(true);
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = child.wait().expect("waiting for the server");
            assert!(status.success(), "the server exited with {status}");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(ADMIN_KEY)
    }
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_KEY)
            .json(body)
    }
    pub fn put(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .put(self.url(path))
            .bearer_auth(ADMIN_KEY)
            .json(body)
    }
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path)).bearer_auth(ADMIN_KEY)
    }

    /// Creates an SDK key for an environment and returns it.
    pub async fn sdk_key(&self, environment: &str) -> String {
        let resp = self
            .post("/keys", &serde_json::json!({"name": "test sdk", "scope": "sdk", "environment": environment}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a request and returns (status, JSON body or Null).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs a test body against both backends: `both!(name, |server| async { ... })` defines
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(server) = common::Server::start(common::Backend::Sqlite).await {
                    $body(server).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(server) = common::Server::start(common::Backend::Postgres).await {
                    $body(server).await;
                }
            }
        }
    };
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: String,
}

/// Reads events (and counts comment lines) from an SSE response.
pub struct SseReader {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
    pub comments: usize,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` when the stream ends or `timeout` passes.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                let mut any = false;
                for line in block.lines().filter(|l| !l.is_empty()) {
                    if line.starts_with(':') {
                        self.comments += 1;
                        continue;
                    }
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v).to_owned();
                    any = true;
                    match k {
                        "event" => ev.event = v,
                        "id" => ev.id = v,
                        "data" => ev.data = v,
                        _ => {}
                    }
                }
                if any {
                    return Some(ev);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

/// A private Redis server on a free port, for tests that stop and restart it.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        r.start_again();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for replica tests");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
