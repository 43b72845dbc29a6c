//! The deployment files are checked here, since no Docker engine runs on these machines: the
//! compose file has the seed's topology, its replicas share one database and one Redis, every
//! OPTIFORK_* variable it sets is one the binary reads, and nginx balances both replicas
//! without buffering the SSE stream. (The same topology runs as real processes in
//! replicas.rs.) Also the binary's `--probe` health check used by the image.

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose() -> Yaml {
    YamlLoader::load_from_str(&repo_file("docker-compose.yml"))
        .expect("docker-compose.yml is valid YAML")
        .remove(0)
}

/// A replica's settings, with the `x-optifork` anchor merged in (yaml-rust2 keeps `<<` as a
/// key, so merge by hand as compose does).
fn service(doc: &Yaml, name: &str) -> Yaml {
    let svc = &doc["services"][name];
    match &svc["<<"] {
        Yaml::Hash(base) => {
            let mut merged = base.clone();
            if let Yaml::Hash(own) = svc {
                for (k, v) in own {
                    if k.as_str() != Some("<<") {
                        merged.insert(k.clone(), v.clone());
                    }
                }
            }
            Yaml::Hash(merged)
        }
        _ => svc.clone(),
    }
}

#[test]
fn compose_has_the_seed_topology() {
    let doc = compose();
    for name in ["postgres", "redis", "optifork-1", "optifork-2", "nginx"] {
        assert!(
            !doc["services"][name].is_badvalue(),
            "service {name} is missing"
        );
    }
    assert_eq!(doc["services"]["nginx"]["ports"][0].as_str(), Some("80:80"));
    let a = service(&doc, "optifork-1");
    let b = service(&doc, "optifork-2");
    assert_eq!(a["build"].as_str(), Some("."));
    for var in [
        "OPTIFORK_DATABASE_URL",
        "OPTIFORK_REDIS_URL",
        "OPTIFORK_LISTEN",
    ] {
        assert_eq!(
            a["environment"][var], b["environment"][var],
            "{var} differs between replicas"
        );
    }
    let db = a["environment"]["OPTIFORK_DATABASE_URL"].as_str().unwrap();
    assert!(
        db.starts_with("postgres://") && db.contains("@postgres:5432/"),
        "{db}"
    );
    assert!(
        a["environment"]["OPTIFORK_REDIS_URL"]
            .as_str()
            .unwrap()
            .contains("redis:6379")
    );
    assert_eq!(
        a["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn compose_sets_only_variables_the_server_reads() {
    let help = Command::new(env!("CARGO_BIN_EXE_optifork-server"))
        .arg("--help")
        .output()
        .expect("running --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let doc = compose();
    let a = service(&doc, "optifork-1");
    let Yaml::Hash(env) = &a["environment"] else {
        panic!("no environment")
    };
    for (k, _) in env {
        let var = k.as_str().unwrap();
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} is not a setting of optifork-server"
        );
    }
}

#[test]
fn nginx_balances_both_replicas_and_streams_unbuffered() {
    let conf = repo_file("deploy/nginx.conf");
    assert!(conf.contains("server optifork-1:8000"));
    assert!(conf.contains("server optifork-2:8000"));
    assert!(conf.contains("listen 80;"));
    let stream = conf
        .split("location = /sdk/v1/stream")
        .nth(1)
        .expect("a stream location");
    let block = &stream[..stream.find('}').unwrap()];
    assert!(block.contains("proxy_buffering off;"));
    assert!(block.contains("proxy_read_timeout"));
    assert!(conf.contains("X-Forwarded-For"));
    // The mounted path in compose is this file.
    assert!(
        repo_file("docker-compose.yml").contains("./deploy/nginx.conf:/etc/nginx/nginx.conf:ro")
    );
}

#[test]
fn dockerfile_builds_with_rust_and_runs_distroless() {
    let df = repo_file("Dockerfile");
    assert_eq!(
        df.matches("\nFROM ").count() + usize::from(df.starts_with("FROM ")),
        2,
        "two stages"
    );
    assert!(df.contains("cargo build --release --locked -p optifork-server"));
    assert!(df.contains("distroless"));
    assert!(df.contains("--probe"));
    // Every crate the server build needs is copied in (the whole workspace is).
    assert!(df.contains("COPY . ."));
}

#[tokio::test]
async fn probe_succeeds_on_a_healthy_server_and_fails_otherwise() {
    // A tiny HTTP server answering 200, then 503.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for status in ["200 OK", "503 Service Unavailable"] {
            let (mut sock, _) = listener.accept().await.unwrap();
            // Read the whole request head before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 256];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = sock
                .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                .await;
        }
    });
    let probe = |url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_optifork-server"))
                .args(["--probe", &url])
                .status()
                .unwrap()
                .success()
        })
    };
    assert!(probe(format!("http://{addr}/readyz")).await.unwrap());
    assert!(!probe(format!("http://{addr}/readyz")).await.unwrap());
    assert!(!probe("http://127.0.0.1:1/readyz".into()).await.unwrap());
}
