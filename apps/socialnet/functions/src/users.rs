//! The user service: registration (unique usernames), user ids, and login.
//!
//! A username is claimed with a counter: the registration whose increment makes it 1 on this
//! node is the one that succeeds, so two concurrent registrations of one name on a node give
//! exactly one success. The social-graph node is made before the claim, so a registration
//! that fails leaves nothing a user can see.

use crate::call::{call, succeeded};
use crate::reply::{Input, Outcome, Style, missing};
use crate::store::{self, MAX_NAME};
use serde_json::{Map, Value, json};
use socialnet_logic::{classic, fields, ids, password};

/// The longest first or last name, and the longest password.
const MAX_TEXT: usize = 256;
/// The largest registration (its extra fields included), well inside a state value.
const MAX_DOCUMENT: usize = 16 << 10;

struct Registration<'a> {
    username: &'a str,
    password: &'a str,
    input: &'a Input,
}

fn read_registration(input: &Input) -> Result<Registration<'_>, Value> {
    let m = missing(Style::Message);
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    fields::string(input, "first_name", MAX_TEXT).map_err(&m)?;
    fields::string(input, "last_name", MAX_TEXT).map_err(&m)?;
    let password = fields::name(input, "password", MAX_TEXT).map_err(&m)?;
    // Extra fields are stored too, so the whole request bounds the document: checked before
    // anything is claimed, so a document too large for the state leaves no name behind.
    let size = serde_json::to_string(input).map_or(usize::MAX, |text| text.len());
    if size > MAX_DOCUMENT {
        return Err(classic::error_message(
            "InputDataError",
            format!("the registration is {size} bytes; the limit is {MAX_DOCUMENT}"),
        ));
    }
    Ok(Registration {
        username,
        password,
        input,
    })
}

fn state_error(status: &str) -> impl Fn(baton_sdk::state::Error) -> Value + '_ {
    move |e| classic::error_message(status, store::describe(e))
}

/// Asks the social graph for the user's node.
fn insert_graph_node(user_id: &str) -> Result<(), Value> {
    let reply = call(
        "social-graph-insert-user",
        &json!({"user_id": user_id}),
        None,
    );
    if succeeded(&reply) {
        return Ok(());
    }
    let status = reply["http_status_code"].as_u64().unwrap_or(0);
    let mut error =
        classic::error_message("SocialGraphInsertUserError", format!("Received: {status}"));
    error["errors"] = json!([reply]);
    Err(error)
}

/// Stores the user's document: the request's fields, the id, the salt and the hashed
/// password (the original stores any extra fields too).
fn store_user(registration: &Registration, user_id: &str) -> Outcome {
    let salt = password::salt(store::random());
    let mut user: Map<String, Value> = registration.input.clone();
    user.insert("user_id".into(), json!(user_id));
    user.insert("salt".into(), json!(salt));
    user.insert(
        "password".into(),
        json!(password::hash(registration.password, &salt)),
    );
    user.insert(
        "_id".into(),
        json!({"$oid": ids::object_id(store::random())}),
    );
    let user = Value::Object(user);
    let fail = state_error("UserServiceError");
    store::user(registration.username)
        .set(&user.to_string())
        .map_err(&fail)?;
    store::user_id(user_id)
        .set(registration.username)
        .map_err(&fail)?;
    Ok(json!({"status": "success", "user": user}))
}

/// `register-user`: in `username, first_name, last_name, password`.
pub fn register(input: &Input) -> Outcome {
    let registration = read_registration(input)?;
    let username = registration.username;
    let taken = || {
        classic::error_message(
            "UsernameAlreadyExistError",
            format!("username {username} already exist"),
        )
    };
    let claim = store::username_claim(username);
    let fail = state_error("UserServiceError");
    if claim.value().map_err(&fail)? > 0 {
        return Err(taken());
    }
    let user_id = ids::hex(ids::uuid4(store::random()));
    insert_graph_node(&user_id)?;
    if claim.add(1).map_err(&fail)? != 1 {
        return Err(taken());
    }
    store_user(&registration, &user_id)
}

