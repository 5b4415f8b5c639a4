//! Composing a post, the back half: six `compose-post-service-upload-*` functions each stage
//! one part of the post, and the one whose part completes it calls
//! `compose-post-service-compose-and-upload`, which stores the post and writes the
//! timelines.
//!
//! The staging area is one register map per post (`compose/<req_id>`), one key per part.
//! Its node-local version counts the changes made to it on this node, and a part is staged
//! and counted in one step: the call that brings the version to [`PARTS`] is the one that
//! composes, exactly once per post on a node. In a cluster every call of a post carries the
//! post's `req_id` in the affinity header, so a gateway balancing by it sends them all to one
//! worker and the count is never split across replicas.

use crate::call::{call, succeeded};
use crate::reply::{Input, Outcome, Style, missing};
use crate::store::{self, MAX_NAME};
use serde_json::{Value, json};
use socialnet_logic::{classic, fields};

/// The parts of a post (the original's `NUM_COMPONENTS`).
pub const PARTS: u64 = 6;

const ALL_PARTS: [&str; 6] = [
    "creator",
    "unique_id",
    "media",
    "urls",
    "user_mentions",
    "text",
];

/// Stages `part` = `value` of post `req_id`; composes the post when it was the last part.
fn stage(input: &Input, status: &str, part: &str, value: &str) -> Outcome {
    let req_id = fields::id(input, "req_id").map_err(missing(Style::List))?;
    let fail = |e: Value| classic::error_list(status, vec![e]);
    let version = store::staging(&req_id)
        .set(part, value)
        .map_err(|e| fail(json!({"message": store::describe(e)})))?;
    if version != PARTS {
        return Ok(json!({"status": "success", "req_id": req_id}));
    }
    let composed = call(
        "compose-post-service-compose-and-upload",
        &json!({"req_id": input["req_id"]}),
        Some(&req_id),
    );
    if !succeeded(&composed) {
        return Err(fail(composed));
    }
    Ok(json!({"status": "success", "req_id": req_id, "compose_and_upload": composed}))
}

/// `compose-post-service-upload-creator`: in `req_id, user_id, username`.
pub fn creator(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    let value = json!({"user_id": user_id, "username": username}).to_string();
    stage(
        input,
        "ComposePostServiceUploadCreatorError",
        "creator",
        &value,
    )
}

/// `compose-post-service-upload-unique-id`: in `req_id, post_id, post_type`.
pub fn unique_id(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let post_id = fields::id(input, "post_id").map_err(&m)?;
    let post_type = fields::present(input, "post_type").map_err(&m)?;
    let value = json!({"post_id": post_id, "post_type": post_type}).to_string();
    stage(
        input,
        "ComposePostServiceUploadUniqueIdError",
        "unique_id",
        &value,
    )
}

/// `compose-post-service-upload-media`: in `req_id, media_id, media_type`.
pub fn media(input: &Input) -> Outcome {
    let m = missing(Style::List);
    let media_id = fields::present(input, "media_id").map_err(&m)?;
    let media_type = fields::present(input, "media_type").map_err(&m)?;
    let value = if media_id.is_null() {
        json!({})
    } else {
        json!({"media_id": media_id, "media_type": media_type})
    };
    stage(
        input,
        "ComposePostServiceUploadMediaError",
        "media",
        &value.to_string(),
    )
}

fn list(input: &Input, name: &str) -> Result<String, Value> {
    match fields::present(input, name).map_err(missing(Style::List))? {
        list @ Value::Array(_) => Ok(list.to_string()),
        _ => Err(Style::List.error("MissingFieldError", format!("{name} must be a list"))),
    }
}

/// `compose-post-service-upload-urls`: in `req_id, url_docs`.
pub fn urls(input: &Input) -> Outcome {
    let value = list(input, "url_docs")?;
    stage(input, "ComposePostServiceUploadUrlsError", "urls", &value)
}

/// `compose-post-service-upload-user-mentions`: in `req_id, user_mentions`.
pub fn user_mentions(input: &Input) -> Outcome {
    let value = list(input, "user_mentions")?;
    stage(
        input,
        "ComposePostServiceUploadUserMentionsError",
        "user_mentions",
        &value,
    )
}

/// `compose-post-service-upload-text`: in `req_id, text`.
pub fn text(input: &Input) -> Outcome {
    let text = fields::string(input, "text", crate::compose::MAX_TEXT * 2)
        .map_err(missing(Style::List))?;
    stage(input, "ComposePostServiceUploadTextError", "text", text)
}

/// `compose-post-service-compose-and-upload`: in `req_id`. Builds the post from its staged
/// parts, then stores it and writes the author's and the followers' timelines at once.
pub fn compose_and_upload(input: &Input) -> Outcome {
    let req_id = fields::id(input, "req_id").map_err(missing(Style::List))?;
    let status = "ComposePostServiceComposeAndUploadError";
    let fail = |message: String| classic::error_list(status, vec![json!(message)]);
    let staging = store::staging(&req_id);
    // Each part once, by name; every part must be there before anything is built.
    let parts: std::collections::BTreeMap<String, String> = staging
        .entries()
        .map_err(|e| fail(store::describe(e)))?
        .into_iter()
        .filter_map(|e| Some((e.key, store::single(e.values)?)))
        .collect();
    if let Some(name) = ALL_PARTS.iter().find(|name| !parts.contains_key(**name)) {
        return Err(fail(format!("the post's {name} was never staged")));
    }
    let part = |name: &str| parts[name].clone();
    let parse = |name: &str| -> Result<Value, Value> {
        serde_json::from_str(&parts[name]).map_err(|e| fail(format!("{name}: {e}")))
    };
    let creator = parse("creator")?;
    let unique = parse("unique_id")?;
    let mentions = parse("user_mentions")?;
    let post_id = unique["post_id"].as_str().unwrap_or_default().to_string();
    let creator_id = creator["user_id"].clone();
    let now = store::now();
    let post = json!({
        "req_id": req_id,
        "post_id": post_id,
        "creator": creator,
        "text": part("text"),
        "timestamp": now.floor() as u64,
        "media": parse("media")?,
        "urls": parse("urls")?,
        "user_mentions": mentions,
    });
    let mention_ids: Vec<Value> = mentions
        .as_array()
        .map(|list| list.iter().map(|m| m["user_id"].clone()).collect())
        .unwrap_or_default();
    let replies = crate::call::calls(
        &[
            (
                "post-storage-service-store-post",
                json!({"req_id": req_id, "post": post}),
            ),
            (
                "user-timeline-service-write-user-timeline",
                json!({"req_id": req_id, "post_id": post_id, "creator_id": creator_id,
                       "timestamp": now}),
            ),
            (
                "home-timeline-service-write-home-timeline",
                json!({"req_id": req_id, "post_id": post_id, "user_id": creator_id,
                       "timestamp": now, "user_mentions_id": mention_ids}),
            ),
        ],
        None,
    );
    let _ = staging.delete();
    let failed: Vec<Value> = replies.into_iter().filter(|r| !succeeded(r)).collect();
    if !failed.is_empty() {
        return Err(classic::error_list(status, failed));
    }
    Ok(json!({"status": "success", "req_id": input["req_id"], "post": post}))
}
