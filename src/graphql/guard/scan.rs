//! Before parsing: a lexical scan bounds the token count and the bracket nesting, so that
//! no document can make the (recursive) parser work hard.

/// What one lexical scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub tokens: usize,
    pub max_nesting: usize,
}

/// Counts GraphQL tokens and the deepest `{`/`(`/`[` nesting, stopping early once
/// `max_tokens` or `max_nesting` is passed. Not a validator: the parser still decides
/// what is well-formed.
pub fn scan(document: &str, max_tokens: usize, max_nesting: usize) -> Scan {
    let bytes = document.as_bytes();
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() && out.tokens <= max_tokens && out.max_nesting <= max_nesting {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                out.tokens += 1;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") {
                            4
                        } else {
                            1
                        };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                out.tokens += 1;
                depth += 1;
                out.max_nesting = out.max_nesting.max(depth);
                i += 1;
            }
            b'}' | b')' | b']' => {
                out.tokens += 1;
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                out.tokens += 1;
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                out.tokens += 1;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            _ => {
                out.tokens += 1;
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_counts_tokens_and_nesting() {
        let s = scan(
            "query Q($a: Int = 1) { a(x: \"s { \\\" }\") { ...F } } # { { {",
            1000,
            1000,
        );
        // query Q ( $ a : Int = 1 ) { a ( x : "..." ) { ... F } }
        assert_eq!(s.tokens, 22);
        assert_eq!(s.max_nesting, 2);
        let deep = "{a".repeat(1000) + &"}".repeat(1000);
        let s = scan(&deep, 10_000, 48);
        assert!(s.max_nesting > 48, "stops once past the nesting bound");
        assert!(s.tokens < 200, "and stops early: {}", s.tokens);
        let block = scan("\"\"\"a \\\"\"\" { b\"\"\" c", 100, 100);
        assert_eq!(
            block,
            Scan {
                tokens: 2,
                max_nesting: 0
            }
        );
    }
}
