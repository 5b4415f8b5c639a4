//! Post storage: a post is one register holding its JSON.

use crate::reply::{Input, Outcome, Style, TextOutcome, missing};
use crate::store;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use socialnet_logic::{classic, fields, timeline::MAX_PAGE};

/// `post-storage-service-store-post`: in `req_id, post` (with a `post_id`).
pub fn store(input: &Input) -> Outcome {
    let m = missing(Style::List);
    fields::id(input, "req_id").map_err(&m)?;
    let post = fields::present(input, "post").map_err(&m)?;
    let status = "PostStorageServiceStorePostError";
    let Some(post_id) = post.get("post_id").and_then(Value::as_str) else {
        return Err(m("post must be an object with a post_id string".into()));
    };
    store::post(post_id)
        .set(&post.to_string())
        .map_err(|e| classic::error_list(status, vec![json!(store::describe(e))]))?;
    Ok(json!({"status": "success", "req_id": post["req_id"]}))
}

/// The stored posts of `post_ids`, in that order, as one JSON array: each post's text as
/// stored (checked to be JSON, not parsed into a tree); unknown ids are skipped.
pub fn load(post_ids: &[String]) -> Result<String, String> {
    let mut posts = Vec::with_capacity(post_ids.len());
    for post_id in post_ids {
        let values = store::post(post_id).get().map_err(store::describe)?;
        if let Some(post) = store::single(values).and_then(|p| RawValue::from_string(p).ok()) {
            posts.push(post);
        }
    }
    serde_json::to_string(&posts).map_err(|e| e.to_string())
}

/// `post-storage-service-read-posts`: in `post_ids`.
pub fn read(input: &Input) -> TextOutcome {
    let post_ids =
        fields::strings(input, "post_ids", 64, MAX_PAGE as usize).map_err(missing(Style::List))?;
    let posts = load(&post_ids)
        .map_err(|e| classic::error_list("PostStorageServiceReadPostsError", vec![json!(e)]))?;
    Ok(format!(r#"{{"status":"success","posts":{posts}}}"#))
}
