//! Per-operation scope: every GraphQL operation (over HTTP or a websocket) gets its own
//! [`RequestStores`] (which count round trips) and its own [`Loaders`]. When the request
//! asked for a trace, the response gets `extensions.meridian.roundTrips`.

use std::sync::Arc;

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest},
    Context, Request, Response, ServerResult, Value,
};
use uuid::Uuid;

use crate::{
    app::AppState,
    error::Error,
    loaders::{self, BatchQueue, Loaders},
    store::RequestStores,
};

/// Present in a request's data when the client sent `x-meridian-trace: 1`.
#[derive(Debug, Clone, Copy)]
pub struct TraceRequested;

/// Who the request says it is (until authentication exists: the `x-meridian-user` header).
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The raw header value, if any.
    pub claimed: Option<String>,
}

impl Viewer {
    /// The viewer's user id: UNAUTHENTICATED without one, BAD_USER_INPUT when malformed.
    pub fn user_id(&self) -> Result<Uuid, Error> {
        let claimed = self.claimed.as_deref().ok_or_else(|| {
            Error::Unauthenticated("`me` needs the x-meridian-user header (a user id)".into())
        })?;
        claimed
            .trim()
            .parse()
            .map_err(|_| Error::BadUserInput("x-meridian-user is not a user id (UUID)".into()))
    }
}

/// Installs the scope of each operation.
pub struct Scope {
    pub state: AppState,
}

impl ExtensionFactory for Scope {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopeExtension {
            state: self.state.clone(),
        })
    }
}

struct ScopeExtension {
    state: AppState,
}

#[async_trait::async_trait]
impl Extension for ScopeExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let stores = RequestStores::new(self.state.stores().clone());
        let queue = BatchQueue::default();
        let loaders = loaders::for_request(
            stores.clone(),
            self.state.config().stats_cache_ttl_secs,
            queue.clone(),
        );
        next.run(ctx, request.data(stores).data(loaders).data(queue))
            .await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = match ctx.data_opt::<BatchQueue>() {
            Some(queue) => queue.drive(next.run(ctx, operation_name)).await,
            None => next.run(ctx, operation_name).await,
        };
        if ctx.data_opt::<TraceRequested>().is_some() {
            if let Some(stores) = ctx.data_opt::<RequestStores>() {
                let trace = serde_json::json!({ "roundTrips": stores.trips.to_json() });
                if let Ok(value) = Value::from_json(trace) {
                    response.extensions.insert("meridian".into(), value);
                }
            }
        }
        response
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
    use crate::loaders::*;
    if let Some(l) = ctx.data_opt::<Loaders>() {
        l.clear::<UserById>();
        l.clear::<UserByAddress>();
        l.clear::<HoldingsOf>();
        l.clear::<AssetBySymbol>();
        l.clear::<ProfileOf>();
        l.clear::<MetadataOf>();
        l.clear::<PriceOf>();
        l.clear::<CandlesOf>();
        l.clear::<Stats24hOf>();
        l.clear::<ActivityOf>();
        l.clear::<StandingOf>();
        l.clear::<TradesOf>();
    }
}
