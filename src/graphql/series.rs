//! Time-series arguments shared by candles and activity: the interval enum, and the check
//! that a window is well-formed and asks for no more points than configured.

use async_graphql::Enum;
use chrono::{DateTime, Utc};

use crate::error::Error;

/// Bucket width of a time series.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    FiveMinutes,
    FifteenMinutes,
    Hour,
    Day,
}

impl Interval {
    pub fn seconds(self) -> u32 {
        match self {
            Interval::Minute => 60,
            Interval::FiveMinutes => 300,
            Interval::FifteenMinutes => 900,
            Interval::Hour => 3_600,
            Interval::Day => 86_400,
        }
    }
}

/// A checked window: [from, to) in unix seconds, bucketed by `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: u32,
    pub to: u32,
    pub bucket_secs: u32,
}

/// Refuses a window that is empty, outside ClickHouse's `DateTime` range, or would
/// return more than `max_points` buckets.
pub fn window(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    max_points: u32,
) -> Result<Window, Error> {
    if from >= to {
        return Err(Error::BadUserInput("`from` must be before `to`".into()));
    }
    let as_u32 = |t: DateTime<Utc>, name: &str| {
        u32::try_from(t.timestamp())
            .map_err(|_| Error::BadUserInput(format!("`{name}` must be between 1970 and 2106")))
    };
    let (from, to) = (as_u32(from, "from")?, as_u32(to, "to")?);
    let bucket_secs = interval.seconds();
    let points = u64::from(to - from).div_ceil(u64::from(bucket_secs));
    if points > u64::from(max_points) {
        return Err(Error::BadUserInput(format!(
            "this window holds {points} {interval:?} buckets; at most {max_points} may be asked for at once"
        )));
    }
    Ok(Window {
        from,
        to,
        bucket_secs,
    })
}

/// Unix seconds as a `DateTime`.
pub fn at(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_windows() {
        let t0 = at(1_700_000_000);
        let day = chrono::Duration::days(1);
        assert!(window(t0, t0, Interval::Minute, 1500).is_err(), "empty");
        assert!(
            window(t0 + day, t0, Interval::Minute, 1500).is_err(),
            "reversed"
        );
        assert!(
            window(t0, t0 + day, Interval::Minute, 1440).is_ok(),
            "exactly the cap"
        );
        assert!(
            window(t0, t0 + day * 2, Interval::Minute, 1500).is_err(),
            "2880 points"
        );
        assert!(
            window(at(-10), t0, Interval::Day, 100_000).is_err(),
            "before 1970"
        );
    }
}
