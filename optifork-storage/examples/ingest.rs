//! Exposure ingest throughput into PostgreSQL: writes 200,000 exposures through
//! `Storage::insert_exposures` (COPY in binary format) in batches, as the server does, and
//! prints rows per second for a few batch sizes and concurrency levels.
//!
//! ```sh
//! cargo run --release -p optifork-storage --example ingest [-- postgres://user@host/db]
//! ```
//!
//! The URL (default: `OPTIFORK_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a server and a database to connect to; the run creates its own scratch database
//! `optifork_ingest_<random>` there and drops it at the end.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use optifork_storage::postgres::PostgresStorage;
use optifork_storage::{Exposure, Storage};
use serde_json::json;

const TOTAL: usize = 200_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let admin_url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("OPTIFORK_TEST_PG_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let database = format!("optifork_ingest_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await?;
    let result = run(&with_database(&admin_url, &database)).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await?;
    result
}

async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let storage: Arc<dyn Storage> = Arc::new(PostgresStorage::connect(url).await?);
    let now = Utc::now();
    let rows: Arc<Vec<Exposure>> = Arc::new(
        (0..TOTAL)
            .map(|i| Exposure {
                environment: "production".into(),
                flag_name: (i % 2 == 0).then(|| format!("flag_{}", i % 50)),
                experiment_name: (i % 2 == 1).then(|| format!("experiment_{}", i % 20)),
                user_id: format!("user-{}", i % 40_000),
                variant: Some(if i % 3 == 0 { "control" } else { "treatment" }.into()),
                enabled: (i % 2 == 0).then_some(i % 4 == 0),
                user_context: (i % 10 == 0).then(|| json!({"country": "FR", "plan": "pro"})),
                timestamp: now,
            })
            .collect(),
    );

    println!("{TOTAL} exposures into PostgreSQL per run");
    for (batch, concurrency) in [(1000, 1), (100, 8), (500, 8), (1000, 8), (5000, 4)] {
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|task| {
                let storage = storage.clone();
                let rows = rows.clone();
                tokio::spawn(async move {
                    // Task `task` writes every `concurrency`-th batch, each with its own id.
                    let chunks = rows.chunks(batch).enumerate();
                    for (n, chunk) in chunks.filter(|(n, _)| n % concurrency == task) {
                        let id = format!("{batch}-{concurrency}-{n}");
                        storage.insert_exposures(Some(&id), chunk).await?;
                    }
                    Ok::<_, optifork_storage::StoreError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "batches of {batch:>5}, {concurrency} concurrent: {:>9.0} rows/s ({seconds:.2} s)",
            TOTAL as f64 / seconds
        );
    }
    Ok(())
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}
