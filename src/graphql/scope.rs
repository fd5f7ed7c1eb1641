//! Per-operation scope: every GraphQL operation (over HTTP or a websocket) passes the
//! [guard](super::guard), then gets its own [`RequestStores`] (which count round trips) and
//! its own [`Loaders`], and runs under the request deadline. When the request asked for a
//! trace, the response gets `extensions.meridian.roundTrips`.

use std::sync::Arc;

use async_graphql::{
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationType},
    Context, ErrorExtensions, Request, Response, ServerError, ServerResult, ValidationResult,
    Value, Variables,
};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::{Principal, Role},
    error::Error,
    loaders::{self, BatchQueue, Loaders},
    store::RequestStores,
};

/// Present in a request's data when the client sent `x-meridian-trace: 1`.
#[derive(Debug, Clone, Copy)]
pub struct TraceRequested;

/// Who is asking: the authenticated principal (if any) and the client's address.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub principal: Option<Principal>,
    /// The client IP the rate limits use.
    pub ip: Option<std::net::IpAddr>,
}

impl Viewer {
    /// The principal: UNAUTHENTICATED without one.
    pub fn principal(&self) -> Result<&Principal, Error> {
        self.principal.as_ref().ok_or_else(|| {
            Error::Unauthenticated(
                "this needs credentials: send `Authorization: Bearer <token>`".into(),
            )
        })
    }

    /// The viewer's own user id: UNAUTHENTICATED without credentials, FORBIDDEN for a
    /// principal that is not a user.
    pub fn user_id(&self) -> Result<Uuid, Error> {
        self.principal()?
            .user_id
            .ok_or_else(|| Error::Forbidden("the principal is not a user".into()))
    }

    /// Whether the viewer may see `owner`'s private data: the owner or an admin.
    pub fn may_see(&self, owner: Uuid) -> Result<(), Error> {
        let principal = self.principal()?;
        if principal.is_admin() || principal.user_id == Some(owner) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only this user or an admin may see this field".into(),
            ))
        }
    }

    /// Whether the viewer may act as `owner`: the owner, an admin, or (when `service`
    /// is allowed) a service.
    pub fn may_act_for(&self, owner: Uuid, service: bool) -> Result<(), Error> {
        let principal = self.principal()?;
        if principal.is_admin()
            || principal.user_id == Some(owner)
            || (service && principal.has(Role::Service))
        {
            Ok(())
        } else {
            Err(Error::Forbidden("you may only do this for yourself".into()))
        }
    }

    /// FORBIDDEN unless the viewer holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<&Principal, Error> {
        let principal = self.principal()?;
        if roles.iter().any(|r| principal.has(*r)) {
            Ok(principal)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::Forbidden(format!(
                "this needs the {} role",
                names.join(" or ")
            )))
        }
    }
}

/// The operation's viewer (anonymous when the transport set none).
pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    static ANONYMOUS: Viewer = Viewer {
        principal: None,
        ip: None,
    };
    ctx.data_opt::<Viewer>().unwrap_or(&ANONYMOUS)
}

/// Installs the scope of each operation.
pub struct Scope {
    pub state: AppState,
    /// The schema's field types, for placing the nulls of field errors.
    pub types: Arc<std::sync::OnceLock<super::nulls::TypeMap>>,
}

impl ExtensionFactory for Scope {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopeExtension {
            state: self.state.clone(),
            guard: super::guard::Guard::new(self.state.clone()),
            types: self.types.clone(),
            query: Default::default(),
            parsed: Default::default(),
            mutations: Default::default(),
            stores: RequestStores::new(self.state.stores()),
            queue: BatchQueue::default(),
        })
    }
}

