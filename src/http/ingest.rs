//! `POST /ingest/prices`: NDJSON price ticks, one JSON object per line
//! (`{"symbol":"BTC","price":64000.5,"volume":1.2,"ts":1790000000}`), and pools' TVL and
//! APY samples (`{"pool":"curve-3pool","tvl":1.2e9,"apy":4.1,"ts":1790000000}`), streamed
//! and written to ClickHouse in batches. Good lines are ingested even when others are bad; the
//! response counts both and names the bad lines by number.
//!
//! A body over `MERIDIAN_INGEST_MAX_BYTES` gets 413: at once when its Content-Length says
//! so (nothing is read), or when the stream passes the limit, in which case the batches
//! written before that point stay ingested and the response says how many.
//!
//! Retries: with an `Idempotency-Key` header (1 to 128 visible ASCII characters, scoped
//! to the caller, remembered for a day), a retry of the same body stores each tick once.
//! A retry of a finished ingest gets its response again (`Idempotent-Replayed: true`) and
//! stores nothing; a retry of one that failed part-way skips the lines already stored;
//! a retry while the first attempt still runs gets 409. If Meridian dies between storing
//! a batch and recording it, that one batch may be stored twice.

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::HttpState;
use crate::{
    error::Error,
    ingest::{self, KnownSymbols, Latest, Sample},
    store::{
        clickhouse::{PoolMetricRow, TickRow},
        redis::IngestProgress,
        RequestStores,
    },
};

/// Ticks per ClickHouse insert.
const BATCH: usize = 50_000;
/// Longest line accepted, in bytes.
const MAX_LINE: usize = 16 * 1024;
/// Bad lines listed in a response (all are counted).
const MAX_REPORTED: usize = 100;

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Summary {
    accepted: u64,
    rejected: u64,
    errors: Vec<LineError>,
    /// True when more lines were bad than `errors` lists.
    errors_truncated: bool,
}

#[derive(Serialize)]
struct LineError {
    line: u64,
    message: String,
}

impl Summary {
    fn reject(&mut self, line: u64, message: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(LineError { line, message });
        } else {
            self.errors_truncated = true;
        }
    }
}

struct Ingestion {
    stores: RequestStores,
    known: KnownSymbols,
    now: i64,
    batch: Vec<TickRow>,
    pool_batch: Vec<PoolMetricRow>,
    latest: Latest,
    summary: Summary,
    line: u64,
    /// Lines whose ticks are stored (all lines up to the last flush), and how many of
    /// those were refused.
    committed: u64,
    committed_rejected: u64,
    idempotency: Option<Idempotency>,
}

/// The request's idempotency key, and what an earlier attempt under it already stored.
struct Idempotency {
    owner: String,
    key: String,
    /// Lines an earlier attempt stored: skipped by this one.
    skip: u64,
    lease_ms: u64,
    renewed: std::time::Instant,
}

/// Longest `Idempotency-Key` accepted.
const MAX_KEY: usize = 128;