/// `register-user-with-id`: as `register-user`, with the caller's `user_id` (DeathStarBench's
/// numeric ids); refused when the name or the id is taken.
pub fn register_with_id(input: &Input) -> Outcome {
    let registration = read_registration(input)?;
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(missing(Style::Message))?;
    let username = registration.username;
    let taken = || {
        classic::error_message(
            "UserAlreadyExistError",
            format!("username {username} or user_id {user_id} already exist"),
        )
    };
    let name_claim = store::username_claim(username);
    let id_claim = store::user_id_claim(user_id);
    let fail = state_error("UserServiceError");
    if name_claim.value().map_err(&fail)? > 0 || id_claim.value().map_err(&fail)? > 0 {
        return Err(taken());
    }
    if id_claim.add(1).map_err(&fail)? != 1 {
        return Err(taken());
    }
    insert_graph_node(user_id)?;
    if name_claim.add(1).map_err(&fail)? != 1 {
        return Err(taken());
    }
    store_user(&registration, user_id)
}

/// The stored document of `username`, if registered.
pub fn find(username: &str) -> Result<Option<Value>, String> {
    let values = store::user(username).get().map_err(store::describe)?;
    Ok(store::single(values).and_then(|doc| serde_json::from_str(&doc).ok()))
}

/// The username of `user_id`, if registered.
pub fn username_of(user_id: &str) -> Result<Option<String>, String> {
    let values = store::user_id(user_id).get().map_err(store::describe)?;
    Ok(store::single(values))
}

/// `get-user-id`: in `username`; out `user_id`.
pub fn get_user_id(input: &Input) -> Outcome {
    let username = fields::name(input, "username", MAX_NAME).map_err(missing(Style::Message))?;
    let user = find(username).map_err(|m| classic::error_message("UserServiceError", m))?;
    match user.as_ref().and_then(|u| u["user_id"].as_str()) {
        Some(user_id) => Ok(json!({"status": "success", "user_id": user_id})),
        None => Err(classic::error_message(
            "UsernameNotFoundError",
            format!("username {username} not found"),
        )),
    }
}

/// The secret login tokens are derived from, made on first use.
fn login_secret() -> Result<String, String> {
    let register = store::login_secret();
    if let Some(secret) = store::single(register.get().map_err(store::describe)?) {
        return Ok(secret);
    }
    register
        .set(&ids::object_id(store::random()))
        .map_err(store::describe)?;
    store::single(register.get().map_err(store::describe)?)
        .ok_or_else(|| "the login secret vanished".to_string())
}

/// The token `user-service-login` gives `user_id`, for pages that check a session.
pub fn token_of(user_id: &str) -> Result<String, String> {
    Ok(password::token(&login_secret()?, user_id))
}

/// `user-service-login`: in `username, password`; the password is checked against the
/// salted hash (the original only echoed its input). Out `user_id`, `username` and a token.
pub fn login(input: &Input) -> Outcome {
    let m = missing(Style::Message);
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    let given = fields::string(input, "password", MAX_TEXT).map_err(&m)?;
    let refused = || classic::error_message("LoginError", "incorrect username or password");
    let fail = |message| classic::error_message("LoginError", message);
    let user = find(username).map_err(fail)?.ok_or_else(refused)?;
    let (Some(user_id), Some(salt), Some(stored)) = (
        user["user_id"].as_str(),
        user["salt"].as_str(),
        user["password"].as_str(),
    ) else {
        return Err(refused());
    };
    if !password::matches(given, salt, stored) {
        return Err(refused());
    }
    let token = token_of(user_id).map_err(fail)?;
    Ok(json!({"status": "success", "user_id": user_id, "username": username, "token": token}))
}
