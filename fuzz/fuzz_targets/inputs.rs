//! Everything else Meridian checks itself: symbols and addresses, time windows, wallet
//! signatures, and the lexical guard in front of the GraphQL parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::{
    auth::wallet,
    graphql::{guard, normalise_address, normalise_symbol, series},
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(symbol) = normalise_symbol(&text) {
        let symbol = symbol.as_str();
        assert!(!symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    if let Ok(address) = normalise_address(&text) {
        assert_eq!(address.as_str().len(), 42);
        assert!(address.as_str().starts_with("0x"));
    }
    if data.len() >= 17 {
        let n = |i: usize| i64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
        let (from, to) = (n(0) % 5_000_000_000, n(8) % 5_000_000_000);
        if let (Some(from), Some(to)) = (
            chrono::DateTime::from_timestamp(from, 0),
            chrono::DateTime::from_timestamp(to, 0),
        ) {
            let interval = match data[16] % 5 {
                0 => series::Interval::Minute,
                1 => series::Interval::FiveMinutes,
                2 => series::Interval::FifteenMinutes,
                3 => series::Interval::Hour,
                _ => series::Interval::Day,
            };
            if let Ok(w) = series::window(from, to, interval, 1500) {
                assert!(w.from < w.to);
                assert!(u64::from(w.to - w.from).div_ceil(u64::from(w.bucket_secs)) <= 1500);
            }
        }
    }
    let _ = wallet::recover("Sign in to Meridian", &text);
    // The guard bounds what reaches the parser; what it lets through parses or fails,
    // without panicking or recursing without bound.
    let scan = guard::scan(&text, 5_000, 48);
    if scan.tokens <= 5_000 && scan.max_nesting <= 48 {
        if let Ok(doc) = async_graphql::parser::parse_query(&*text) {
            let _ = guard::count_aliases(&doc);
        }
    }
});
