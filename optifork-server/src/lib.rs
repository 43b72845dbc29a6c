//! OptiFork's server: where admins define flags, configs, segments and experiments, where
//! HTTP-only clients evaluate them, and where SDKs fetch rulesets and send exposures.
//!
//! * [`api`]: the route table and handlers (the seed's API, SDK sync, administration).
//! * [`state`]: per-environment snapshots (compiled engine + serialized ruleset) in `ArcSwap`s.
//! * [`auth`]: API keys.
//! * [`ingest`]: the batched exposure queue.
//! * [`ui`]: the admin web UI under `/ui` (server-rendered pages, signed session cookies).
//! * Storage is the `optifork-storage` crate (SQLite by default, PostgreSQL in production).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use optifork_storage::{KeyScope, StoreError};
use tokio::net::TcpListener;
use warp::Filter;
use warp::filters::path::FullPath;

pub mod api;
pub mod auth;
pub mod ingest;
pub mod metrics;
pub mod ratelimit;
pub mod replication;
pub mod settings;
pub mod state;
pub mod ui;
pub mod web;

pub use settings::Settings;
use state::AppState;

/// Opens storage, prepares keys and rulesets, and serves until SIGINT or SIGTERM; then stops
/// accepting, finishes in-flight requests and writes every queued exposure before returning.
pub async fn run(settings: Settings) -> Result<(), String> {
    let storage = optifork_storage::open(&settings.database_url)
        .await
        .map_err(|e| format!("opening the database {}: {e}", settings.database_url))?;
    let (ingest, writer) = ingest::spawn(
        Arc::clone(&storage),
        settings.exposure_queue,
        settings.exposure_batch,
        settings.exposure_flush(),
    );
    let redis = settings
        .redis_url
        .as_deref()
        .map(|url| replication::Redis::new(url, &settings.redis_prefix))
        .transpose()?;
    raise_file_limit();
    let state = Arc::new(AppState::new(settings.clone(), storage, ingest, redis));
    bootstrap_keys(&state)
        .await
        .map_err(|e| format!("preparing API keys: {e}"))?;
    state
        .load_all()
        .await
        .map_err(|e| format!("loading rulesets: {e}"))?;

    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if settings.insecure_dev_mode {
        let line = "!".repeat(78);
        eprintln!(
            "{line}\n!! INSECURE DEV MODE: authentication is OFF. Anyone who can reach\n!! http://{addr} can read and change every flag. Never use this in production.\n{line}"
        );
        tracing::warn!("insecure dev mode: authentication is off");
    }
    println!(
        "OptiFork listening on http://{addr} (storage: {})",
        state.storage.backend()
    );

    let poller = tokio::spawn(poll_database(Arc::clone(&state)));
    let follower = tokio::spawn(replication::follow(Arc::clone(&state)));
    let pruner = tokio::spawn(prune_batch_ids(Arc::clone(&state)));
    let stopping = Arc::clone(&state);
    warp::serve(routes(Arc::clone(&state)))
        .incoming(listener)
        .graceful(async move {
            shutdown.await;
            // End SSE streams, or the graceful shutdown would wait for them forever.
            stopping.begin_shutdown();
        })
        .run()
        .await;
    tracing::info!("shutting down: writing queued exposures");
    poller.abort();
    follower.abort();
    pruner.abort();
    state.ingest.shut_down();
    if let Err(e) = writer.await {
        tracing::error!("the exposure writer failed: {e}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Every hour (and once at start), forgets batch ids older than `--batch-id-retention-hours`,
/// so the table that makes ingestion idempotent does not grow forever. Replicas may all do
/// it: the delete is idempotent.
async fn prune_batch_ids(state: Arc<AppState>) {
    let hours = state.settings.batch_id_retention_hours;
    // 0, or more hours than a date can hold: keep them forever.
    let Some(retention) = i64::try_from(hours)
        .ok()
        .filter(|&h| h > 0)
        .and_then(chrono::Duration::try_hours)
    else {
        return;
    };
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        let Some(cutoff) = chrono::Utc::now().checked_sub_signed(retention) else {
            continue;
        };
        match state.storage.prune_batch_ids(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "forgot old ingestion batch ids"),
            Err(e) => tracing::warn!("pruning old ingestion batch ids: {e}"),
        }
    }
}

/// Creates the `OPTIFORK_ADMIN_KEY` key if given; on a first start with no keys at all,
/// creates an admin key and prints it once.
async fn bootstrap_keys(state: &AppState) -> Result<(), StoreError> {
    let storage = &*state.storage;
    state.keys.reload(storage).await?;
    if let Some(key) = &state.settings.admin_key {
        if key.len() < auth::MIN_SEED_KEY_LEN {
            return Err(StoreError::Backend(format!(
                "OPTIFORK_ADMIN_KEY must be at least {} characters",
                auth::MIN_SEED_KEY_LEN
            )));
        }
        let id = auth::key_id(key);
        if !state.keys.is_active(&id) {
            let record = optifork_storage::NewApiKey {
                id: id.clone(),
                name: "OPTIFORK_ADMIN_KEY".into(),
                scope: KeyScope::Admin,
                environment: None,
                secret_hash: auth::hash_key(key),
            };
            match storage.create_api_key(&record, "startup").await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
            tracing::info!(key = %id, "admin key from OPTIFORK_ADMIN_KEY is ready");
        }
        state.keys.reload(storage).await?;
    } else if state.keys.is_empty() && !state.settings.insecure_dev_mode {
        let (key, record) = auth::generate_key("initial admin key", KeyScope::Admin, None);
        storage.create_api_key(&record, "startup").await?;
        state.keys.reload(storage).await?;
        println!(
            "Created the first admin API key. It is shown only this once; store it now:\n\n    {key}\n"
        );
    }
    Ok(())
}

/// Catches up with changes other replicas made (ruleset versions, API keys), every
/// `--db-poll-ms`: the safety net under Redis pub/sub, and the only mechanism without Redis.
async fn poll_database(state: Arc<AppState>) {
    let every = Duration::from_millis(state.settings.db_poll_ms.max(100));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = state.keys.reload(&*state.storage).await {
            tracing::warn!("refreshing API keys: {e}");
        }
        state.catch_up().await;
    }
}

