//! Wallet signatures: the address that signed a message with Ethereum's `personal_sign`
//! (EIP-191: keccak256 of "\x19Ethereum Signed Message:\n" + length + message, signed
//! with secp256k1; the signature is r || s || v, 65 bytes as 0x-hex).

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

/// Why a signature does not name an address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature must be 0x and 130 hex digits")]
    Malformed,
    #[error("the signature does not verify")]
    Invalid,
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
    format!("0x{}", hex(&hash[12..]))
}

/// The address whose key produced `signature` over `message`.
pub fn recover(message: &str, signature: &str) -> Result<String, SignatureError> {
    let bytes = signature
        .strip_prefix("0x")
        .and_then(unhex)
        .filter(|b| b.len() == 65)
        .ok_or(SignatureError::Malformed)?;
    let v = match bytes[64] {
        27 | 28 => bytes[64] - 27,
        0 | 1 => bytes[64],
        _ => return Err(SignatureError::Malformed),
    };
    let signature = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Invalid)?;
    // Ethereum accepts only low-s signatures (EIP-2).
    if signature.normalize_s() != signature {
        return Err(SignatureError::Invalid);
    }
    let recovery = RecoveryId::from_byte(v).ok_or(SignatureError::Malformed)?;
    let key = VerifyingKey::recover_from_prehash(&personal_digest(message), &signature, recovery)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(address_of(&key))
}

/// Signs `message` the way a wallet's `personal_sign` does (for tests and tools).
pub fn sign(key: &SigningKey, message: &str) -> String {
    let (signature, recovery) = key.sign_prehash_recoverable(&personal_digest(message));
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!("0x{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
        assert_eq!(recover("x", "0x1234"), Err(SignatureError::Malformed));
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
}
