//! API keys: `bp_` and 43 random base62 characters (256 bits), shown once and stored only as
//! their SHA-256 (right for keys this random: no salt or slow hash is needed).

use sha2::{Digest, Sha256};

const PREFIX: &str = "bp_";
const BODY_LEN: usize = 43; // 43 × log2(62) ≈ 256 bits
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The SHA-256 of a key: what is stored and looked up.
pub type KeyHash = [u8; 32];

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

pub fn hash_hex(hash: &[u8]) -> String {
    use std::fmt::Write;
    hash.iter()
        .fold(String::with_capacity(hash.len() * 2), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Reads a hash written by [`hash_hex`]; `None` if it is not 64 hex digits.
pub fn parse_hash_hex(text: &str) -> Option<KeyHash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0; 32];
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

/// Reads a configured hash ([`parse_hash_hex`]) with serde, naming what is wrong.
pub fn deserialize_hash_hex<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<KeyHash, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    parse_hash_hex(&text)
        .ok_or_else(|| serde::de::Error::custom("a key hash must be 64 hex digits"))
}

/// Whether `token` has the shape of an API key (anything else may be a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(getrandom::Error);

/// A new random key. Each character takes a random byte below 248 (= 4 × 62), so every
/// character is equally likely.
pub fn generate() -> Result<String, RandomError> {
    let mut key = String::with_capacity(PREFIX.len() + BODY_LEN);
    key.push_str(PREFIX);
    let mut bytes = [0u8; 64];
    while key.len() < PREFIX.len() + BODY_LEN {
        getrandom::fill(&mut bytes).map_err(RandomError)?;
        for byte in bytes.iter().filter(|byte| **byte < 248) {
            if key.len() == PREFIX.len() + BODY_LEN {
                break;
            }
            key.push(char::from(ALPHABET[usize::from(byte % 62)]));
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_base62_and_their_hashes_round_trip() {
        let key = generate().expect("random");
        assert_eq!(key.len(), 46);
        assert!(looks_like_key(&key));
        assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key, generate().expect("random"));
        let hash = hash(&key);
        assert_eq!(parse_hash_hex(&hash_hex(&hash)), Some(hash));
        assert_eq!(parse_hash_hex("abc"), None);
        assert_eq!(parse_hash_hex(&"g".repeat(64)), None);
        // A known vector: SHA-256("abc").
        assert_eq!(
            hash_hex(&super::hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
