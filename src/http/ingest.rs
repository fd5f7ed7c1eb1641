//! `POST /ingest/prices`: NDJSON price ticks, one JSON object per line
//! (`{"symbol":"BTC","price":64000.5,"volume":1.2,"ts":1790000000}`), streamed and written
//! to ClickHouse in batches. Good lines are ingested even when others are bad; the
//! response counts both and names the bad lines by number.
//!
//! A body over `MERIDIAN_INGEST_MAX_BYTES` gets 413: at once when its Content-Length says
//! so (nothing is read), or when the stream passes the limit, in which case the batches
//! written before that point stay ingested and the response says how many.

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
    ingest::{self, KnownSymbols, Latest},
    store::{clickhouse::TickRow, RequestStores, StoreKind},
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
    latest: Latest,
    summary: Summary,
    line: u64,
}

impl Ingestion {
    fn line(&mut self, bytes: &[u8]) {
        self.line += 1;
        match ingest::parse_line(bytes, &self.known, self.now) {
            None => {}
            Some(Err(message)) => self.summary.reject(self.line, message),
            Some(Ok(row)) => {
                self.latest.observe(&row);
                self.batch.push(row);
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.batch);
        let count = rows.len() as u64;
        let ch = &self.stores.clickhouse;
        self.stores
            .call(
                StoreKind::ClickHouse,
                "insert_ticks",
                ch.insert_ticks(rows.into_iter(), |_| {}),
            )
            .await?;
        self.summary.accepted += count;
        Ok(())
    }
}

pub async fn prices(
    State(state): State<HttpState>,
    identity: Option<axum::Extension<super::guard::Identity>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let viewer = identity.map(|i| i.0).unwrap_or_default().viewer();
    if let Err(err) = viewer.require_any(&[crate::auth::Role::Service]) {
        let status = match err {
            crate::error::Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        return super::guard::error_response(status, err.code(), &err.to_string());
    }
    let max = state.app.config().ingest_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return too_large(max, None);
    }
    let stores = RequestStores::new(state.app.stores().clone());
    let known = match KnownSymbols::load(&stores).await {
        Ok(known) => known,
        Err(err) => return unavailable(&err, None),
    };
    let mut run = Ingestion {
        stores,
        known,
        now: ingest::now(),
        batch: Vec::new(),
        latest: Latest::default(),
        summary: Summary::default(),
        line: 0,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                return bad_request(&format!("the body could not be read: {err}"), &run.summary)
            }
        };
        received += chunk.len() as u64;
        if received > max {
            let _ = run.flush().await;
            let _ = std::mem::take(&mut run.latest).publish(&run.stores).await;
            return too_large(max, Some(&run.summary));
        }
        let mut rest: &[u8] = &chunk;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            if skipping {
                skipping = false;
            } else {
                pending.extend_from_slice(&rest[..newline]);
                run.line(&pending);
            }
            pending.clear();
            rest = &rest[newline + 1..];
        }
        if !skipping {
            pending.extend_from_slice(rest);
            if pending.len() > MAX_LINE {
                // Count the line now and drop the rest of it as it arrives.
                run.line += 1;
                let line = run.line;
                run.summary
                    .reject(line, format!("longer than {MAX_LINE} bytes"));
                pending.clear();
                skipping = true;
            }
        }
        if run.batch.len() >= BATCH {
            if let Err(err) = run.flush().await {
                return unavailable(&err, Some(&run.summary));
            }
        }
    }
    if !skipping && !pending.is_empty() {
        let last = std::mem::take(&mut pending);
        run.line(&last);
    }
    if let Err(err) = run.flush().await {
        return unavailable(&err, Some(&run.summary));
    }
    if let Err(err) = std::mem::take(&mut run.latest).publish(&run.stores).await {
        // The ticks are stored; only the live price update failed.
        tracing::warn!(error = %err, "ticks stored but latest prices not updated");
    }
    (StatusCode::OK, Json(run.summary)).into_response()
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
