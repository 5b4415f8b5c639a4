//! The social graph: who follows whom, with when.
//!
//! A node's followers and followees are register maps from the other user's id to the follow
//! time; a reply lists them as the original's Mongo documents did, as `{user_id, timestamp}`
//! objects in the order they were made. Unlike the original, following or unfollowing a user
//! who has no node is refused (`FollowError` / `UnfollowError`) rather than half-applied.

use crate::call::call_raw;
use crate::reply::{Input, Outcome, Style, missing};
use crate::store::{self, MAX_NAME};
use baton_sdk::state::RegisterMap;
use serde_json::{Value, json};
use socialnet_logic::{classic, fields, password};

/// Whether `user_id` has a node.
fn exists(user_id: &str) -> Result<bool, String> {
    Ok(store::graph_node(user_id)
        .value()
        .map_err(store::describe)?
        > 0)
}

/// A follow list as `[{user_id, timestamp}]`, oldest first.
pub fn list(map: &RegisterMap) -> Result<Vec<(String, f64)>, String> {
    let mut entries: Vec<(String, f64)> = map
        .entries()
        .map_err(store::describe)?
        .into_iter()
        .filter_map(|entry| {
            let time = entry
                .values
                .iter()
                .filter_map(|v| v.parse::<f64>().ok())
                .reduce(f64::max)?;
            Some((entry.key, time))
        })
        .collect();
    entries.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(entries)
}

fn as_json(entries: Vec<(String, f64)>) -> Value {
    entries
        .into_iter()
        .map(|(user_id, timestamp)| json!({"user_id": user_id, "timestamp": timestamp}))
        .collect()
}

/// A node as the original's Mongo document.
fn node(user_id: &str) -> Result<Value, String> {
    Ok(json!({
        "_id": {"$oid": &password::hash(user_id, "social-graph")[..24]},
        "user_id": user_id,
        "followers": as_json(list(&store::followers(user_id))?),
        "followees": as_json(list(&store::followees(user_id))?),
    }))
}

/// `social-graph-insert-user`: in `user_id`; makes the user's (empty) node.
pub fn insert_user(input: &Input) -> Outcome {
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(missing(Style::Message))?;
    let version = store::graph_node(user_id)
        .add(1)
        .map_err(|e| classic::error_message("SocialGraphInsertUserError", store::describe(e)))?;
    if version != 1 {
        return Err(classic::error_message(
            "UserIDAlreadyExistError",
            format!("user_id {user_id} already exists"),
        ));
    }
    Ok(json!({"status": "success"}))
}

fn pair(input: &Input) -> Result<(&str, &str), Value> {
    let m = missing(Style::Message);
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let followee_id = fields::name(input, "followee_id", MAX_NAME).map_err(&m)?;
    Ok((user_id, followee_id))
}

fn both_nodes(user_id: &str, followee_id: &str, status: &str) -> Outcome {
    let fail = |m| classic::error_message(status, m);
    Ok(json!({
        "status": "success",
        "user": node(user_id).map_err(fail)?,
        "followee": node(followee_id).map_err(fail)?,
    }))
}

/// `social-graph-follow`: in `user_id, followee_id`.
pub fn follow(input: &Input) -> Outcome {
    let (user_id, followee_id) = pair(input)?;
    let refused = || {
        classic::error_message(
            "FollowError",
            "Either user_id or followee_id do not exist or user_id already follows followee_id",
        )
    };
    let fail = |m| classic::error_message("FollowError", m);
    if !exists(user_id).map_err(fail)? || !exists(followee_id).map_err(fail)? {
        return Err(refused());
    }
    let followees = store::followees(user_id);
    if !followees
        .get(followee_id)
        .map_err(|e| fail(store::describe(e)))?
        .is_empty()
    {
        return Err(refused());
    }
    let now = store::now().to_string();
    followees
        .set(followee_id, &now)
        .and_then(|_| store::followers(followee_id).set(user_id, &now))
        .map_err(|e| fail(store::describe(e)))?;
    both_nodes(user_id, followee_id, "FollowError")
}

