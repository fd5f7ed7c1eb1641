//! Digests shared by the modules above it: persisted-query hashes (`graphql`) and stored
//! session-token hashes (`auth`).

use sha2::{Digest, Sha256};

/// The SHA-256 of `text`, as lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex_is_the_lowercase_hex_digest() {
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
