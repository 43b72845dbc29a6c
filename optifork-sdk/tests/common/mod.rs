//! Test harness: the real `optifork-server` binary on an ephemeral port and an SQLite file in
//! a temporary directory; a tiny blocking HTTP client for admin calls (usable with or without
//! a tokio runtime); and a tiny HTTP server for serving what a real server never would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The admin key every test server is started with.
pub const ADMIN_KEY: &str = "sdk-test-admin-key-0123456789";

/// The server binary: `<target dir>/debug/optifork-server` (`release` under `--release`),
/// built once if missing (`cargo build -p optifork-server`, which the test can run: cargo
/// does not hold the target directory's lock while tests run).
pub fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // This test runs from <target>/debug/deps/<test binary>.
        let exe = std::env::current_exe().expect("current exe");
        let debug = exe.parent().and_then(Path::parent).expect("<target>/debug");
        let bin = debug.join(format!("optifork-server{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let target = debug.parent().expect("<target>");
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            eprintln!("building optifork-server into {} ...", target.display());
            let mut cargo = Command::new(env!("CARGO"));
            cargo.args(["build", "-p", "optifork-server"]);
            if debug.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            let status = cargo
                .env("CARGO_TARGET_DIR", target)
                .current_dir(workspace)
                .status()
                .expect("running cargo build -p optifork-server");
            assert!(status.success(), "cargo build -p optifork-server failed");
        }
        assert!(bin.exists(), "{} is missing", bin.display());
        bin
    })
}

/// A running server process on its own SQLite database.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Holds the database; survives restarts.
    pub dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    /// Starts a server on a new database.
    pub fn start() -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            dir: tempfile::tempdir().expect("temp dir"),
            port: 0,
        };
        s.spawn();
        s
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("optifork.db")
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(server_binary());
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--database-url")
            .arg(self.db_path())
            .args([
                "--log",
                "warn,warp::server=off",
                "--exposure-flush-ms",
                "20",
            ])
            .env_remove("OPTIFORK_INSECURE_DEV_MODE")
            .env("OPTIFORK_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("starting optifork-server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
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
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("a port in the URL");
        self.url = url.trim_end_matches('/').to_owned();
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL: no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same database and the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger briefly after the old process died.
            if TcpListener::bind(("127.0.0.1", self.port)).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }

    /// An admin API call.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let resp = http(
            method,
            &format!("{}{path}", self.url),
            Some(ADMIN_KEY),
            body,
            &[],
        );
        let json = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp.status, json)
    }

    /// An admin API call that must succeed.
    pub fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, json) = self.admin(method, path, Some(&body));
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {json}"
        );
        json
    }

    /// Creates an SDK key for `production`.
    pub fn sdk_key(&self) -> String {
        let json = self.ok(
            "POST",
            "/keys",
            json!({"name": "sdk test", "scope": "sdk", "environment": "production"}),
        );
        json["key"].as_str().expect("key").to_owned()
    }

    /// The ruleset version the server serves now.
    pub fn version(&self, sdk_key: &str) -> u64 {
        let resp = http(
            "GET",
            &format!("{}/sdk/v1/ruleset", self.url),
            Some(sdk_key),
            None,
            &[],
        );
        let json: Value = serde_json::from_slice(&resp.body).expect("ruleset JSON");
        json["version"].as_u64().expect("version")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response read by [`http`].
#[derive(Debug, Default, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP/1.1 request (one connection per request). Status 0 when the connection
/// fails.
pub fn http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Response {
    let body = body.map(|b| b.to_string().into_bytes());
    raw_http(method, url, bearer, body.as_deref(), headers)
}

pub fn raw_http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Response {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Ok(mut stream) = TcpStream::connect(host) else {
        return Response::default();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(key) = bearer {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    if stream.write_all(&bytes).is_err() {
        return Response::default();
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response::default();
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A request received by a [`FakeServer`].
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`FakeServer`] does with a request.
pub enum Reply {
    /// Answers with a status, extra headers and a body.
    Respond(u16, Vec<(String, String)>, Vec<u8>),
    /// Closes the connection without answering.
    Drop,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Respond(
            status,
            vec![("Content-Type".into(), "application/json".into())],
            body.as_bytes().to_vec(),
        )
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A tiny HTTP server on an ephemeral port: each request is answered by a closure.
pub struct FakeServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        FakeServer { url, requests }
    }

    pub fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path))
            .cloned()
            .collect()
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Request {
        method,
        path,
        headers,
        body,
    };
    log.lock().unwrap().push(req.clone());
    match handler(&req) {
        Reply::Drop => {}
        Reply::Respond(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    }
}

/// Forwards a request to `base` and relays the answer (without compression).
pub fn forward(base: &str, req: &Request) -> Reply {
    let auth = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut headers = Vec::new();
    if let Some(tag) = req.header("if-none-match") {
        headers.push(("If-None-Match", tag));
    }
    let body = (!req.body.is_empty()).then_some(req.body.as_slice());
    let resp = raw_http(
        &req.method,
        &format!("{base}{}", req.path),
        auth.as_deref(),
        body,
        &headers,
    );
    if resp.status == 0 {
        return Reply::Drop;
    }
    let mut out = Vec::new();
    for name in ["content-type", "etag"] {
        if let Some(v) = resp.header(name) {
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    Reply::Respond(resp.status, out, resp.body)
}

/// Polls `check` every 20 ms until it holds, for at most `within`; panics with `what`.
pub fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