/// `social-graph-unfollow`: in `user_id, followee_id`; unfollowing someone not followed
/// succeeds, as in the original.
pub fn unfollow(input: &Input) -> Outcome {
    let (user_id, followee_id) = pair(input)?;
    let fail = |m| classic::error_message("UnfollowError", m);
    if !exists(user_id).map_err(fail)? {
        return Err(fail("user_id does not exist".into()));
    }
    if !exists(followee_id).map_err(fail)? {
        return Err(fail("followee_id does not exist".into()));
    }
    store::followees(user_id)
        .remove(followee_id)
        .and_then(|_| store::followers(followee_id).remove(user_id))
        .map_err(|e| fail(store::describe(e)))?;
    both_nodes(user_id, followee_id, "UnfollowError")
}

fn get(input: &Input, key: &str, map: fn(&str) -> RegisterMap) -> Outcome {
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(missing(Style::Message))?;
    let fail = |m| classic::error_message("UserIDNotExistError", m);
    if !exists(user_id).map_err(fail)? {
        return Err(fail(format!(
            "user_id{user_id} does not exist in social graph"
        )));
    }
    let entries = list(&map(user_id)).map_err(fail)?;
    Ok(json!({"status": "success", key: as_json(entries)}))
}

/// `social-graph-get-followers`: in `user_id`.
pub fn get_followers(input: &Input) -> Outcome {
    get(input, "followers", store::followers)
}

/// `social-graph-get-followees`: in `user_id`.
pub fn get_followees(input: &Input) -> Outcome {
    get(input, "followees", store::followees)
}

/// Resolves both names with `get-user-id` (at once), then calls `function` and passes its
/// reply on verbatim, as the original's `*-with-username` functions do.
fn with_username(input: &Input, function: &str) -> Outcome {
    let m = missing(Style::Message);
    let username = fields::name(input, "username", MAX_NAME).map_err(&m)?;
    let followee_name = fields::name(input, "followee_name", MAX_NAME).map_err(&m)?;
    let fail = |m: String| classic::error_message("FollowError", m);
    let lookups = baton_sdk::invoke_all(
        &[
            (
                "get-user-id",
                json!({"username": username}).to_string().into_bytes(),
            ),
            (
                "get-user-id",
                json!({"username": followee_name}).to_string().into_bytes(),
            ),
        ],
        &[("content-type", "application/json")],
    );
    let mut ids = Vec::new();
    for (reply, whose) in lookups.into_iter().zip(["username", "followee_name"]) {
        let reply = reply.map_err(|e| fail(format!("Failed to get {whose}'s user_id. {e}")))?;
        let id = (reply.status == 200)
            .then(|| serde_json::from_slice::<Value>(&reply.body).ok())
            .flatten()
            .and_then(|v| v["user_id"].as_str().map(str::to_string));
        match id {
            Some(id) => ids.push(id),
            None => {
                return Err(fail(format!(
                    "Failed to get {whose}'s user_id. {}",
                    classic::inner_message(&reply.body)
                )));
            }
        }
    }
    let body = json!({"user_id": ids[0], "followee_id": ids[1]});
    let reply = call_raw(function, &body).map_err(|e| fail(format!("{function} failed. {e}")))?;
    if reply.status != 200 {
        return Err(fail(format!(
            "{function} failed. {}",
            classic::inner_message(&reply.body)
        )));
    }
    serde_json::from_slice(&reply.body)
        .map_err(|e| fail(format!("{function} answered something not JSON: {e}")))
}

/// `social-graph-follow-with-username`: in `username, followee_name`.
pub fn follow_with_username(input: &Input) -> Outcome {
    with_username(input, "social-graph-follow")
}

/// `social-graph-unfollow-with-username`: in `username, followee_name`.
pub fn unfollow_with_username(input: &Input) -> Outcome {
    with_username(input, "social-graph-unfollow")
}
