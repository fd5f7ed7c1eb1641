//! Relay pagination: page sizes and opaque, signed cursors.
//!
//! A cursor is `base64url(position | mac)`: the position as text, then its MAC
//! (HMAC-SHA256 over `kind NUL position`, truncated to its first 16 bytes). The kind (which
//! connection the cursor belongs to) is not in the cursor, only in the MAC. A garbled
//! cursor, one forged without the key, or one from another connection (a different kind)
//! is refused with BAD_USER_INPUT.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Error;

const MAC_LEN: usize = 16;

/// A keyset page as a connection: `rows` were fetched with one more than `limit`, so
/// whether there is a next page shows; each edge's cursor is its row's (time, id)
/// position, signed for connection `kind`.
pub fn keyset_connection<R, N: async_graphql::OutputType>(
    codec: &CursorCodec,
    kind: &str,
    rows: Vec<R>,
    limit: usize,
    has_previous: bool,
    position: impl Fn(&R) -> (chrono::DateTime<chrono::Utc>, uuid::Uuid),
    node: impl Fn(R) -> N,
) -> async_graphql::connection::Connection<String, N> {
    let cursor = |row: &R| {
        let (at, id) = position(row);
        codec.encode_keyset(kind, at, id)
    };
    connection(rows, limit, has_previous, cursor, node)
}

/// A page ordered by a text key (a symbol, an id) as a connection, likewise; each edge's
/// cursor is its row's key, signed for `kind`.
pub fn key_connection<R, N: async_graphql::OutputType>(
    codec: &CursorCodec,
    kind: &str,
    rows: Vec<R>,
    limit: usize,
    has_previous: bool,
    key: impl Fn(&R) -> &str,
    node: impl Fn(R) -> N,
) -> async_graphql::connection::Connection<String, N> {
    connection(
        rows,
        limit,
        has_previous,
        |row| codec.encode(kind, key(row)),
        node,
    )
}

fn connection<R, N: async_graphql::OutputType>(
    rows: Vec<R>,
    limit: usize,
    has_previous: bool,
    cursor: impl Fn(&R) -> String,
    node: impl Fn(R) -> N,
) -> async_graphql::connection::Connection<String, N> {
    let has_next = rows.len() > limit;
    let mut connection = async_graphql::connection::Connection::new(has_previous, has_next);
    connection.edges.extend(
        rows.into_iter()
            .take(limit)
            .map(|row| async_graphql::connection::Edge::new(cursor(&row), node(row))),
    );
    connection
}

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: [u8; 32],
}

impl CursorCodec {
    /// A codec keyed by `secret`, or by a random key when there is none.
    pub fn new(secret: Option<&str>) -> Self {
        let key = match secret {
            Some(secret) => Sha256::digest(secret.as_bytes()).into(),
            None => {
                let mut key = [0u8; 32];
                key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                key
            }
        };
        CursorCodec { key }
    }

    /// The MAC state over `kind NUL position`.
    fn keyed(&self, kind: &str, position: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(position.as_bytes());
        mac
    }

    fn mac(&self, kind: &str, position: &str) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&self.keyed(kind, position).finalize().into_bytes()[..MAC_LEN]);
        out
    }

    pub fn encode(&self, kind: &str, position: &str) -> String {
        let mut bytes = Vec::with_capacity(position.len() + MAC_LEN);
        bytes.extend_from_slice(position.as_bytes());
        bytes.extend_from_slice(&self.mac(kind, position));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position inside a cursor of `kind`.
    pub fn decode(&self, kind: &str, cursor: &str) -> Result<String, Error> {
        let invalid = || Error::BadUserInput(format!("`after` is not a valid {kind} cursor"));
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if bytes.len() < MAC_LEN {
            return Err(invalid());
        }
        let (position, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let position = std::str::from_utf8(position).map_err(|_| invalid())?;
        // The hmac crate compares in constant time.
        self.keyed(kind, position)
            .verify_truncated_left(mac)
            .map_err(|_| invalid())?;
        Ok(position.to_owned())
    }
}

impl CursorCodec {
    /// A cursor holding a `(time, id)` keyset position.
    pub fn encode_keyset(
        &self,
        kind: &str,
        at: chrono::DateTime<chrono::Utc>,
        id: uuid::Uuid,
    ) -> String {
        self.encode(kind, &format!("{}:{id}", at.timestamp_micros()))
    }

    /// The `(time, id)` keyset position inside a cursor of `kind`.
    pub fn decode_keyset(
        &self,
        kind: &str,
        cursor: &str,
    ) -> Result<(chrono::DateTime<chrono::Utc>, uuid::Uuid), Error> {
        let invalid = || Error::BadUserInput(format!("`after` is not a valid {kind} cursor"));
        let position = self.decode(kind, cursor)?;
        let (micros, id) = position.split_once(':').ok_or_else(invalid)?;
        let at = micros
            .parse()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        Ok((at, id.parse().map_err(|_| invalid())?))
    }
}

/// Checks `first` against the configured cap; `None` means `default`.
pub fn page_size(first: Option<i32>, default: u32, max: u32) -> Result<usize, Error> {
    match first {
        None => Ok(default.min(max) as usize),
        Some(n) if n < 0 => Err(Error::BadUserInput(format!(
            "`first` must not be negative (got {n})"
        ))),
        Some(n) if n as u32 > max => Err(Error::BadUserInput(format!(
            "`first` may be at most {max} (got {n})"
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// Query cost of a paged list field: its selection counted once per item it may
/// return (`first`, or the default page), plus the field itself.
pub fn cost(first: Option<i32>, default: u32, child_complexity: usize) -> usize {
    let items = first.map_or(default as usize, |n| usize::try_from(n).unwrap_or(0));
    items
        .max(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// Cost of a list without a page size (e.g. holdings): an estimate of its length.
pub const UNPAGED_LIST_ITEMS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let codec = CursorCodec::new(Some("k"));
        let cursor = codec.encode("users", "123:abc");
        assert_eq!(codec.decode("users", &cursor).expect("valid"), "123:abc");
        assert!(codec.decode("trades", &cursor).is_err(), "another kind");
        assert!(codec.decode("users", "not base64!").is_err());
        assert!(codec.decode("users", "").is_err());
        let forged = URL_SAFE_NO_PAD.encode(b"999:abc0123456789abcdef");
        assert!(codec.decode("users", &forged).is_err(), "forged");
        assert!(
            CursorCodec::new(Some("other"))
                .decode("users", &cursor)
                .is_err(),
            "another key"
        );
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None, 20, 100).expect("default"), 20);
        assert_eq!(page_size(Some(100), 20, 100).expect("max"), 100);
        assert!(page_size(Some(101), 20, 100).is_err());
        assert!(page_size(Some(-1), 20, 100).is_err());
    }
}
