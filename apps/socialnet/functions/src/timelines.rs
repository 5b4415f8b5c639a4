//! User timelines (a user's own posts) and home timelines (the posts of those they follow,
//! and those that mention them), as DeathStarBench has them: register maps from a key that
//! sorts by time (`timeline::key`) to the time, read newest first in `[start, stop)` pages,
//! one page of the map each (the rest is not read).

use crate::call::{call_passing, raw_field, read as read_reply};
use crate::reply::{Input, Outcome, Style, TextOutcome, missing};
use crate::store::{self, MAX_NAME};
use baton_sdk::state::{Batch, RegisterMap};
use serde_json::{Value, json};
use socialnet_logic::timeline;
use socialnet_logic::{classic, fields};

fn time(input: &Input) -> Result<f64, Value> {
    match fields::present(input, "timestamp").map_err(missing(Style::List))? {
        Value::Number(n) => n
            .as_f64()
            .filter(|t| t.is_finite() && (0.0..timeline::MAX_TIMESTAMP).contains(t))
            .ok_or_else(|| {
                Style::List.error(
                    "MissingFieldError",
                    "timestamp must be a number of seconds from 0 to 1e18",
                )
            }),
        _ => Err(Style::List.error("MissingFieldError", "timestamp must be a number")),
    }
}

/// `user-timeline-service-write-user-timeline`: in `req_id, post_id, creator_id, timestamp`.
pub fn write_user(input: &Input) -> Outcome {
    let m = missing(Style::List);
    fields::id(input, "req_id").map_err(&m)?;
    let post_id = fields::id(input, "post_id").map_err(&m)?;
    let creator_id = fields::name(input, "creator_id", MAX_NAME).map_err(&m)?;
    let at = time(input)?;
    store::user_timeline(creator_id)
        .set(&timeline::key(at, &post_id), &at.to_string())
        .map_err(|e| {
            classic::error_list(
                "UserTimelineServiceWriteUserTimelineError",
                vec![json!(store::describe(e))],
            )
        })?;
    Ok(
        json!({"status": "success", "req_id": input["req_id"], "user_id": creator_id,
              "post_id": post_id}),
    )
}

/// `home-timeline-service-write-home-timeline`: in `req_id, post_id, user_id, timestamp,
/// user_mentions_id`; writes the post into the home timeline of every follower of the author
/// and of everyone mentioned.
pub fn write_home(input: &Input) -> Outcome {
    let m = missing(Style::List);
    fields::id(input, "req_id").map_err(&m)?;
    let post_id = fields::id(input, "post_id").map_err(&m)?;
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let mentioned = fields::strings(input, "user_mentions_id", MAX_NAME, 64).map_err(&m)?;
    let at = time(input)?;
    let (key, at) = (timeline::key(at, &post_id), at.to_string());
    let fail = |e: String| {
        classic::error_list("HomeTimelineServiceWriteHomeTimelineError", vec![json!(e)])
    };
    let mut readers: Vec<String> = crate::graph::list(&store::followers(user_id))
        .map_err(fail)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    readers.extend(mentioned);
    readers.sort();
    readers.dedup();
    // One call for every reader: the fan-out is one pass to the node's log.
    let mut batch = Batch::default();
    for reader in &readers {
        batch.map_set(&store::home_timeline(reader), &key, &at);
    }
    for result in batch.apply() {
        result.map_err(|e| fail(store::describe(e)))?;
    }
    Ok(
        json!({"status": "success", "req_id": input["req_id"], "post_id": post_id,
              "written": readers.len()}),
    )
}

/// Reads `[start, stop)` of the timeline `map` of `input`'s user, with the posts (passed on
/// as `post-storage-service-read-posts` wrote them).
fn read(input: &Input, map: fn(&str) -> RegisterMap, status: &str) -> TextOutcome {
    let m = missing(Style::List);
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let start = fields::count(input, "start").map_err(&m)?;
    let stop = fields::count(input, "stop").map_err(&m)?;
    timeline::check_bounds(start, stop).map_err(&m)?;
    let fail = |e: String| classic::error_list(status, vec![json!(e)]);
    let post_ids: Vec<String> = map(user_id)
        .page(start, stop, true)
        .map_err(|e| fail(store::describe(e)))?
        .into_iter()
        .filter_map(|e| timeline::post_of(&e.key).map(str::to_owned))
        .collect();
    let function = "post-storage-service-read-posts";
    let reply =
        call_passing(function, &json!({"post_ids": post_ids})).map_err(|e| fail_with(status, e))?;
    let Some(posts) = raw_field(&reply.body, "posts") else {
        return Err(fail_with(status, read_reply(function, Ok(reply))));
    };
    Ok(format!(
        r#"{{"status":"success","post_ids":{post_ids},"posts":{posts}}}"#,
        post_ids = json!(post_ids),
        posts = posts.get()
    ))
}

fn fail_with(status: &str, error: Value) -> Value {
    classic::error_list(status, vec![error])
}

/// `user-timeline-service-read-user-timeline`: in `user_id, start, stop`.
pub fn read_user(input: &Input) -> TextOutcome {
    read(
        input,
        store::user_timeline,
        "UserTimelineServiceReadUserTimelineError",
    )
}

/// `home-timeline-service-read-home-timeline`: in `user_id, start, stop`.
pub fn read_home(input: &Input) -> TextOutcome {
    read(
        input,
        store::home_timeline,
        "HomeTimelineServiceReadHomeTimelineError",
    )
}

/// A timeline's front end: checks the fields and reads through `service`, whose posts come
/// newest first (the page is read from the timeline's newest key), so they are passed on as
/// written. A failure downstream is answered with 200 and `status` (as the original's
/// `user-timeline-read-frontend` does), not an exit.
fn frontend(input: &Input, service: &str, status: &str) -> TextOutcome {
    let m = missing(Style::List);
    let user_id = fields::name(input, "user_id", MAX_NAME).map_err(&m)?;
    let start = fields::count(input, "start").map_err(&m)?;
    let stop = fields::count(input, "stop").map_err(&m)?;
    let body = json!({"user_id": user_id, "start": start, "stop": stop});
    let reply = match call_passing(service, &body) {
        Ok(reply) => reply,
        Err(error) => return Ok(fail_with(status, error).to_string()),
    };
    match raw_field(&reply.body, "posts") {
        Some(posts) => Ok(format!(r#"{{"status":"success","posts":{}}}"#, posts.get())),
        None => Ok(fail_with(status, read_reply(service, Ok(reply))).to_string()),
    }
}

/// `user-timeline-read-frontend`: in `user_id, start, stop`.
pub fn user_frontend(input: &Input) -> TextOutcome {
    frontend(
        input,
        "user-timeline-service-read-user-timeline",
        "UserTimelineReadFrontendError",
    )
}

/// `home-timeline-read-frontend`: in `user_id, start, stop`.
pub fn home_frontend(input: &Input) -> TextOutcome {
    frontend(
        input,
        "home-timeline-service-read-home-timeline",
        "HomeTimelineReadFrontendError",
    )
}
