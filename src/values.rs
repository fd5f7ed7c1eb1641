//! Validated inputs, parsed once where they enter (GraphQL arguments, NDJSON lines) and
//! carried as types from there on: a function that takes an [`Address`], a [`TxHash`] or a
//! [`Symbol`] never sees an unchecked string, and nothing checks one twice.

use std::fmt;

/// An EVM account address: `0x` and 40 hex digits, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    /// Why an address is refused.
    pub const RULE: &'static str = "must be 0x followed by 40 hex digits";

    pub fn parse(text: &str) -> Result<Address, &'static str> {
        let address = text.trim().to_ascii_lowercase();
        let ok = address.len() == 42
            && address.starts_with("0x")
            && address[2..].bytes().all(|b| b.is_ascii_hexdigit());
        ok.then_some(Address(address)).ok_or(Self::RULE)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A transaction hash: `0x` and 64 hex digits, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxHash(String);

impl TxHash {
    pub const RULE: &'static str = "must be 0x followed by 64 hex digits";

    pub fn parse(text: &str) -> Result<TxHash, &'static str> {
        let hash = text.trim().to_ascii_lowercase();
        let ok = hash.len() == 66
            && hash.starts_with("0x")
            && hash[2..].bytes().all(|b| b.is_ascii_hexdigit());
        ok.then_some(TxHash(hash)).ok_or(Self::RULE)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An asset's ticker: 2 to 12 letters or digits, stored uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    pub const RULE: &'static str = "must be 2 to 12 letters or digits";

    pub fn parse(text: &str) -> Result<Symbol, &'static str> {
        let symbol = text.trim().to_ascii_uppercase();
        let ok =
            (2..=12).contains(&symbol.len()) && symbol.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then_some(Symbol(symbol)).ok_or(Self::RULE)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

macro_rules! as_text {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

as_text!(Address, TxHash, Symbol);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_checked() {
        let mixed = "  0x52908400098527886E0F7030069857D2E4169EE7 ";
        assert_eq!(
            Address::parse(mixed).map(|a| a.to_string()),
            Ok("0x52908400098527886e0f7030069857d2e4169ee7".to_owned())
        );
        for bad in [
            "",
            "0x",
            "52908400098527886e0f7030069857d2e4169ee7",
            "0x5290840009852788",
        ] {
            assert_eq!(Address::parse(bad), Err(Address::RULE), "{bad:?}");
        }
        assert!(Address::parse("0xg2908400098527886e0f7030069857d2e4169ee7").is_err());
    }

    #[test]
    fn hashes_are_lowercased_and_checked() {
        let hash = format!("0x{}", "AB".repeat(32));
        assert_eq!(
            TxHash::parse(&hash).map(|h| h.to_string()),
            Ok(format!("0x{}", "ab".repeat(32)))
        );
        assert_eq!(TxHash::parse(&hash[..65]), Err(TxHash::RULE));
        assert_eq!(
            TxHash::parse(&format!("0x{}", "zz".repeat(32))),
            Err(TxHash::RULE)
        );
    }

    #[test]
    fn symbols_are_uppercased_and_checked() {
        assert_eq!(
            Symbol::parse(" btc ").map(Symbol::into_string),
            Ok("BTC".to_owned())
        );
        for bad in ["B", "THIRTEENCHARS", "BT-C", "", "ÉTH"] {
            assert_eq!(Symbol::parse(bad), Err(Symbol::RULE), "{bad:?}");
        }
    }
}
