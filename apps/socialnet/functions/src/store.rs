//! Where the application keeps its data: objects of Baton's replicated state in the
//! `socialnet` namespace (every function carries `baton.namespace = "socialnet"`).
//!
//! | object | type | holds |
//! |---|---|---|
//! | `claim/username/<u>`, `claim/user-id/<id>` | counter | who registered a name first on this node |
//! | `user/<u>` | register | the user document (JSON) |
//! | `user-id/<id>` | register | the username of a user id |
//! | `graph/<id>` | counter | the user's social-graph node exists |
//! | `followers/<id>`, `followees/<id>` | register map | other user id → follow time |
//! | `url/<code>` | register | a short URL's expansion |
//! | `compose/<req_id>` | register map | a post's staged components |
//! | `post/<post_id>` | register | the post (JSON) |
//! | `user-timeline/<id>`, `home-timeline/<id>` | register map | `<time>/<post id>` → time |
//! | `login-secret` | register | what login tokens are derived from |
//!
//! Names and ids go into object names as they are when they are made of letters, digits and
//! `-_.` , and hex-encoded behind `:` otherwise (the state's alphabet has no more), so every
//! name maps to one object and no two names to the same.

use baton_sdk::state::{Counter, Error, Register, RegisterMap};

/// The longest username, user id or name field accepted.
pub const MAX_NAME: usize = 64;

/// `value` as a part of an object name.
pub fn part(value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if plain && !value.is_empty() {
        value.to_string()
    } else {
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        format!(":{hex}")
    }
}

pub fn username_claim(username: &str) -> Counter {
    Counter::new(format!("claim/username/{}", part(username)))
}

pub fn user_id_claim(user_id: &str) -> Counter {
    Counter::new(format!("claim/user-id/{}", part(user_id)))
}

pub fn user(username: &str) -> Register {
    Register::new(format!("user/{}", part(username)))
}

pub fn user_id(user_id: &str) -> Register {
    Register::new(format!("user-id/{}", part(user_id)))
}

pub fn graph_node(user_id: &str) -> Counter {
    Counter::new(format!("graph/{}", part(user_id)))
}

pub fn followers(user_id: &str) -> RegisterMap {
    RegisterMap::new(format!("followers/{}", part(user_id)))
}

pub fn followees(user_id: &str) -> RegisterMap {
    RegisterMap::new(format!("followees/{}", part(user_id)))
}

pub fn short_url(code: &str) -> Register {
    Register::new(format!("url/{}", part(code)))
}

pub fn staging(req_id: &str) -> RegisterMap {
    RegisterMap::new(format!("compose/{}", part(req_id)))
}

pub fn post(post_id: &str) -> Register {
    Register::new(format!("post/{}", part(post_id)))
}

pub fn user_timeline(user_id: &str) -> RegisterMap {
    RegisterMap::new(format!("user-timeline/{}", part(user_id)))
}

pub fn home_timeline(user_id: &str) -> RegisterMap {
    RegisterMap::new(format!("home-timeline/{}", part(user_id)))
}

pub fn login_secret() -> Register {
    Register::new("login-secret")
}

/// The one value of a register: of several written concurrently, the greatest, so every
/// replica picks the same.
pub fn single(values: Vec<String>) -> Option<String> {
    values.into_iter().max()
}

/// A state error in words.
pub fn describe(error: Error) -> String {
    match error {
        Error::Invalid(m) => format!("invalid: {m}"),
        Error::NotFound(m) => format!("not found: {m}"),
        Error::TypeMismatch(m) => format!("type mismatch: {m}"),
        Error::TooLarge(m) => format!("too large: {m}"),
        Error::Unavailable(m) => format!("state unavailable: {m}"),
    }
}

/// Random bytes from the host (`wasi:random`).
pub fn random<const N: usize>() -> [u8; N] {
    let bytes = baton_sdk::wasi::random::random::get_random_bytes(N as u64);
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// Now, in seconds since the epoch, with microseconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as f64 / 1e6)
        .unwrap_or(0.0)
}
