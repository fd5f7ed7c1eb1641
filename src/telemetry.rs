//! Tracing set-up: human-readable text by default, JSON lines when asked, and
//! OpenTelemetry spans exported over OTLP/HTTP when `MERIDIAN_OTLP_ENDPOINT` is set.
//!
//! Spans: `request` (one per HTTP request, in [`crate::http`]), `graphql` (one per
//! operation) and `store` (one per round trip: store, op, rows), all at INFO. Without an
//! endpoint no OpenTelemetry layer is installed and only the request span is built (it
//! gives log lines their request and trace ids); the other two cost one atomic load.

use std::sync::OnceLock;

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
    Context,
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The installed OpenTelemetry pipeline, if any.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber. The log filter comes from `MERIDIAN_LOG` (e.g.
/// `meridian=debug,tower_http=info`) and defaults to `info`. Logs go to stderr so that
/// commands like `meridian schema` keep stdout clean. With `otlp_endpoint` (a collector's
/// OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`), Meridian's spans are also exported
/// to `<endpoint>/v1/traces`, as protobuf unless `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let Some(endpoint) = otlp_endpoint.filter(|e| !e.is_empty()) else {
        // Without export, the plain fmt subscriber: the cheapest stack that logs. A second
        // init (tests) keeps the first subscriber.
        let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let _ = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        return Ok(());
    };
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = provider(endpoint)?;
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "meridian");
    let _ = PROVIDER.set(provider);
    // One filter for both layers: the spans exported are those MERIDIAN_LOG enables (the
    // default `info` has them all).
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Ok(())
}

fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("meridian")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Sends the spans still queued (at shutdown).
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(err) = provider.shutdown() {
            tracing::warn!(error = %err, "could not flush the last spans");
        }
    }
}

/// Whether spans are exported.
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Joins `span` to the client's W3C trace (its `traceparent` header), and returns the
/// trace id every log line of the request carries: the exported span's own.
pub fn join_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) -> String {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // Fails only when the span is disabled, and then it has no trace to join.
    let _ = span.set_parent(parent);
    let context: Context = span.context();
    context.span().span_context().trace_id().to_string()
}

/// Without export, the trace id of a request's log lines: the client's `traceparent`'s,
/// else a new random one.
pub fn trace_id_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed
/// and not all zeros.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn traceparent_gives_its_trace_id_when_well_formed() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(&format!("00-{id}-00f067aa0ba902b7-01")), Some(id));
        assert_eq!(
            trace_id(&format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32))),
            None
        );
        assert_eq!(trace_id(&format!("ff-{id}-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id("00-short-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id("garbage"), None);
    }

    #[test]
    fn without_export_a_request_gets_the_clients_trace_id_or_a_new_one() {
        let mut headers = axum::http::HeaderMap::new();
        let fresh = super::trace_id_of(&headers);
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, super::trace_id_of(&headers));
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        headers.insert(
            "traceparent",
            format!("00-{id}-00f067aa0ba902b7-01").parse().unwrap(),
        );
        assert_eq!(super::trace_id_of(&headers), id);
    }
}
