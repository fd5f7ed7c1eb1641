//! The one error type of the application, and the `extensions.code` a client sees.

use async_graphql::ErrorExtensions;

use crate::store::StoreKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a request or a command can meet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadUserInput(String),
    /// Bad input in one named field (e.g. `input.address`).
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed to see or do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The store's circuit breaker is open: it failed repeatedly and is being probed.
    #[error("{store} is unavailable (failing fast while it recovers)")]
    CircuitOpen { store: StoreKind },
    #[error("the operation did not finish within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("{store} is unavailable")]
    StoreUnavailable {
        store: StoreKind,
        #[source]
        source: StoreError,
    },
    #[error("{store} did not answer within {timeout_ms} ms")]
    StoreTimeout { store: StoreKind, timeout_ms: u64 },
    /// The store answered, and refused this one request (its data, not the store's
    /// health): not counted toward the store's breaker.
    #[error("{store} refused the request")]
    StoreRejected {
        store: StoreKind,
        #[source]
        source: StoreError,
    },
    /// A computed number (a sum, a product of quantity and price) is not finite.
    #[error("{0}")]
    NumericOverflow(String),
    #[error("{0}")]
    SlowConsumer(String),
    /// A resume point older than what is kept (`eventRecorded(after:)`).
    #[error("{0}")]
    CursorExpired(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The driver error behind a [`Error::StoreUnavailable`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error(transparent)]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The store whose driver produced this error.
    pub fn store(&self) -> StoreKind {
        match self {
            StoreError::Postgres(_) | StoreError::Migrate(_) => StoreKind::Postgres,
            StoreError::Redis(_) => StoreKind::Redis,
            StoreError::ClickHouse(_) => StoreKind::ClickHouse,
            StoreError::Mongo(_) => StoreKind::Mongo,
        }
    }
}

impl StoreError {
    /// Whether this failure says the store is unavailable (unreachable, timed out, shutting
    /// down, out of resources) rather than refusing one request's data. Only these count
    /// toward a circuit breaker, so that no single request can open one for everyone.
    pub fn is_availability(&self) -> bool {
        match self {
            StoreError::Postgres(err)
            | StoreError::Migrate(sqlx::migrate::MigrateError::Execute(err)) => {
                match err {
                    sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_) => true,
                    // Connection exceptions (08), insufficient resources (53), operator
                    // intervention such as shutdown (57), system errors (58).
                    sqlx::Error::Database(db) => db
                        .code()
                        .is_some_and(|c| ["08", "53", "57", "58"].iter().any(|p| c.starts_with(p))),
                    _ => false,
                }
            }
            StoreError::Migrate(_) => false,
            StoreError::Redis(err) => {
                err.is_io_error()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || err.is_timeout()
                    || err.is_cluster_error()
                    || matches!(
                        err.kind(),
                        redis::ErrorKind::Io | redis::ErrorKind::ClusterConnectionNotFound
                    )
            }
            StoreError::ClickHouse(err) => matches!(
                err,
                clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut
            ),
            StoreError::Mongo(err) => matches!(
                *err.kind,
                mongodb::error::ErrorKind::Io(_)
                    | mongodb::error::ErrorKind::ServerSelection { .. }
                    | mongodb::error::ErrorKind::ConnectionPoolCleared { .. }
                    | mongodb::error::ErrorKind::DnsResolve { .. }
                    | mongodb::error::ErrorKind::Shutdown
            ),
        }
    }
}

impl From<StoreError> for Error {
    fn from(source: StoreError) -> Self {
        let store = source.store();
        if source.is_availability() {
            Error::StoreUnavailable { store, source }
        } else {
            Error::StoreRejected { store, source }
        }
    }
}

macro_rules! store_error_into_error {
    ($($driver:ty),*) => {$(
        impl From<$driver> for Error {
            fn from(err: $driver) -> Self {
                StoreError::from(err).into()
            }
        }
    )*};
}
store_error_into_error!(
    sqlx::Error,
    redis::RedisError,
    clickhouse::error::Error,
    mongodb::error::Error,
    sqlx::migrate::MigrateError
);

impl Error {
    /// Bad input in `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `value`, or NUMERIC_OVERFLOW when it is not finite: a `Float` the server computed
    /// is an error when it cannot be represented, never a silent null.
    pub fn finite(value: f64, what: &str) -> Result<f64, Error> {
        if value.is_finite() {
            Ok(value)
        } else {
            Err(Error::NumericOverflow(format!(
                "{what} is too large to represent as a Float"
            )))
        }
    }

    /// Whether this error says a store is unavailable: what a circuit breaker counts.
    pub fn is_store_outage(&self) -> bool {
        matches!(
            self,
            Error::StoreUnavailable { .. } | Error::StoreTimeout { .. }
        )
    }

