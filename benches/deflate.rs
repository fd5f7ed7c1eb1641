//! What permessage-deflate (RFC 7692) would buy and cost on Meridian's subscription
//! traffic, measured on the frames Meridian sends: graphql-transport-ws `next` messages of
//! `priceUpdated` and of a top-10 `leaderboardUpdated`.
//!
//! Meridian's websocket stack (axum 0.8 over tungstenite 0.29) does not implement the
//! extension, so this measures the compression itself, with the same raw DEFLATE and sync
//! flush the extension uses, in its two modes:
//! - no context takeover: each message compressed alone (no state kept per connection);
//! - context takeover: one compressor per connection, so repeated keys compress away,
//!   at the price of a compressor's state per subscriber.
//!
//! `cargo bench --bench deflate` (set `DEFLATE_MESSAGES` for more or fewer messages).

use std::time::Instant;

use flate2::{Compress, Compression, FlushCompress};

fn price_frame(i: usize) -> Vec<u8> {
    let price = 64_000.0 + (i as f64 * 7.31) % 900.0;
    format!(
        r#"{{"id":"{}","type":"next","payload":{{"data":{{"priceUpdated":{{"id":"Price:BTC","symbol":"BTC","price":{price:.2},"at":"2026-11-23T17:{:02}:{:02}Z"}}}}}}}}"#,
        uuid_like(i),
        (i / 60) % 60,
        i % 60
    )
    .into_bytes()
}

fn leaderboard_frame(i: usize) -> Vec<u8> {
    let entries: Vec<String> = (0..10)
        .map(|rank| {
            format!(
                r#"{{"rank":{},"score":{:.2},"user":{{"id":"{}","username":"trader_{:04}"}}}}"#,
                rank + 1,
                1_000_000.0 / (rank as f64 + 1.0) + i as f64,
                uuid_like(rank * 7919 + 13),
                (rank * 37 + i) % 1000
            )
        })
        .collect();
    format!(
        r#"{{"id":"{}","type":"next","payload":{{"data":{{"leaderboardUpdated":{{"id":"Leaderboard:volume:10","entries":[{}]}}}}}}}}"#,
        uuid_like(i),
        entries.join(",")
    )
    .into_bytes()
}

/// A stable UUID-shaped string (a client's subscription id, a user id).
fn uuid_like(n: usize) -> String {
    let x = (n as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Compresses `message` with `compressor` as permessage-deflate does (sync flush, the
/// final 00 00 ff ff dropped); returns the compressed length.
fn deflate(compressor: &mut Compress, message: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.reserve(message.len() + 64);
    let before = compressor.total_out();
    compressor
        .compress_vec(message, out, FlushCompress::Sync)
        .expect("deflate");
    let written = (compressor.total_out() - before) as usize;
    written.saturating_sub(4)
}

struct Figures {
    raw: usize,
    compressed: usize,
    nanos: u128,
}

fn run(frames: &[Vec<u8>], takeover: bool) -> Figures {
    let mut out = Vec::new();
    let mut shared = Compress::new(Compression::default(), false);
    let mut figures = Figures {
        raw: 0,
        compressed: 0,
        nanos: 0,
    };
    let started = Instant::now();
    for frame in frames {
        figures.raw += frame.len();
        figures.compressed += if takeover {
            deflate(&mut shared, frame, &mut out)
        } else {
            deflate(
                &mut Compress::new(Compression::default(), false),
                frame,
                &mut out,
            )
        };
    }
    figures.nanos = started.elapsed().as_nanos();
    figures
}

fn report(name: &str, frames: &[Vec<u8>]) {
    let n = frames.len() as f64;
    for (mode, takeover) in [("no context takeover", false), ("context takeover", true)] {
        let f = run(frames, takeover);
        println!(
            "{name:<22} {mode:<20} {:>6.0} B -> {:>6.0} B per message ({:>5.1}% of the bytes), {:>6.2} us CPU per message",
            f.raw as f64 / n,
            f.compressed as f64 / n,
            f.compressed as f64 * 100.0 / f.raw as f64,
            f.nanos as f64 / n / 1000.0,
        );
    }
}

fn main() {
    let messages: usize = std::env::var("DEFLATE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let prices: Vec<Vec<u8>> = (0..messages).map(price_frame).collect();
    let boards: Vec<Vec<u8>> = (0..messages / 10).map(leaderboard_frame).collect();
    println!(
        "permessage-deflate on Meridian's frames ({messages} price and {} leaderboard messages)",
        boards.len()
    );
    report("priceUpdated", &prices);
    report("leaderboardUpdated/10", &boards);
    // What a connection keeps for context takeover: miniz's compressor state, measured as
    // the growth of the heap for 1,000 of them.
    let before = rss_kib();
    let mut kept: Vec<Compress> = (0..1000)
        .map(|_| Compress::new(Compression::default(), false))
        .collect();
    let mut out = Vec::new();
    for compressor in &mut kept {
        deflate(compressor, &prices[0], &mut out);
    }
    let after = rss_kib();
    println!(
        "compressor state kept per connection (context takeover): {:.0} KiB (RSS growth over 1,000)",
        (after.saturating_sub(before)) as f64 / 1000.0
    );
    drop(kept);
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