impl Ingestion {
    fn line(&mut self, bytes: &[u8]) {
        self.line += 1;
        if self
            .idempotency
            .as_ref()
            .is_some_and(|i| self.line <= i.skip)
        {
            return;
        }
        match ingest::parse_line(bytes, &self.known, self.now) {
            None => {}
            Some(Err(message)) => self.summary.reject(self.line, message),
            Some(Ok(Sample::Tick(row))) => self.batch.push(row),
            Some(Ok(Sample::Pool(row))) => self.pool_batch.push(row),
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if !self.batch.is_empty() {
            let rows = std::mem::take(&mut self.batch);
            self.summary.accepted += ingest::write(&self.stores, &rows, &mut self.latest).await?;
        }
        if !self.pool_batch.is_empty() {
            let rows = std::mem::take(&mut self.pool_batch);
            self.stores.clickhouse().insert_pool_metrics(&rows).await?;
            self.summary.accepted += rows.len() as u64;
        }
        self.committed = self.line;
        self.committed_rejected = self.summary.rejected;
        self.record("running", None).await
    }

    /// Renews the key's lease when half of it has passed (a slow body between flushes).
    async fn keep_lease(&mut self) -> Result<(), Error> {
        let due = self
            .idempotency
            .as_ref()
            .is_some_and(|i| i.renewed.elapsed().as_millis() as u64 > i.lease_ms / 2);
        if due {
            self.record("running", None).await?;
        }
        Ok(())
    }

    /// Records how far this attempt got under its idempotency key, if it has one.
    async fn record(&mut self, state: &str, summary: Option<String>) -> Result<(), Error> {
        let Some(idem) = self.idempotency.as_mut() else {
            return Ok(());
        };
        let progress = IngestProgress {
            state: state.into(),
            lines: self.committed,
            accepted: self.summary.accepted,
            rejected: self.committed_rejected,
            summary,
        };
        let redis = &self.stores.redis();
        redis
            .record_ingest_key(&idem.owner, &idem.key, &progress, idem.lease_ms)
            .await?;
        idem.renewed = std::time::Instant::now();
        Ok(())
    }

    /// Reads the body: Ok when all of it was taken in, else the response that ends it.
    async fn consume(
        &mut self,
        body: Body,
        max: u64,
        idle: std::time::Duration,
    ) -> Result<(), Response> {
        let mut pending: Vec<u8> = Vec::new();
        let mut skipping = false;
        let mut received: u64 = 0;
        let mut stream = body.into_data_stream();
        loop {
            let chunk = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(_) => {
                    // What arrived in whole lines is kept; the client learns how much.
                    let _ = self.flush().await;
                    let _ = std::mem::take(&mut self.latest).publish(&self.stores).await;
                    return Err(body_timeout(idle, &self.summary));
                }
            };
            let chunk = chunk.map_err(|err| {
                bad_request(&format!("the body could not be read: {err}"), &self.summary)
            })?;
            received += chunk.len() as u64;
            if received > max {
                let _ = self.flush().await;
                let _ = std::mem::take(&mut self.latest).publish(&self.stores).await;
                return Err(too_large(max, Some(&self.summary)));
            }
            let mut rest: &[u8] = &chunk;
            while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
                if skipping {
                    skipping = false;
                } else {
                    pending.extend_from_slice(&rest[..newline]);
                    self.line(&pending);
                }
                pending.clear();
                rest = &rest[newline + 1..];
            }
            if !skipping {
                pending.extend_from_slice(rest);
                if pending.len() > MAX_LINE {
                    // Count the line now and drop the rest of it as it arrives.
                    self.line += 1;
                    let line = self.line;
                    self.summary
                        .reject(line, format!("longer than {MAX_LINE} bytes"));
                    pending.clear();
                    skipping = true;
                }
            }
            let stored = if self.batch.len() + self.pool_batch.len() >= BATCH {
                self.flush().await
            } else {
                self.keep_lease().await
            };
            stored.map_err(|err| unavailable(&err, Some(&self.summary)))?;
        }
        if !skipping && !pending.is_empty() {
            let last = std::mem::take(&mut pending);
            self.line(&last);
        }
        self.flush()
            .await
            .map_err(|err| unavailable(&err, Some(&self.summary)))
    }
}

