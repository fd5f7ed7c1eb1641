//! Validated inputs, parsed once where they enter (GraphQL arguments, NDJSON lines) and
//! carried as types from there on: a function that takes an [`Address`], a [`TxHash`] or a
//! [`Symbol`] never sees an unchecked string, and nothing checks one twice.

use std::fmt;

/// The chain families an account may belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainFamily {
    Evm,
    Stellar,
    Casper,
}

impl ChainFamily {
    /// The name stored in PostgreSQL (`users.chain`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChainFamily::Evm => "evm",
            ChainFamily::Stellar => "stellar",
            ChainFamily::Casper => "casper",
        }
    }

    pub fn from_stored(text: &str) -> Option<ChainFamily> {
        match text {
            "evm" => Some(ChainFamily::Evm),
            "stellar" => Some(ChainFamily::Stellar),
            "casper" => Some(ChainFamily::Casper),
            _ => None,
        }
    }

    /// What an address of this family looks like.
    pub fn rule(self) -> &'static str {
        match self {
            ChainFamily::Evm => {
                "must be 0x followed by 40 hex digits (a mixed-case address must carry a valid EIP-55 checksum)"
            }
            ChainFamily::Stellar => {
                "must be a Stellar account id: G and 55 more base32 characters with a valid checksum"
            }
            ChainFamily::Casper => {
                "must be a Casper public key: 01 and 64 hex digits (ed25519) or 02 and 66 hex digits (secp256k1), naming a valid key"
            }
        }
    }
}

/// An account: a chain family and an address, each family checked by its own rules and
/// kept in one normal form (EVM lowercase, Stellar uppercase strkey, Casper lowercase
/// hex), so that one account has one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    family: ChainFamily,
    text: String,
}

impl Address {
    /// Why an address is refused when its family cannot even be told.
    pub const RULE: &'static str = "must be an EVM address (0x and 40 hex digits), a Stellar account id (G...) or a Casper public key (01... or 02...)";

