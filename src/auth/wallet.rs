//! Wallet signatures, one convention per chain family, each the one its wallets use to
//! sign a text message:
//!
//! - EVM: `personal_sign` (EIP-191): keccak256 of "\x19Ethereum Signed Message:\n" +
//!   length + message, secp256k1; the signature is r || s || v, 65 bytes as 0x-hex. The
//!   signer's address is recovered and compared.
//! - Stellar: SEP-53, as Freighter's `signMessage` and `stellar message sign` do: ed25519
//!   over sha256("Stellar Signed Message:\n" + message); 64 bytes, base64 (or hex).
//! - Casper: the Casper Wallet's `signMessage`: the bytes "Casper Message:\n" + message,
//!   signed with ed25519 for an `01` key and with secp256k1 ECDSA over their sha256 for a
//!   `02` key; 64 bytes as hex, optionally led by the key's tag byte.

use base64::Engine;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::values::{Address, ChainFamily};

/// SEP-53's prefix.
pub const STELLAR_PREFIX: &str = "Stellar Signed Message:\n";
/// The Casper Wallet's prefix.
pub const CASPER_PREFIX: &str = "Casper Message:\n";

/// Why a signature does not name an address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature must be {0}")]
    Malformed(&'static str),
    #[error("the signature does not verify")]
    Invalid,
}

const EVM_SHAPE: &str = "0x and 130 hex digits";
const ED25519_SHAPE: &str = "64 bytes as base64 or hex";
const CASPER_SHAPE: &str = "64 bytes as hex, optionally led by the key's tag byte";

/// Checks that `signature` over `message` was made by `address`'s key, by the convention
/// of its chain family (see the module docs).
pub fn verify(address: &Address, message: &str, signature: &str) -> Result<(), SignatureError> {
    let signature = signature.trim();
    match address.family() {
        ChainFamily::Evm => {
            if recover(message, signature)? == address.as_str() {
                Ok(())
            } else {
                Err(SignatureError::Invalid)
            }
        }
        ChainFamily::Stellar => {
            let key = stellar_strkey::ed25519::PublicKey::from_string(address.as_str())
                .map_err(|_| SignatureError::Invalid)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(signature)
                .ok()
                .filter(|b| b.len() == 64)
                .or_else(|| hex::decode(signature).ok().filter(|b| b.len() == 64))
                .ok_or(SignatureError::Malformed(ED25519_SHAPE))?;
            let digest = <sha2::Sha256 as sha2::Digest>::digest(
                format!("{STELLAR_PREFIX}{message}").as_bytes(),
            );
            ed25519(&key.0, &digest, &bytes)
        }
        ChainFamily::Casper => {
            let key = hex::decode(address.as_str()).map_err(|_| SignatureError::Invalid)?;
            let (tag, key) = key.split_first().ok_or(SignatureError::Invalid)?;
            let mut bytes = hex::decode(signature.strip_prefix("0x").unwrap_or(signature))
                .map_err(|_| SignatureError::Malformed(CASPER_SHAPE))?;
            if bytes.len() == 65 && bytes[0] == *tag {
                bytes.remove(0);
            }
            if bytes.len() != 64 {
                return Err(SignatureError::Malformed(CASPER_SHAPE));
            }
            let signed = format!("{CASPER_PREFIX}{message}");
            match tag {
                1 => ed25519(key, signed.as_bytes(), &bytes),
                _ => {
                    use k256::ecdsa::signature::Verifier;
                    let key =
                        VerifyingKey::from_sec1_bytes(key).map_err(|_| SignatureError::Invalid)?;
                    let signature =
                        Signature::from_slice(&bytes).map_err(|_| SignatureError::Invalid)?;
                    key.verify(signed.as_bytes(), &signature)
                        .map_err(|_| SignatureError::Invalid)
                }
            }
        }
    }
}

fn ed25519(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let key: [u8; 32] = key.try_into().map_err(|_| SignatureError::Invalid)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::Invalid)?;
    let signature = ed25519_dalek::Signature::from_slice(signature)
        .map_err(|_| SignatureError::Malformed(ED25519_SHAPE))?;
    key.verify_strict(message, &signature)
        .map_err(|_| SignatureError::Invalid)
}

/// The EIP-191 digest of `message`.
pub fn personal_digest(message: &str) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    hasher.update(message.as_bytes());
    hasher.finalize().into()
}

/// The lowercase 0x address of a public key.
pub fn address_of(key: &VerifyingKey) -> String {
    let point = key.to_sec1_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

/// The address whose key produced `signature` over `message`.
pub fn recover(message: &str, signature: &str) -> Result<String, SignatureError> {
    let bytes = signature
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 65)
        .ok_or(SignatureError::Malformed(EVM_SHAPE))?;
    let v = match bytes[64] {
        27 | 28 => bytes[64] - 27,
        0 | 1 => bytes[64],
        _ => return Err(SignatureError::Malformed(EVM_SHAPE)),
    };
    let signature = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Invalid)?;
    // Ethereum accepts only low-s signatures (EIP-2).
    if signature.normalize_s() != signature {
        return Err(SignatureError::Invalid);
    }
    let recovery = RecoveryId::from_byte(v).ok_or(SignatureError::Malformed(EVM_SHAPE))?;
    let key = VerifyingKey::recover_from_prehash(&personal_digest(message), &signature, recovery)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(address_of(&key))
}