pub async fn prices(
    State(state): State<HttpState>,
    identity: Option<axum::Extension<super::guard::Identity>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let viewer = identity.map(|i| i.0).unwrap_or_default().viewer();
    let principal = match viewer.require_any(&[crate::auth::Role::Service]) {
        Ok(principal) => principal,
        Err(err) => {
            let status = match err {
                crate::error::Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            };
            return super::guard::error_response(status, err.code(), &err.to_string());
        }
    };
    let config = state.app.config();
    let max = config.ingest_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return too_large(max, None);
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key))
            if (1..=MAX_KEY).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(key.to_owned())
        }
        Some(_) => {
            return bad_request(
                &format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"),
                &Summary::default(),
            )
        }
    };
    let idle = std::time::Duration::from_millis(config.http_body_timeout_ms);
    let stores = RequestStores::new(state.app.stores());
    let mut summary = Summary::default();
    let idempotency = match key {
        None => None,
        Some(key) => {
            let owner = principal.subject.clone();
            // The lease outlasts the longest pause between chunks and a flush.
            let lease_ms = config.http_body_timeout_ms + 4 * config.store_timeout_ms;
            let redis = &stores.redis();
            let claimed = redis.claim_ingest_key(&owner, &key, lease_ms).await;
            match claimed {
                Err(err) => return unavailable(&err, None),
                Ok(p) if p.state == "done" => {
                    let body = p.summary.unwrap_or_else(|| "{}".into());
                    let mut response = (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response();
                    response.headers_mut().insert(
                        "idempotent-replayed",
                        header::HeaderValue::from_static("true"),
                    );
                    return response;
                }
                Ok(p) if p.state != "claimed" => {
                    let body = json!({
                        "error": "an ingest with this Idempotency-Key is still running; retry when it ends",
                        "code": "CONFLICT",
                        "accepted": 0,
                    });
                    return (StatusCode::CONFLICT, Json(body)).into_response();
                }
                Ok(p) => {
                    summary.accepted = p.accepted;
                    summary.rejected = p.rejected;
                    Some(Idempotency {
                        owner,
                        key,
                        skip: p.lines,
                        lease_ms,
                        renewed: std::time::Instant::now(),
                    })
                }
            }
        }
    };
    let known = match KnownSymbols::load(&stores).await {
        Ok(known) => known,
        Err(err) => return unavailable(&err, None),
    };
    let mut run = Ingestion {
        stores,
        known,
        now: ingest::now(),
        batch: Vec::new(),
        pool_batch: Vec::new(),
        latest: Latest::default(),
        summary,
        line: 0,
        committed: 0,
        committed_rejected: 0,
        idempotency,
    };
    if let Some(idem) = &run.idempotency {
        run.committed = idem.skip;
        run.committed_rejected = run.summary.rejected;
    }
    if let Err(response) = run.consume(body, max, idle).await {
        // A retry with the same key resumes after the lines stored so far.
        let _ = run.record("partial", None).await;
        return response;
    }
    if let Err(err) = std::mem::take(&mut run.latest).publish(&run.stores).await {
        // The ticks are stored; only the live price update failed.
        tracing::warn!(error = %err, "ticks stored but latest prices not updated");
    }
    let summary = serde_json::to_string(&run.summary).unwrap_or_default();
    if let Err(err) = run.record("done", Some(summary.clone())).await {
        tracing::warn!(error = %err, "ingest stored, but its idempotency key not marked done");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        summary,
    )
        .into_response()
}

fn body_timeout(idle: std::time::Duration, so_far: &Summary) -> Response {
    let body = json!({
        "error": format!("the body paused for more than {} ms", idle.as_millis()),
        "code": "REQUEST_TIMEOUT",
        "accepted": so_far.accepted,
    });
    (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response()
}

fn too_large(max: u64, so_far: Option<&Summary>) -> Response {
    let body = json!({
        "error": format!("the body is larger than {max} bytes"),
        "code": "PAYLOAD_TOO_LARGE",
        "accepted": so_far.map_or(0, |s| s.accepted),
    });
    (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
}

fn unavailable(err: &Error, so_far: Option<&Summary>) -> Response {
    let body = json!({ "error": err.to_string(), "code": err.code(), "accepted": so_far.map_or(0, |s| s.accepted) });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

fn bad_request(message: &str, so_far: &Summary) -> Response {
    let body = json!({ "error": message, "code": "BAD_REQUEST", "accepted": so_far.accepted });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}
