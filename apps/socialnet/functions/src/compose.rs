//! Composing a post, the front half: `compose-post-frontend` and the services it fans out to
//! (creator, unique id, media, text — and from text, URL shortening and mentions). Each
//! passes its part to a `compose-post-service-upload-*` function ([`crate::staging`]); every
//! call of one post carries the post's `req_id` in the affinity header.

use crate::call::{call, calls, succeeded};
use crate::reply::{Input, Outcome, Style, missing};
use crate::store::{self, MAX_NAME};
use serde_json::{Value, json};
use socialnet_logic::{classic, fields, ids, text};

/// The longest post text accepted (the post must fit one state value).
pub const MAX_TEXT: usize = 10_000;
/// The most URLs or mentions in one post.
const MAX_ITEMS: usize = 64;
/// The longest URL.
const MAX_URL: usize = 2048;

/// A fresh `uuid4().int`, as a bare JSON integer.
fn uuid_int() -> Value {
    let digits = ids::uuid4(store::random()).to_string();
    serde_json::from_str(&digits).expect("digits are a JSON number")
}

/// Fails with `status` and the failed replies unless every reply succeeded.
fn all_succeeded(replies: &[Value], status: &str) -> Result<(), Value> {
    let failed: Vec<Value> = replies.iter().filter(|r| !succeeded(r)).cloned().collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(classic::error_list(status, failed))
    }
}

/// A field that is a string or `null`.
fn optional_string(input: &Input, name: &str) -> Result<Value, String> {
    match fields::present(input, name)? {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s.len() <= MAX_NAME * 4 => Ok(Value::String(s.clone())),
        Value::String(_) => Err(format!("{name} is too long")),
        _ => Err(format!("{name} must be a string or null")),
    }
}

fn post_type(input: &Input) -> Result<Value, String> {
    match fields::present(input, "post_type")? {
        Value::Number(n) if n.as_i64().is_some() => Ok(Value::Number(n.clone())),
        _ => Err("post_type must be an integer".into()),
    }
}

/// `compose-post-frontend`: in `username, user_id, post_type, text, media_id, media_type`
/// (`media_id: null` for no media). The user must exist (the original did not check).
pub fn frontend(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let post_type = post_type(input).map_err(&m)?;
    let text = fields::string(input, "text", MAX_TEXT).map_err(&m)?;
    let media_id = optional_string(input, "media_id").map_err(&m)?;
    let media_type = optional_string(input, "media_type").map_err(&m)?;
    let req_id = uuid_int();
    let fail = |errors: Vec<Value>| json!({"status": "ComposePostFrontError", "req_id": req_id, "errors": errors});
    let owner = crate::users::username_of(user_id)
        .map_err(|e| fail(vec![classic::error_message("UserServiceError", e)]))?;
    if owner.as_deref() != Some(username) {
        return Err(fail(vec![classic::error_message(
            "UserIDNotExistError",
            format!("user_id {user_id} is not the id of username {username}"),
        )]));
    }
    let key = req_id.to_string();
    let replies = calls(
        &[
            (
                "user-service-upload-creator-with-user-id",
                json!({"req_id": req_id, "user_id": user_id, "username": username}),
            ),
            (
                "unique-id-service-upload-unique-id",
                json!({"req_id": req_id, "post_type": post_type}),
            ),
            (
                "media-service-upload-media",
                json!({"req_id": req_id, "media_id": media_id, "media_type": media_type}),
            ),
            (
                "text-service-upload-text",
                json!({"req_id": req_id, "text": text}),
            ),
        ],
        Some(&key),
    );
    let failed: Vec<Value> = replies.into_iter().filter(|r| !succeeded(r)).collect();
    if !failed.is_empty() {
        // Every branch has answered, so nothing more arrives for this post: drop its parts.
        let _ = store::staging(&key).delete();
        return Err(fail(failed));
    }
    Ok(json!({"status": "success", "req_id": req_id, "username": username}))
}

/// `user-service-upload-creator-with-user-id`: in `req_id, user_id, username`.
pub fn upload_creator(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    let body = json!({"req_id": input["req_id"], "user_id": user_id, "username": username});
    let reply = call("compose-post-service-upload-creator", &body, Some(&req_id));
    all_succeeded(&[reply], "UploadCreatorError")?;
    Ok(json!({"status": "success", "creator": {"username": username, "user_id": user_id}}))
}

/// `unique-id-service-upload-unique-id`: in `req_id, post_type`; makes the post's id.
pub fn upload_unique_id(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let post_type = post_type(input).map_err(&m)?;
    let post_id = uuid_int();
    let body = json!({"req_id": input["req_id"], "post_type": post_type, "post_id": post_id});
    let reply = call(
        "compose-post-service-upload-unique-id",
        &body,
        Some(&req_id),
    );
    all_succeeded(&[reply], "UniqueIdServiceUploadUniqueIdError")?;
    Ok(json!({"status": "success", "post_id": post_id}))
}

