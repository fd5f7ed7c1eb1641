//! NDJSON price ticks and pool samples: any bytes, line by line. A line is refused with a
//! message or gives a tick or sample that passed every check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::ingest::{self, parse_line, KnownSymbols, Sample};

fuzz_target!(|data: &[u8]| {
    let known = KnownSymbols::of(["BTC".to_owned(), "ETH".to_owned()])
        .with_pools(["curve-3pool".to_owned()]);
    let now = 1_800_000_000;
    for line in data.split(|b| *b == b'\n') {
        match parse_line(line, &known, now) {
            Some(Ok(Sample::Tick(tick))) => {
                assert!(tick.symbol == "BTC" || tick.symbol == "ETH");
                assert!((ingest::MIN_PRICE..=ingest::MAX_PRICE).contains(&tick.price));
                assert!((0.0..=ingest::MAX_VOLUME).contains(&tick.volume));
                assert!(i64::from(tick.ts) <= now + 300);
            }
            Some(Ok(Sample::Pool(sample))) => {
                assert_eq!(sample.pool, "curve-3pool");
                assert!((0.0..=ingest::MAX_TVL).contains(&sample.tvl));
                assert!((ingest::MIN_APY..=ingest::MAX_APY).contains(&sample.apy));
                assert!(i64::from(sample.ts) <= now + 300);
            }
            _ => {}
        }
    }
});
