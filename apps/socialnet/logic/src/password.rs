//! Passwords as the original stores them: a 32-character salt from `[A-Z0-9]` and
//! `sha256(password ‖ salt)` in hex.

use sha2::{Digest, Sha256};

const SALT_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A salt from 32 random bytes.
pub fn salt(bytes: [u8; 32]) -> String {
    bytes
        .iter()
        .map(|b| SALT_ALPHABET[*b as usize % SALT_ALPHABET.len()] as char)
        .collect()
}

/// The stored hash of `password` with `salt`.
pub fn hash(password: &str, salt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(password.as_bytes());
    hasher.update(salt.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `password` matches `stored` (compared in constant time).
pub fn matches(password: &str, salt: &str, stored: &str) -> bool {
    let computed = hash(password, salt);
    computed.len() == stored.len()
        && computed
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A login token for `user_id`, derived from the node's secret: `sha256(secret ‖ user_id)`.
pub fn token(secret: &str, user_id: &str) -> String {
    hash(user_id, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_of_password_then_salt() {
        // sha256("abc") is a published test vector.
        assert_eq!(
            hash("ab", "c"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches("ab", "c", &hash("ab", "c")));
        assert!(!matches("ab", "d", &hash("ab", "c")));
        assert!(!matches("ab", "c", "short"));
    }

    #[test]
    fn salts_use_upper_case_letters_and_digits() {
        let s = salt([200; 32]);
        assert_eq!(s.len(), 32);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
    }
}