    /// Parses an address of the family its shape names.
    pub fn parse(text: &str) -> Result<Address, &'static str> {
        let trimmed = text.trim();
        let family = if trimmed.starts_with("0x") || trimmed.starts_with("0X") {
            ChainFamily::Evm
        } else if trimmed.starts_with(['G', 'g']) {
            ChainFamily::Stellar
        } else if trimmed.starts_with("01") || trimmed.starts_with("02") {
            ChainFamily::Casper
        } else {
            return Err(Self::RULE);
        };
        Address::parse_as(family, trimmed)
    }

    /// Parses an address that must be of `family`.
    pub fn parse_as(family: ChainFamily, text: &str) -> Result<Address, &'static str> {
        let text = text.trim();
        let normal = match family {
            ChainFamily::Evm => evm(text),
            ChainFamily::Stellar => stellar(text),
            ChainFamily::Casper => casper(text),
        };
        normal
            .map(|text| Address { family, text })
            .ok_or(family.rule())
    }

    pub fn family(&self) -> ChainFamily {
        self.family
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `0x` and 40 hex digits; a mixed-case address is an EIP-55 checksum and must be right.
fn evm(text: &str) -> Option<String> {
    let digits = text.strip_prefix("0x")?;
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let lower = digits.to_ascii_lowercase();
    let mixed = digits.bytes().any(|b| b.is_ascii_lowercase())
        && digits.bytes().any(|b| b.is_ascii_uppercase());
    if mixed && eip55(&lower) != digits {
        return None;
    }
    Some(format!("0x{lower}"))
}

/// The EIP-55 spelling of 40 lowercase hex digits: a letter is uppercase where the
/// matching nibble of keccak256(lowercase digits) is 8 or more.
pub fn eip55(lower: &str) -> String {
    use sha3::{Digest, Keccak256};
    let hash = Keccak256::digest(lower.as_bytes());
    lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// A Stellar account id (strkey `G...`: version byte, 32-byte ed25519 key, CRC16).
fn stellar(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    stellar_strkey::ed25519::PublicKey::from_string(&upper).ok()?;
    Some(upper)
}

/// A Casper public key: a tag byte and the key, as hex; the key must be a valid point
/// (for ed25519: canonically encoded and not of small order, as no real key is).
fn casper(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = hex::decode(&lower).ok()?;
    match (bytes.first()?, bytes.len()) {
        (1, 33) => {
            let key: [u8; 32] = bytes[1..].try_into().ok()?;
            let point = ed25519_dalek::VerifyingKey::from_bytes(&key).ok()?;
            if point.is_weak() || point.to_edwards().compress().to_bytes() != key {
                return None;
            }
        }
        (2, 34) => {
            k256::PublicKey::from_sec1_bytes(&bytes[1..]).ok()?;
        }
        _ => return None,
    }
    Some(lower)
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

as_text!(TxHash, Symbol);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The checksummed examples of EIP-55 itself.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn evm_addresses_keep_one_spelling_and_checked_checksums() {
        for given in EIP55 {
            let lower = given.to_ascii_lowercase();
            let address = Address::parse(given).expect("a valid checksum");
            assert_eq!(address.family(), ChainFamily::Evm);
            assert_eq!(address.as_str(), lower);
            assert_eq!(format!("0x{}", eip55(&lower[2..])), given);
            // All lowercase and all uppercase carry no checksum and are accepted.
            assert!(Address::parse(&lower).is_ok());
            assert!(Address::parse(&format!("0x{}", lower[2..].to_ascii_uppercase())).is_ok());
            // One letter's case flipped breaks the checksum.
            let (i, c) = given
                .char_indices()
                .skip(2)
                .find(|(_, c)| c.is_ascii_alphabetic())
                .expect("a letter");
            let flipped_letter = if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            let mut flipped = given.to_owned();
            flipped.replace_range(i..=i, &flipped_letter.to_string());
            assert!(Address::parse(&flipped).is_err(), "{flipped}");
        }
        let evm_rule = ChainFamily::Evm.rule();
        for bad in [
            "0x",
            "0x5290840009852788",
            "0xg2908400098527886e0f7030069857d2e4169ee7",
        ] {
            assert_eq!(Address::parse(bad), Err(evm_rule), "{bad:?}");
        }
        for unknown in ["", "52908400098527886e0f7030069857d2e4169ee7", "x0"] {
            assert_eq!(Address::parse(unknown), Err(Address::RULE), "{unknown:?}");
        }
    }

    #[test]
    fn stellar_account_ids_are_checked_by_their_checksum() {
        // RFC 8032's first test key as a Stellar account id.
        let key = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .expect("hex");
        let id = stellar_strkey::ed25519::PublicKey(key.try_into().expect("32 bytes"))
            .to_string()
            .as_str()
            .to_owned();
        let address = Address::parse(&id).expect("valid");
        assert_eq!(address.family(), ChainFamily::Stellar);
        assert_eq!(address.as_str(), id);
        assert_eq!(
            Address::parse(&id.to_ascii_lowercase()).expect("case-insensitive"),
            address
        );
        // A changed character breaks the CRC16; a short one, its length.
        let mut wrong = id.clone();
        let last = if id.ends_with('A') { "B" } else { "A" };
        wrong.replace_range(55..56, last);
        assert!(Address::parse(&wrong).is_err());
        assert!(Address::parse(&id[..55]).is_err());
        // A secret seed (S...) is not an account id.
        assert!(Address::parse_as(ChainFamily::Stellar, &format!("S{}", &id[1..])).is_err());
    }

    #[test]
    fn casper_public_keys_must_name_a_valid_key() {
        let ed = "01d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let address = Address::parse(&ed.to_ascii_uppercase()).expect("valid ed25519");
        assert_eq!(
            (address.family(), address.as_str()),
            (ChainFamily::Casper, ed)
        );
        // secp256k1's generator point, compressed.
        let secp = "020279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        assert!(Address::parse(secp).is_ok());
        assert!(Address::parse(&secp[..66]).is_err(), "truncated");
        // 02 with an x that names no curve point; 01 one byte short.
        assert!(Address::parse(&format!("0202{}", "00".repeat(32))).is_err());
        assert!(Address::parse(&format!("01{}", "00".repeat(31))).is_err());
        // ed25519 encodings no key has: y written as p + 18 (non-canonical: past the field's
        // end, 32 bytes of 0xff), and the identity point (small order).
        assert!(Address::parse(&format!("01{}", "ff".repeat(32))).is_err());
        assert!(Address::parse(&format!("0101{}", "00".repeat(31))).is_err());
    }

    #[test]
    fn one_family_is_not_another() {
        let evm = EIP55[0];
        assert!(Address::parse_as(ChainFamily::Stellar, evm).is_err());
        assert!(Address::parse_as(ChainFamily::Casper, evm).is_err());
        let casper = "01d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        assert!(Address::parse_as(ChainFamily::Evm, casper).is_err());
        assert_eq!(
            Address::parse_as(ChainFamily::Evm, casper),
            Err(ChainFamily::Evm.rule())
        );
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
