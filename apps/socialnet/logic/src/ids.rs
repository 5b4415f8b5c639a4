//! Ids as the original makes them, from random bytes the caller supplies: `uuid4().hex`
//! (32 lowercase hex characters), `uuid4().int` (a 128-bit integer), Mongo-like object ids
//! and short-URL codes.

/// A version-4 UUID from 16 random bytes: the version and variant bits set, as `uuid4()`.
pub fn uuid4(mut bytes: [u8; 16]) -> u128 {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    u128::from_be_bytes(bytes)
}

/// `uuid.hex`: 32 lowercase hex characters.
pub fn hex(uuid: u128) -> String {
    format!("{uuid:032x}")
}

/// A 24-hex-character id shaped like a MongoDB ObjectId, for the `_id` fields the original's
/// replies carry.
pub fn object_id(bytes: [u8; 12]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Ten lowercase letters, as the original's short URLs end with.
pub fn short_code(bytes: [u8; 10]) -> String {
    bytes.iter().map(|b| (b'a' + b % 26) as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_carry_version_four_and_format_as_python_does() {
        let id = uuid4([0xff; 16]);
        let text = hex(id);
        assert_eq!(text.len(), 32);
        assert_eq!(&text[12..13], "4");
        assert!(matches!(&text[16..17], "8" | "9" | "a" | "b"));
        assert_eq!(hex(uuid4([0; 16])), "00000000000040008000000000000000");
        assert!(id.to_string().len() <= 39);
    }

    #[test]
    fn object_ids_and_codes_have_their_shapes() {
        assert_eq!(object_id([0xab; 12]), "ab".repeat(12));
        let code = short_code([0, 25, 26, 255, 1, 2, 3, 4, 5, 6]);
        assert_eq!(code, "azavbcdefg");
    }
}