/// The operation's one extension: the guard's checks, then the scope.
struct ScopeExtension {
    state: AppState,
    guard: super::guard::Guard,
    types: Arc<std::sync::OnceLock<super::nulls::TypeMap>>,
    /// The document's text, kept for placing the nulls of field errors.
    query: std::sync::Mutex<Option<String>>,
    /// The parsed document, when sent without variables: its validation is kept with it.
    parsed: std::sync::Mutex<Option<Arc<super::guard::Parsed>>>,
    /// The names of the document's mutations (`None`: an anonymous one), kept only when
    /// a read replica is configured: mutations read and write on the primary.
    mutations: std::sync::Mutex<Vec<Option<String>>>,
    /// The operation's stores and batch queue. Made with the extension (one per
    /// operation) rather than in `prepare_request`, because the subscription hook runs
    /// before `prepare_request` and must already hold them.
    stores: RequestStores,
    queue: BatchQueue,
}

#[async_trait::async_trait]
impl Extension for ScopeExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = self.guard.persisted(request).await?;
        let loaders = loaders::for_request(
            self.stores.clone(),
            self.state.config().stats_cache_ttl_secs,
            self.queue.clone(),
        );
        next.run(ctx, request.data(self.stores.clone()).data(loaders))
            .await
    }

    /// The guard parses and checks the document itself; `next` (the engine's parser and
    /// its spread-following checks) is deliberately not run.
    async fn parse_query(
        &self,
        _ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let parsed = self.guard.parse(query)?;
        let doc = parsed.doc.clone();
        if let Ok(mut kept) = self.query.lock() {
            *kept = Some(query.to_owned());
        }
        if variables.is_empty() {
            if let Ok(mut kept) = self.parsed.lock() {
                *kept = Some(parsed);
            }
        }
        if self.stores.postgres().has_replica() {
            let names = doc
                .operations
                .iter()
                .filter(|(_, op)| op.node.ty == OperationType::Mutation)
                .map(|(name, _)| name.map(|n| n.to_string()));
            if let Ok(mut kept) = self.mutations.lock() {
                kept.extend(names);
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // A document sent without variables that passed before passes again.
        let parsed = self.parsed.lock().ok().and_then(|mut p| p.take());
        if let Some(result) = parsed.as_ref().and_then(|p| p.validated()) {
            return Ok(result);
        }
        let result = self.guard.validate(ctx, next).await.map_err(|mut errors| {
            if let Some(query) = self.query.lock().ok().and_then(|q| q.clone()) {
                super::messages::name_variables(&query, &mut errors);
            }
            errors
        })?;
        if let Some(parsed) = parsed {
            parsed.remember_validation(result);
        }
        Ok(result)
    }

    /// Subscription events bypass `execute`: their batches are driven, their errors
    /// coded and (when asked for) their round trips reported here, event by event.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, Response> {
        use futures::StreamExt;
        // An event was committed a moment ago: its data is read where it surely is.
        self.stores.postgres().pin_primary();
        // This hook runs before the request is prepared: only the session's data (where a
        // websocket opened with the trace header puts `TraceRequested`) is there yet.
        let stream = self.queue.drive_stream(next.run(ctx, stream));
        let trips = ctx
            .data_opt::<TraceRequested>()
            .map(|_| (self.stores.trips.clone(), self.stores.trips.snapshot()));
        stream
            .scan(trips, |trips, mut response| {
                crate::error::code_errors(&mut response.errors);
                if let Some((counter, before)) = trips {
                    // This event's own round trips: the subscription's count less the
                    // count at the previous event.
                    let spent = counter.to_json_since(*before);
                    *before = counter.snapshot();
                    let meridian = serde_json::json!({ "roundTrips": spent });
                    if let Ok(value) = Value::from_json(meridian) {
                        response.extensions.insert("meridian".into(), value);
                    }
                }
                futures::future::ready(Some(response))
            })
            .boxed()
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let writer = self.route_reads(ctx, operation_name).await;
        let run = self.queue.drive(next.run(ctx, operation_name));
        let timeout_ms = self.state.config().security.request_timeout_ms;
        let started = std::time::Instant::now();
        // Only when spans are exported (see `Stores::call`).
        let span = if crate::telemetry::exporting() {
            tracing::info_span!(
                "graphql",
                otel.name = format!("graphql {}", operation_name.unwrap_or("anonymous")),
                operation = operation_name.unwrap_or_default(),
                errors = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        let run = tracing::Instrument::instrument(run, span.clone());
        let mut response =
            match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), run).await {
                Ok(response) => response,
                Err(_) => {
                    let err = Error::Timeout { timeout_ms }.extend();
                    Response::from_errors(vec![err.into_server_error(Default::default())])
                }
            };
        self.state
            .metrics()
            .observe_operation(operation_name, started.elapsed());
        crate::error::code_errors(&mut response.errors);
        if let Some(subject) = writer {
            self.remember_write(&subject).await;
        }
        span.record("errors", response.errors.len());
        describe_schema(&mut response);
        if response.errors.iter().any(|e| !e.path.is_empty()) {
            let query = self.query.lock().ok().and_then(|mut q| q.take());
            if let (Some(types), Some(query)) = (self.types.get(), query) {
                super::nulls::place_nulls(&mut response, types, &query, operation_name);
            }
        }
        let mut meridian = serde_json::Map::new();
        if let Some(stores) = ctx.data_opt::<RequestStores>() {
            if ctx.data_opt::<TraceRequested>().is_some() {
                meridian.insert("roundTrips".into(), stores.trips.to_json());
            }
            if let Some(stale) = stores.degraded.to_json() {
                meridian.insert("stale".into(), stale);
            }
        }
        if !meridian.is_empty() {
            if let Ok(value) = Value::from_json(serde_json::Value::Object(meridian)) {
                response.extensions.insert("meridian".into(), value);
            }
        }
        response
    }
}