    /// The store a store failure is about.
    pub fn store(&self) -> Option<StoreKind> {
        match self {
            Error::StoreUnavailable { store, .. }
            | Error::StoreRejected { store, .. }
            | Error::StoreTimeout { store, .. }
            | Error::CircuitOpen { store } => Some(*store),
            _ => None,
        }
    }

    /// The machine-readable code a client sees in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadUserInput(_) | Error::InvalidField { .. } => "BAD_USER_INPUT",
            Error::Conflict { .. } => "CONFLICT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Timeout { .. } => "TIMEOUT",
            Error::SlowConsumer(_) => "SLOW_CONSUMER",
            Error::CursorExpired(_) => "CURSOR_EXPIRED",
            Error::StoreUnavailable { .. }
            | Error::StoreTimeout { .. }
            | Error::CircuitOpen { .. } => "STORE_UNAVAILABLE",
            Error::NumericOverflow(_) => "NUMERIC_OVERFLOW",
            Error::StoreRejected { .. } | Error::Internal(_) => "INTERNAL",
        }
    }
}

impl Error {
    /// Logs what the client is not told: driver and internal details.
    fn log(&self) {
        match self {
            Error::StoreUnavailable { source, .. } => {
                tracing::warn!(error = %source, "{self}");
            }
            Error::StoreRejected { source, .. } => {
                tracing::error!(error = %source, "{self}");
            }
            Error::Internal(err) => tracing::error!(error = format!("{err:#}"), "internal error"),
            _ => {}
        }
    }

    /// Writes `extensions.code` and the error's details.
    fn fill(&self, ext: &mut async_graphql::ErrorExtensionValues) {
        ext.set("code", self.code());
        match self {
            Error::StoreUnavailable { store, .. } | Error::StoreTimeout { store, .. } => {
                ext.set("store", store.as_str());
            }
            Error::CircuitOpen { store } => {
                ext.set("store", store.as_str());
                ext.set("circuit", "open");
            }
            Error::RateLimited { retry_after_secs } => {
                ext.set("retryAfter", *retry_after_secs);
            }
            Error::InvalidField { field, .. } | Error::Conflict { field, .. } => {
                ext.set("field", field.as_str());
            }
            _ => {}
        }
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        // Driver and internal details go to the log, never to the client.
        self.log();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| self.fill(ext))
    }
}

/// The one place a resolver's failure gets its `extensions.code`: every error of a
/// response that came from a [`Error`] (returned with `?`, which keeps it as the GraphQL
/// error's source), or from one shared by a whole dataloader batch (`Arc<Error>`), gets its
/// code and details here, and each distinct failure is logged once, however many fields
/// it failed. Errors that already carry a code keep it.
pub fn code_errors(errors: &mut [async_graphql::ServerError]) {
    let mut logged: Vec<*const Error> = Vec::new();
    for err in errors {
        let Some(any) = err.source.clone() else {
            continue;
        };
        let source = any
            .downcast_ref::<Error>()
            .or_else(|| any.downcast_ref::<std::sync::Arc<Error>>().map(|e| &**e));
        let Some(source) = source else { continue };
        let seen = source as *const Error;
        if !logged.contains(&seen) {
            source.log();
            logged.push(seen);
        }
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            source.fill(ext);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn server_error(err: async_graphql::Error) -> async_graphql::ServerError {
        err.into_server_error(Default::default())
    }

    fn code(err: &async_graphql::ServerError) -> Option<String> {
        match err.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[test]
    fn errors_returned_with_question_mark_get_their_codes_in_one_place() {
        let shared = Arc::new(Error::StoreTimeout {
            store: StoreKind::Redis,
            timeout_ms: 5,
        });
        let mut errors = vec![
            // What `?` makes of a batch failure shared by two fields, and of a plain one.
            server_error(async_graphql::Error::from(shared.clone())),
            server_error(async_graphql::Error::from(shared)),
            server_error(async_graphql::Error::from(Error::field(
                "input.symbol",
                "is bad",
            ))),
            // One that already has a code keeps it; one from elsewhere is left alone.
            server_error(Error::NotFound("x".into()).extend()),
            server_error(async_graphql::Error::new("not ours")),
        ];
        code_errors(&mut errors);
        let codes: Vec<Option<String>> = errors.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                Some("STORE_UNAVAILABLE".into()),
                Some("STORE_UNAVAILABLE".into()),
                Some("BAD_USER_INPUT".into()),
                Some("NOT_FOUND".into()),
                None,
            ]
        );
        let store = errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("store").cloned());
        assert_eq!(store, Some(async_graphql::Value::from("redis")));
        let field = errors[2]
            .extensions
            .as_ref()
            .and_then(|e| e.get("field").cloned());
        assert_eq!(field, Some(async_graphql::Value::from("input.symbol")));
    }
}
