//! The pre-execution checks on a document: whatever the input, the work they do is
//! linear in its length. Steps are counted, not timed: each selection item of the text
//! is visited once however often its fragment is spread, so a fragment bomb costs no
//! more than its own characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::graphql::{guard, shape};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // What the guard lets reach the parser: bounded tokens and bracket nesting.
    let scan = guard::scan(&text, 5_000, 48);
    if scan.tokens > 5_000 || scan.max_nesting > 48 {
        return;
    }
    let Ok(doc) = async_graphql::parser::parse_query(&*text) else {
        return;
    };
    if let Ok(found) = shape::measure(&doc) {
        // A selection item takes at least one character of the text (a field name, or
        // `...` of a spread), so a linear measure visits at most one item per byte.
        assert!(
            found.steps <= text.len() as u64,
            "{} steps for {} bytes",
            found.steps,
            text.len()
        );
        assert!(found.root_fields <= found.fields);
    }
    let _ = guard::count_aliases(&doc);
});
