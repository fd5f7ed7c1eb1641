//! NDJSON price ticks: any bytes, line by line. A line is refused with a message or
//! gives a tick that passed every check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::ingest::{self, parse_line, KnownSymbols};

fuzz_target!(|data: &[u8]| {
    let known = KnownSymbols::of(["BTC".to_owned(), "ETH".to_owned()]);
    let now = 1_800_000_000;
    for line in data.split(|b| *b == b'\n') {
        if let Some(Ok(tick)) = parse_line(line, &known, now) {
            assert!(tick.symbol == "BTC" || tick.symbol == "ETH");
            assert!((ingest::MIN_PRICE..=ingest::MAX_PRICE).contains(&tick.price));
            assert!((0.0..=ingest::MAX_VOLUME).contains(&tick.volume));
            assert!(i64::from(tick.ts) <= now + 300);
        }
    }
});
