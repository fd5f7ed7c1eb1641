//! Events: what a write announces, and the relay that carries outbox events from
//! PostgreSQL to ClickHouse, Redis leaderboards and pub/sub.

pub mod fanout;
pub mod relay;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::postgres::TradeRow;

/// Outbox kind of [`TradeEvent`].
pub const TRADE_RECORDED: &str = "trade_recorded";

/// A recorded trade, as the outbox carries it and pub/sub publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeEvent {
    pub event_id: Uuid,
    pub trade_id: Uuid,
    pub tx_hash: String,
    pub user_id: Uuid,
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub executed_at: DateTime<Utc>,
}

impl TradeEvent {
    pub fn new(event_id: Uuid, trade: &TradeRow) -> Self {
        TradeEvent {
            event_id,
            trade_id: trade.id,
            tx_hash: trade.tx_hash.clone(),
            user_id: trade.user_id,
            symbol: trade.symbol.clone(),
            side: trade.side.clone(),
            quantity: trade.quantity,
            price: trade.price,
            executed_at: trade.executed_at,
        }
    }

    pub fn notional(&self) -> f64 {
        self.quantity * self.price
    }
}
