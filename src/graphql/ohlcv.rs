//! OHLCV rows as market-data providers publish them (per exchange and timeframe), ingested
//! by the service role and read beside the candles Meridian derives from ticks.

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    auth::Role,
    error::Error,
    graphql::{scope, series},
    ingest::{self, KnownSymbols, TickInput},
    loaders::OhlcvOf,
    store::clickhouse::OhlcvRow,
};

/// Most rows one `ingestOhlcv` call takes.
const MAX_ROWS: usize = 10_000;
/// 1970-01-05 was a Monday: weeks start this many seconds after the epoch, modulo a week.
const WEEK_OFFSET: i64 = 4 * 86_400;

/// The period an OHLCV row covers.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeframe {
    Minute,
    FiveMinutes,
    FifteenMinutes,
    Hour,
    FourHours,
    Day,
    /// ISO weeks, from Monday 00:00 UTC.
    Week,
}

impl Timeframe {
    fn as_str(self) -> &'static str {
        match self {
            Timeframe::Minute => "1m",
            Timeframe::FiveMinutes => "5m",
            Timeframe::FifteenMinutes => "15m",
            Timeframe::Hour => "1h",
            Timeframe::FourHours => "4h",
            Timeframe::Day => "1d",
            Timeframe::Week => "1w",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Timeframe::Minute => 60,
            Timeframe::FiveMinutes => 300,
            Timeframe::FifteenMinutes => 900,
            Timeframe::Hour => 3_600,
            Timeframe::FourHours => 14_400,
            Timeframe::Day => 86_400,
            Timeframe::Week => 604_800,
        }
    }

    /// Whether `start` begins a period.
    fn aligned(self, start: i64) -> bool {
        match self {
            Timeframe::Week => (start - WEEK_OFFSET).rem_euclid(self.seconds()) == 0,
            _ => start.rem_euclid(self.seconds()) == 0,
        }
    }
}

#[derive(InputObject)]
pub struct OhlcvInput {
    /// A listed asset.
    pub symbol: String,
    /// The venue: 1 to 50 of a-z, 0-9, `.`, `_` and `-` (lowercased).
    pub exchange: String,
    pub timeframe: Timeframe,
    /// The period's start, on its boundary (a week starts on Monday 00:00 UTC).
    pub start: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub source: Option<String>,
    pub attribution: Option<String>,
}

/// One ingested OHLCV row.
#[derive(SimpleObject)]
pub struct Ohlcv {
    pub exchange: String,
    pub start: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub source: String,
    pub attribution: String,
}

impl From<OhlcvRow> for Ohlcv {
    fn from(r: OhlcvRow) -> Self {
        Ohlcv {
            exchange: r.exchange,
            start: series::at(i64::from(r.ts)),
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            volume: r.volume,
            source: r.source,
            attribution: r.attribution,
        }
    }
}

#[derive(SimpleObject)]
pub struct OhlcvIngestResult {
    pub accepted: i32,
}

/// Checks one row: the symbol, venue, source and volume as a tick's (see
/// [`ingest::check`]), each price within a tick's bounds, low <= open, close <= high, and
/// the start on its timeframe's boundary.
fn check(field: &str, row: OhlcvInput, known: &KnownSymbols, now: i64) -> Result<OhlcvRow, Error> {
    let at = |name: &str| format!("{field}.{name}");
    let start = row.start.timestamp();
    let tick = ingest::check(
        &TickInput {
            symbol: row.symbol,
            price: row.close,
            volume: Some(row.volume),
            ts: Some(ingest::TickTime::Unix(start)),
            exchange: Some(row.exchange),
            source: row.source,
            attribution: row.attribution,
            market_cap: None,
            volume_24h: None,
            liquidity: None,
            participants: None,
        },
        known,
        now,
    )
    .map_err(|(message, name)| {
        let name = match name {
            "price" => "close",
            "ts" => "start",
            other => other,
        };
        Error::field(at(name), message)
    })?;
    for (name, price) in [("open", row.open), ("high", row.high), ("low", row.low)] {
        if !(price.is_finite() && (ingest::MIN_PRICE..=ingest::MAX_PRICE).contains(&price)) {
            return Err(Error::field(
                at(name),
                format!(
                    "must be a number from {} to {}",
                    ingest::MIN_PRICE,
                    ingest::MAX_PRICE
                ),
            ));
        }
    }
    if row.low > row.open.min(row.close) {
        return Err(Error::field(at("low"), "must not be above open or close"));
    }
    if row.high < row.open.max(row.close) {
        return Err(Error::field(at("high"), "must not be below open or close"));
    }
    if !row.timeframe.aligned(start) {
        return Err(Error::field(
            at("start"),
            format!("must start a {:?} period (UTC)", row.timeframe),
        ));
    }
    if tick.exchange.is_empty() {
        return Err(Error::field(at("exchange"), "is required"));
    }
    Ok(OhlcvRow {
        symbol: tick.symbol,
        exchange: tick.exchange,
        timeframe: row.timeframe.as_str().to_owned(),
        ts: tick.ts,
        open: row.open,
        high: row.high,
        low: row.low,
        close: row.close,
        volume: tick.volume,
        source: tick.source,
        attribution: tick.attribution,
        written_at: u32::try_from(now).unwrap_or(u32::MAX),
    })
}

#[derive(Default)]
pub struct OhlcvMutation;

#[Object]
impl OhlcvMutation {
    /// Writes up to 10,000 OHLCV rows, all or nothing (service role). A row sent again for
    /// the same asset, exchange, timeframe and start replaces the one kept.
    async fn ingest_ohlcv(
        &self,
        ctx: &Context<'_>,
        rows: Vec<OhlcvInput>,
    ) -> Result<OhlcvIngestResult> {
        scope::viewer(ctx).require_any(&[Role::Service])?;
        let stores = scope::stores(ctx)?;
        let known = KnownSymbols::load(stores).await?;
        let now = ingest::now();
        let checked = super::checked_batch("rows", rows, MAX_ROWS, |field, row| {
            check(&field, row, &known, now)
        })?;
        stores.clickhouse().insert_ohlcv(&checked).await?;
        Ok(OhlcvIngestResult {
            accepted: i32::try_from(checked.len()).unwrap_or(i32::MAX),
        })
    }
}

/// `Asset.ohlcv`: the ingested rows of one exchange and timeframe over [from, to).
pub async fn read(
    ctx: &Context<'_>,
    symbol: &str,
    exchange: &str,
    timeframe: Timeframe,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Ohlcv>> {
    let max = i64::from(scope::app(ctx)?.config().max_series_points);
    let (from, to) = (from.timestamp(), to.timestamp());
    if from >= to {
        return Err(Error::field("from", "must be before `to`").extend());
    }
    if (to - from) / timeframe.seconds() > max {
        return Err(Error::field(
            "to",
            format!("this window holds more than {max} {timeframe:?} rows"),
        )
        .extend());
    }
    let in_range = |t: i64, name: &str| {
        u32::try_from(t).map_err(|_| Error::field(name, "must be between 1970 and 2106").extend())
    };
    let rows = scope::loaders(ctx)?
        .load_one(OhlcvOf {
            symbol: symbol.to_owned(),
            exchange: exchange.trim().to_ascii_lowercase(),
            timeframe: timeframe.as_str(),
            from: in_range(from, "from")?,
            to: in_range(to, "to")?,
        })
        .await?
        .unwrap_or_default();
    Ok(rows.into_iter().map(Ohlcv::from).collect())
}