/// `media-service-upload-media`: in `req_id, media_id, media_type`.
pub fn upload_media(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let media_id = optional_string(input, "media_id").map_err(&m)?;
    let media_type = optional_string(input, "media_type").map_err(&m)?;
    let body = json!({"req_id": input["req_id"], "media_id": media_id, "media_type": media_type});
    let reply = call("compose-post-service-upload-media", &body, Some(&req_id));
    all_succeeded(&[reply], "MediaServiceUploadMediaError")?;
    Ok(json!({"status": "success", "media_id": media_id}))
}

/// `text-service-upload-text`: in `req_id, text`. Shortens the URLs first, then passes the
/// mentions and the rewritten text on at once.
pub fn upload_text(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let original = fields::string(input, "text", MAX_TEXT).map_err(&m)?;
    let status = "TextServiceUploadTextError";
    let urls = text::urls(original);
    let shortened = call(
        "url-shorten-service-upload-urls",
        &json!({"req_id": input["req_id"], "urls": urls}),
        Some(&req_id),
    );
    all_succeeded(std::slice::from_ref(&shortened), status)?;
    let short: Vec<String> = shortened["urls"]
        .as_array()
        .map(|docs| {
            docs.iter()
                .filter_map(|d| d["shortened_url"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let rewritten = text::replace_urls(original, &short);
    let mentions = text::mentions(original);
    let replies = calls(
        &[
            (
                "user-mention-service-upload-user-mentions",
                json!({"req_id": input["req_id"], "usernames": mentions}),
            ),
            (
                "compose-post-service-upload-text",
                json!({"req_id": input["req_id"], "text": rewritten}),
            ),
        ],
        Some(&req_id),
    );
    all_succeeded(&replies, status)?;
    Ok(json!({"status": "success", "mentions": mentions, "urls": shortened, "text": rewritten}))
}

/// `url-shorten-service-upload-urls`: in `req_id, urls`; each URL gets
/// `http://short-u.rl/<10 letters>`, kept in the state.
pub fn upload_urls(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let urls = fields::strings(input, "urls", MAX_URL, MAX_ITEMS).map_err(&m)?;
    let status = "UrlShortenServiceUploadUrlsError";
    let codes: Vec<String> = urls
        .iter()
        .map(|_| ids::short_code(store::random()))
        .collect();
    let docs: Vec<Value> = urls
        .iter()
        .zip(&codes)
        .map(|(url, code)| {
            json!({"expanded_url": url, "shortened_url": format!("http://short-u.rl/{code}")})
        })
        .collect();
    let fail = |errors: Vec<Value>| json!({"status": status, "errors": errors, "urls": docs});
    for (url, code) in urls.iter().zip(&codes) {
        store::short_url(code)
            .set(url)
            .map_err(|e| fail(vec![json!(store::describe(e))]))?;
    }
    let reply = call(
        "compose-post-service-upload-urls",
        &json!({"req_id": input["req_id"], "url_docs": docs}),
        Some(&req_id),
    );
    if !succeeded(&reply) {
        return Err(fail(vec![reply]));
    }
    Ok(json!({"status": "success", "urls": docs}))
}

/// `user-mention-service-upload-user-mentions`: in `req_id, usernames`; unknown names are
/// dropped and repeated ones kept once, as the original's `$in` query did.
pub fn upload_user_mentions(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let req_id = fields::id(input, "req_id").map_err(&m)?;
    let usernames = fields::strings(input, "usernames", MAX_NAME, MAX_ITEMS).map_err(&m)?;
    let status = "UserMentionServiceUploadUserMentionsError";
    let mut mentions: Vec<Value> = Vec::new();
    for username in &usernames {
        if mentions.iter().any(|m| m["username"] == username.as_str()) {
            continue;
        }
        let user = crate::users::find(username)
            .map_err(|e| classic::error_list(status, vec![json!(e)]))?;
        if let Some(user_id) = user.as_ref().and_then(|u| u["user_id"].as_str()) {
            mentions.push(json!({"username": username, "user_id": user_id}));
        }
    }
    let reply = call(
        "compose-post-service-upload-user-mentions",
        &json!({"req_id": input["req_id"], "user_mentions": mentions}),
        Some(&req_id),
    );
    if !succeeded(&reply) {
        return Err(json!({"status": status, "errors": [reply], "user_mentions": mentions}));
    }
    Ok(json!({"status": "success", "user_mentions": mentions}))
}
