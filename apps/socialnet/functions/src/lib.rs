//! DeathStarBench's social network as Baton functions, with DeathStarFaaS's names and JSON
//! interface. One component serves them all: the deployment's `SOCIALNET_FUNCTION` names the
//! function an instance is (`apps/socialnet/baton.toml` deploys it once per name), so the
//! node compiles it once and every function shares the warm code.
//!
//! Replies follow the OpenFaaS classic watchdog, as the original's Python functions did:
//! 200 with one line of JSON, or 500 with `exit status 1\n<json>\n`.

mod call;
mod compose;
mod graph;
mod media;
mod posts;
mod reply;
mod staging;
mod store;
mod timelines;
mod users;
mod web;

use baton_sdk::{Request, Response};
use reply::{Function, Style};

/// Every function the component can be, by the name it is deployed under.
const FUNCTIONS: &[Function] = &[
    Function::json("register-user", Style::Message, users::register),
    Function::json(
        "register-user-with-id",
        Style::Message,
        users::register_with_id,
    ),
    Function::json("get-user-id", Style::Message, users::get_user_id),
    Function::json("user-service-login", Style::Message, users::login),
    Function::json(
        "social-graph-insert-user",
        Style::Message,
        graph::insert_user,
    ),
    Function::json("social-graph-follow", Style::Message, graph::follow),
    Function::json("social-graph-unfollow", Style::Message, graph::unfollow),
    Function::json(
        "social-graph-get-followers",
        Style::Message,
        graph::get_followers,
    ),
    Function::json(
        "social-graph-get-followees",
        Style::Message,
        graph::get_followees,
    ),
    Function::json(
        "social-graph-follow-with-username",
        Style::Message,
        graph::follow_with_username,
    ),
    Function::json(
        "social-graph-unfollow-with-username",
        Style::Message,
        graph::unfollow_with_username,
    ),
    Function::json("media-front-upload-media", Style::Message, media::upload),
    Function::json("compose-post-frontend", Style::List, compose::frontend),
    Function::json(
        "user-service-upload-creator-with-user-id",
        Style::List,
        compose::upload_creator,
    ),
    Function::json(
        "unique-id-service-upload-unique-id",
        Style::List,
        compose::upload_unique_id,
    ),
    Function::json(
        "media-service-upload-media",
        Style::List,
        compose::upload_media,
    ),
    Function::json(
        "text-service-upload-text",
        Style::List,
        compose::upload_text,
    ),
    Function::json(
        "url-shorten-service-upload-urls",
        Style::List,
        compose::upload_urls,
    ),
    Function::json(
        "user-mention-service-upload-user-mentions",
        Style::List,
        compose::upload_user_mentions,
    ),
    Function::json(
        "compose-post-service-upload-creator",
        Style::List,
        staging::creator,
    ),
    Function::json(
        "compose-post-service-upload-unique-id",
        Style::List,
        staging::unique_id,
    ),
    Function::json(
        "compose-post-service-upload-media",
        Style::List,
        staging::media,
    ),
    Function::json(
        "compose-post-service-upload-urls",
        Style::List,
        staging::urls,
    ),
    Function::json(
        "compose-post-service-upload-user-mentions",
        Style::List,
        staging::user_mentions,
    ),
    Function::json(
        "compose-post-service-upload-text",
        Style::List,
        staging::text,
    ),
    Function::json(
        "compose-post-service-compose-and-upload",
        Style::List,
        staging::compose_and_upload,
    ),
    Function::json("post-storage-service-store-post", Style::List, posts::store),
    Function::text("post-storage-service-read-posts", Style::List, posts::read),
    Function::json(
        "user-timeline-service-write-user-timeline",
        Style::List,
        timelines::write_user,
    ),
    Function::text(
        "user-timeline-service-read-user-timeline",
        Style::List,
        timelines::read_user,
    ),
    Function::text(
        "user-timeline-read-frontend",
        Style::List,
        timelines::user_frontend,
    ),
    Function::json(
        "home-timeline-service-write-home-timeline",
        Style::List,
        timelines::write_home,
    ),
    Function::text(
        "home-timeline-service-read-home-timeline",
        Style::List,
        timelines::read_home,
    ),
    Function::text(
        "home-timeline-read-frontend",
        Style::List,
        timelines::home_frontend,
    ),
    Function::raw("ds-net", web::serve),
];

/// The variable naming which function an instance is.
const ROLE_VARIABLE: &str = "SOCIALNET_FUNCTION";

fn handle(request: Request) -> Response {
    let role = std::env::var(ROLE_VARIABLE).unwrap_or_default();
    match FUNCTIONS.iter().find(|f| f.name == role) {
        Some(function) => function.serve(request),
        None => Response::text(
            500,
            format!(
                "this component serves the social network's functions: set {ROLE_VARIABLE} to \
                 one of {} (got {role:?})\n",
                FUNCTIONS
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

baton_sdk::http_handler!(handle);