/// Signs `message` the way a wallet's `personal_sign` does (for tests and tools).
pub fn sign(key: &SigningKey, message: &str) -> String {
    let (signature, recovery) = key.sign_prehash_recoverable(&personal_digest(message));
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!("0x{}", hex::encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_signer() {
        let key = SigningKey::from_slice(&[7u8; 32]).expect("valid scalar");
        let address = address_of(key.verifying_key());
        let signature = sign(&key, "Sign in to Meridian");
        assert_eq!(
            recover("Sign in to Meridian", &signature),
            Ok(address.clone())
        );
        assert_ne!(recover("Sign in to Meridian!", &signature), Ok(address));
        assert_eq!(
            recover("x", "0x1234"),
            Err(SignatureError::Malformed(EVM_SHAPE))
        );
    }

    #[test]
    fn known_vector() {
        // The private key 0x...01 has the well-known address below.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = SigningKey::from_slice(&one).expect("valid scalar");
        assert_eq!(
            address_of(key.verifying_key()),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }

    /// RFC 8032, section 7.1, test 1.
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8032_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn ed_key() -> ed25519_dalek::SigningKey {
        let seed: [u8; 32] = hex::decode(RFC8032_SEED)
            .expect("hex")
            .try_into()
            .expect("32");
        ed25519_dalek::SigningKey::from_bytes(&seed)
    }

    #[test]
    fn the_rfc_8032_vector_verifies_and_a_changed_byte_does_not() {
        let key = hex::decode(RFC8032_KEY).expect("hex");
        let mut signature = hex::decode(RFC8032_EMPTY).expect("hex");
        assert_eq!(ed25519(&key, b"", &signature), Ok(()));
        signature[10] ^= 1;
        assert_eq!(ed25519(&key, b"", &signature), Err(SignatureError::Invalid));
    }

    #[test]
    fn stellar_accounts_sign_in_with_sep_53() {
        use ed25519_dalek::Signer;
        let key = ed_key();
        assert_eq!(hex::encode(key.verifying_key().as_bytes()), RFC8032_KEY);
        let id = stellar_strkey::ed25519::PublicKey(key.verifying_key().to_bytes()).to_string();
        let address = Address::parse(&id).expect("an account id");
        let message = "Sign in to Meridian\nNonce: 1";
        let digest =
            <sha2::Sha256 as sha2::Digest>::digest(format!("{STELLAR_PREFIX}{message}").as_bytes());
        let signature = key.sign(&digest).to_bytes();
        let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
        assert_eq!(verify(&address, message, &b64), Ok(()));
        assert_eq!(verify(&address, message, &hex::encode(signature)), Ok(()));
        // Not SEP-53: the raw message signed without the prefix and hash.
        let raw = base64::engine::general_purpose::STANDARD
            .encode(key.sign(message.as_bytes()).to_bytes());
        assert_eq!(
            verify(&address, message, &raw),
            Err(SignatureError::Invalid)
        );
        // Another message, another key, a truncated signature, an EVM signature.
        assert_eq!(
            verify(&address, "Sign in", &b64),
            Err(SignatureError::Invalid)
        );
        let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let forged =
            base64::engine::general_purpose::STANDARD.encode(other.sign(&digest).to_bytes());
        assert_eq!(
            verify(&address, message, &forged),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(&address, message, &b64[..40]),
            Err(SignatureError::Malformed(ED25519_SHAPE))
        );
        let evm = sign(&SigningKey::from_slice(&[7u8; 32]).expect("key"), message);
        assert_eq!(
            verify(&address, message, &evm),
            Err(SignatureError::Malformed(ED25519_SHAPE))
        );
    }

    #[test]
    fn casper_keys_sign_in_with_the_casper_message_prefix() {
        use ed25519_dalek::Signer as _;
        use k256::ecdsa::signature::Signer as _;
        let message = "Sign in to Meridian\nNonce: 2";
        let signed = format!("{CASPER_PREFIX}{message}");
        // 01: ed25519 over the prefixed bytes.
        let ed = ed_key();
        let address = Address::parse(&format!("01{RFC8032_KEY}")).expect("a Casper key");
        let signature = hex::encode(ed.sign(signed.as_bytes()).to_bytes());
        assert_eq!(verify(&address, message, &signature), Ok(()));
        assert_eq!(verify(&address, message, &format!("01{signature}")), Ok(()));
        assert_eq!(
            verify(&address, message, &format!("02{signature}")),
            Err(SignatureError::Malformed(CASPER_SHAPE))
        );
        assert_eq!(
            verify(&address, "other", &signature),
            Err(SignatureError::Invalid)
        );
        // 02: secp256k1 ECDSA over sha256 of the prefixed bytes.
        let secp = SigningKey::from_slice(&[7u8; 32]).expect("key");
        let compressed = secp.verifying_key().to_sec1_point(true);
        let address = Address::parse(&format!("02{}", hex::encode(compressed.as_bytes())))
            .expect("a Casper key");
        let signature: Signature = secp.sign(signed.as_bytes());
        let signature = hex::encode(signature.to_bytes());
        assert_eq!(verify(&address, message, &signature), Ok(()));
        assert_eq!(verify(&address, message, &format!("02{signature}")), Ok(()));
        assert_eq!(
            verify(&address, "other", &signature),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(&address, message, &signature[..100]),
            Err(SignatureError::Malformed(CASPER_SHAPE))
        );
        // An ed25519 signature is no secp256k1 one, and the reverse.
        let ed_signature = hex::encode(ed.sign(signed.as_bytes()).to_bytes());
        assert_eq!(
            verify(&address, message, &ed_signature),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn evm_accounts_verify_by_recovery() {
        let key = SigningKey::from_slice(&[7u8; 32]).expect("key");
        let address = Address::parse(&address_of(key.verifying_key())).expect("an address");
        let signature = sign(&key, "hello");
        assert_eq!(verify(&address, "hello", &signature), Ok(()));
        assert_eq!(
            verify(&address, "hullo", &signature),
            Err(SignatureError::Invalid)
        );
    }
}