impl ScopeExtension {
    /// With a read replica: a mutation reads from the primary, and so does a query by a
    /// principal whose recent write the replica has not replayed yet (read-your-writes,
    /// across instances: the position is kept in Redis). Returns the subject of a
    /// mutation's principal, whose write [`Self::remember_write`] records afterwards.
    async fn route_reads(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
    ) -> Option<String> {
        let postgres = self.stores.postgres();
        if !postgres.has_replica() {
            return None;
        }
        let subject = ctx
            .data_opt::<Viewer>()
            .and_then(|v| v.principal.as_ref())
            .map(|p| p.subject.clone());
        let mutation = self.mutations.lock().is_ok_and(|names| {
            names
                .iter()
                .any(|name| operation_name.is_none() || name.as_deref() == operation_name)
        });
        if mutation {
            postgres.pin_primary();
            return subject;
        }
        if let Some(subject) = subject {
            match self.stores.redis().written_position(&subject).await {
                Ok(Some(lsn)) => postgres.read_after(lsn),
                Ok(None) => {}
                // Not knowing what the viewer wrote, read where every write is.
                Err(_) => postgres.pin_primary(),
            }
        }
        None
    }

    /// Records how far the primary's WAL had got when `subject`'s mutation finished.
    async fn remember_write(&self, subject: &str) {
        let remembered = match self.stores.postgres().wal_position().await {
            Ok(lsn) => self.stores.redis().mark_written(subject, lsn).await,
            Err(err) => Err(err),
        };
        if let Err(err) = remembered {
            tracing::warn!(error = %err, "could not record a write's WAL position; the writer may read from the replica before it has replayed the write");
        }
    }
}

/// Puts Meridian's own description in `__schema { description }` (the engine answers it
/// with a fixed text of its own).
fn describe_schema(response: &mut Response) {
    if let Value::Object(data) = &mut response.data {
        if let Some(Value::Object(schema)) = data.get_mut("__schema") {
            if let Some(description) = schema.get_mut("description") {
                *description = Value::String(super::SCHEMA_DESCRIPTION.into());
            }
        }
    }
}

/// The operation's loaders.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>()
}

/// The operation's stores (for calls that are not entity hops: pages, leaderboards).
pub fn stores<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestStores> {
    ctx.data::<RequestStores>()
}

/// The application state (configuration, cursor codec).
pub fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

/// Forgets what the operation's loaders cached, so that each event of a subscription
/// reads current values.
pub fn refresh(ctx: &Context<'_>) {
    if let Some(loaders) = ctx.data_opt::<crate::loaders::Loaders>() {
        crate::loaders::clear_all(loaders);
    }
}