/// Raises the open-file limit to its hard maximum: every SSE client holds a connection.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open-file limit: {n}"),
        Err(e) => tracing::warn!("could not raise the open-file limit: {e}"),
    }
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal that arrives right after start-up
/// is not lost) and returns a future that completes on the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("signal received");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("signal received");
        })
    }
}

/// The warp filter: one catch-all route that reads the request (body within the size limit)
/// and hands it to [`api::dispatch`].
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  remote: Option<SocketAddr>,
                  body| {
                let state = Arc::clone(&state);
                async move {
                    Ok::<_, Infallible>(
                        handle(state, method, path, query, headers, remote, body).await,
                    )
                }
            },
        )
        .recover(|rejection: warp::Rejection| async move {
            // Only malformed HTTP reaches here: every route goes through `handle`.
            tracing::debug!("rejection: {rejection:?}");
            Ok::<_, Infallible>(
                web::ApiError::bad_request("bad_request", "the request could not be read")
                    .into_response(),
            )
        })
        .unify()
}

async fn handle<S, B>(
    state: Arc<AppState>,
    method: Method,
    path: FullPath,
    query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: S,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let limit = state.settings.max_body_bytes;
    let parsed = async {
        let segments = path
            .as_str()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| web::percent_decode(s, false))
            .collect::<Result<Vec<_>, _>>()?;
        let query = web::parse_query(&query)?;
        let body = read_body(body, &headers, limit).await?;
        Ok::<_, web::ApiError>(web::Request {
            method,
            segments,
            query,
            headers,
            remote,
            body,
        })
    }
    .await;
    match parsed {
        Ok(req) => api::dispatch(state, req).await,
        Err(e) => e.into_response(),
    }
}

/// Reads the body, refusing more than `limit` bytes with 413. An oversized body is still
/// read and discarded (up to a bounded amount) so that the client, which is usually still
/// sending, receives the 413 instead of a connection reset.
async fn read_body<S, B>(
    mut body: S,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, web::ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = || {
        web::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let discard_up_to = limit.saturating_mul(4).max(16 << 20);
    let declared = headers
        .get(::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > discard_up_to) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            web::ApiError::bad_request("bad_request", format!("reading the body failed: {e}"))
        })?;
        seen += chunk.remaining();
        if seen > limit {
            if seen > discard_up_to {
                return Err(too_large());
            }
            chunk.advance(chunk.remaining());
            continue;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(buf.freeze())
}
