//! The social network (`apps/socialnet`) deployed with `baton deploy -f` onto a real node, and
//! used as DeathStarFaaS's clients use it: JSON bodies (on GET too), classic-watchdog replies.

use crate::harness::{Node, Options, Reply};
use futures_util::future::join_all;
use serde_json::{Value, json};

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../apps/socialnet/baton.toml"
);

/// Every function the manifest deploys.
const FUNCTIONS: [&str; 35] = [
    "register-user",
    "register-user-with-id",
    "get-user-id",
    "user-service-login",
    "social-graph-insert-user",
    "social-graph-follow",
    "social-graph-get-followers",
    "social-graph-get-followees",
    "social-graph-unfollow",
    "social-graph-unfollow-with-username",
    "social-graph-follow-with-username",
    "media-front-upload-media",
    "compose-post-frontend",
    "user-service-upload-creator-with-user-id",
    "unique-id-service-upload-unique-id",
    "media-service-upload-media",
    "text-service-upload-text",
    "url-shorten-service-upload-urls",
    "user-mention-service-upload-user-mentions",
    "compose-post-service-upload-creator",
    "compose-post-service-upload-unique-id",
    "compose-post-service-upload-media",
    "compose-post-service-upload-urls",
    "compose-post-service-upload-user-mentions",
    "compose-post-service-upload-text",
    "compose-post-service-compose-and-upload",
    "post-storage-service-store-post",
    "post-storage-service-read-posts",
    "user-timeline-service-write-user-timeline",
    "user-timeline-service-read-user-timeline",
    "user-timeline-read-frontend",
    "home-timeline-service-write-home-timeline",
    "home-timeline-service-read-home-timeline",
    "home-timeline-read-frontend",
    "ds-net",
];

/// A node with the application deployed, and its data directory.
pub struct Deployed {
    pub node: Node,
    _dir: tempfile::TempDir,
}

impl Deployed {
    pub fn app(&self) -> App<'_> {
        App { node: &self.node }
    }
}

/// The application as its clients call it, through `node` (a node or a cluster gateway).
pub struct App<'a> {
    pub node: &'a Node,
}

/// A node with the application deployed by its manifest.
pub async fn start() -> Deployed {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), Options::default());
    let out = node.cli(&["deploy", "-f", MANIFEST]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.names().await.len(), FUNCTIONS.len());
    Deployed { node, _dir: dir }
}

impl App<'_> {
    /// Calls `function` with a JSON body, as DeathStarFaaS's clients do (a GET with a body).
    pub async fn call(&self, function: &str, body: Value) -> Reply {
        self.node
            .send_as_client(
                "GET",
                &format!("/function/{function}"),
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
    }

    /// A successful call's JSON.
    pub async fn ok(&self, function: &str, body: Value) -> Value {
        let reply = self.call(function, body).await;
        assert_eq!(reply.status, 200, "{function}: {}", reply.text());
        let text = reply.text();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
        reply.json()
    }

    /// A failed call's JSON, checked to be in the classic watchdog's format.
    pub async fn fails(&self, function: &str, body: Value) -> Value {
        let reply = self.call(function, body).await;
        classic_failure(function, &reply)
    }

    pub async fn register(&self, username: &str) -> String {
        let user = self
            .ok(
                "register-user",
                json!({"username": username, "first_name": "F", "last_name": "L",
                       "password": format!("pw-{username}")}),
            )
            .await;
        user["user"]["user_id"].as_str().unwrap().to_string()
    }

    pub async fn compose(&self, username: &str, user_id: &str, text: &str) -> Value {
        self.ok(
            "compose-post-frontend",
            json!({"username": username, "user_id": user_id, "post_type": 0, "text": text,
                   "media_id": null, "media_type": null}),
        )
        .await
    }

    pub async fn timeline(
        &self,
        function: &str,
        user_id: &str,
        start: u64,
        stop: u64,
    ) -> Vec<Value> {
        let reply = self
            .ok(
                function,
                json!({"user_id": user_id, "start": start, "stop": stop}),
            )
            .await;
        assert_eq!(reply["status"], "success", "{reply}");
        reply["posts"].as_array().unwrap().clone()
    }

    /// The gateway's count of `function`'s invocations.
    pub async fn invocations(&self, function: &str) -> u64 {
        let metrics = self.node.get("/metrics").await.text();
        let prefix = format!("gateway_function_invocation_total{{function_name=\"{function}\"");
        metrics
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// Checks `reply` is `500` with `exit status 1\n<one-line JSON>\n`; returns the JSON.
fn classic_failure(function: &str, reply: &Reply) -> Value {
    let text = reply.text();
    assert_eq!(reply.status, 500, "{function}: {text}");
    let json = text
        .strip_prefix("exit status 1\n")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{function}: not the classic format: {text:?}"));
    assert!(!json.contains('\n'), "{function}: {text:?}");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{function}: {e}: {text:?}"))
}

fn is_user_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test(flavor = "multi_thread")]
async fn users_register_once_log_in_and_are_found_by_name() {
    let deployed = start().await;
    let app = deployed.app();
    let user = app
        .ok(
            "register-user",
            json!({"username": "alice", "first_name": "Alice", "last_name": "L",
                   "password": "secret", "bio": "kept too"}),
        )
        .await;
    let doc = &user["user"];
    assert_eq!(user["status"], "success");
    let alice = doc["user_id"].as_str().unwrap();
    assert!(is_user_id(alice), "{alice}");
    assert_eq!(doc["bio"], "kept too");
    assert_eq!(doc["salt"].as_str().unwrap().len(), 32);
    assert_ne!(doc["password"], "secret");
    assert_eq!(doc["_id"]["$oid"].as_str().unwrap().len(), 24);

    let again = app
        .fails(
            "register-user",
            json!({"username": "alice", "first_name": "A", "last_name": "B", "password": "x"}),
        )
        .await;
    assert_eq!(again["status"], "UsernameAlreadyExistError");
    assert_eq!(again["message"], "username alice already exist");

    // Eight registrations of one new name at once: exactly one succeeds.
    let racers = (0..8).map(|i| {
        app.call(
            "register-user",
            json!({"username": "racer", "first_name": "R", "last_name": "L",
                   "password": format!("p{i}")}),
        )
    });
    let replies = join_all(racers).await;
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        replies.iter().map(Reply::text).collect::<Vec<_>>()
    );
    for lost in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(
            classic_failure("register-user", lost)["status"],
            "UsernameAlreadyExistError"
        );
    }
    let winner = won[0].json()["user"]["user_id"].clone();
    let found = app.ok("get-user-id", json!({"username": "racer"})).await;
    assert_eq!(found["user_id"], winner);

    let found = app.ok("get-user-id", json!({"username": "alice"})).await;
    assert_eq!(found, json!({"status": "success", "user_id": alice}));
    let unknown = app
        .fails("get-user-id", json!({"username": "nobody"}))
        .await;
    assert_eq!(
        unknown,
        json!({"status": "UsernameNotFoundError", "message": "username nobody not found"})
    );

    let login = app
        .ok(
            "user-service-login",
            json!({"username": "alice", "password": "secret"}),
        )
        .await;
    assert_eq!(login["user_id"], alice);
    assert_eq!(login["token"].as_str().unwrap().len(), 64);
    for (username, password) in [("alice", "wrong"), ("nobody", "secret")] {
        let refused = app
            .fails(
                "user-service-login",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(refused["status"], "LoginError", "{username}");
    }

    let with_id = app
        .ok(
            "register-user-with-id",
            json!({"user_id": "7", "username": "username_7", "first_name": "F",
                   "last_name": "L", "password": "password_7"}),
        )
        .await;
    assert_eq!(with_id["user"]["user_id"], "7");
    let found = app
        .ok("get-user-id", json!({"username": "username_7"}))
        .await;
    assert_eq!(found["user_id"], "7");
    for taken in [
        json!({"user_id": "7", "username": "fresh"}),
        json!({"user_id": "8", "username": "alice"}),
    ] {
        let mut body = taken.clone();
        body["first_name"] = "F".into();
        body["last_name"] = "L".into();
        body["password"] = "p".into();
        let refused = app.fails("register-user-with-id", body).await;
        assert_eq!(refused["status"], "UserAlreadyExistError", "{taken}");
    }
    // The refused registrations left nothing: "fresh" is not a user.
    let absent = app.fails("get-user-id", json!({"username": "fresh"})).await;
    assert_eq!(absent["status"], "UsernameNotFoundError");

    // A registration too large to store is refused before the name is claimed: the name
    // stays free.
    let huge = app
        .fails(
            "register-user",
            json!({"username": "big", "first_name": "B", "last_name": "L", "password": "p",
                   "bio": "x".repeat(20_000)}),
        )
        .await;
    assert_eq!(huge["status"], "InputDataError", "{huge}");
    app.register("big").await;

    // The reply's content type echoes the request's, as the classic watchdog does.
    let reply = app
        .node
        .send_as_client(
            "POST",
            "/function/get-user-id",
            &[("content-type", "text/plain")],
            r#"{"username":"alice"}"#,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "text/plain");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_graph_follows_and_unfollows_by_id_and_by_name() {
    let deployed = start().await;
    let app = deployed.app();
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );
    let followed = app
        .ok(
            "social-graph-follow",
            json!({"user_id": bob, "followee_id": alice}),
        )
        .await;
    assert_eq!(followed["user"]["user_id"], bob);
    assert_eq!(followed["user"]["followees"][0]["user_id"], alice);
    assert!(followed["user"]["followees"][0]["timestamp"].is_f64());
    assert_eq!(followed["followee"]["followers"][0]["user_id"], bob);

    let twice = app
        .fails(
            "social-graph-follow",
            json!({"user_id": bob, "followee_id": alice}),
        )
        .await;
    assert_eq!(twice["status"], "FollowError");
    let stranger = app
        .fails(
            "social-graph-follow",
            json!({"user_id": bob, "followee_id": "0123"}),
        )
        .await;
    assert_eq!(stranger["status"], "FollowError");

    let by_name = app
        .ok(
            "social-graph-follow-with-username",
            json!({"username": "carol", "followee_name": "alice"}),
        )
        .await;
    assert_eq!(by_name["user"]["user_id"], carol);
    let unknown = app
        .fails(
            "social-graph-follow-with-username",
            json!({"username": "carol", "followee_name": "nobody"}),
        )
        .await;
    assert_eq!(unknown["status"], "FollowError");
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.starts_with("Failed to get followee_name's user_id. ")
            && message.contains("UsernameNotFoundError"),
        "{message}"
    );

    let followers = app
        .ok("social-graph-get-followers", json!({"user_id": alice}))
        .await;
    let ids: Vec<&str> = followers["followers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bob.as_str(), carol.as_str()], "oldest first");
    let followees = app
        .ok("social-graph-get-followees", json!({"user_id": alice}))
        .await;
    assert_eq!(followees, json!({"status": "success", "followees": []}));
    let missing = app
        .fails("social-graph-get-followers", json!({"user_id": "nope"}))
        .await;
    assert_eq!(
        missing,
        json!({"status": "UserIDNotExistError",
               "message": "user_idnope does not exist in social graph"})
    );

    let unfollowed = app
        .ok(
            "social-graph-unfollow",
            json!({"user_id": bob, "followee_id": alice}),
        )
        .await;
    assert_eq!(unfollowed["user"]["followees"], json!([]));
    app.ok(
        "social-graph-unfollow-with-username",
        json!({"username": "carol", "followee_name": "alice"}),
    )
    .await;
    let followers = app
        .ok("social-graph-get-followers", json!({"user_id": alice}))
        .await;
    assert_eq!(followers["followers"], json!([]));
    let gone = app
        .fails(
            "social-graph-unfollow",
            json!({"user_id": "nope", "followee_id": alice}),
        )
        .await;
    assert_eq!(
        gone,
        json!({"status": "UnfollowError", "message": "user_id does not exist"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_fans_out_once_and_timelines_page_newest_first() {
    let deployed = start().await;
    let app = deployed.app();
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.ok(
        "social-graph-follow",
        json!({"user_id": bob, "followee_id": alice}),
    )
    .await;

    let before = app
        .invocations("compose-post-service-compose-and-upload")
        .await;
    let reply = app
        .compose(
            "alice",
            &alice,
            "hi @carol and @ghost, read https://example.com/a?b=1 and http://x.y <b>bold</b>",
        )
        .await;
    // `req_id` is a bare integer of up to 39 digits, as uuid4().int.
    let raw = reply["req_id"].to_string();
    assert!(reply["req_id"].is_number() && raw.len() <= 39, "{raw}");
    assert_eq!(reply["username"], "alice");
    assert_eq!(
        app.invocations("compose-post-service-compose-and-upload")
            .await,
        before + 1
    );

    let posts = app
        .timeline("user-timeline-read-frontend", &alice, 0, 10)
        .await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(
        post["creator"],
        json!({"user_id": alice, "username": "alice"})
    );
    assert!(post["timestamp"].is_u64());
    let urls = post["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2);
    assert_eq!(urls[0]["expanded_url"], "https://example.com/a?b=1");
    let short = urls[0]["shortened_url"].as_str().unwrap();
    assert!(
        short.starts_with("http://short-u.rl/") && short.len() == 28,
        "{short}"
    );
    let text = post["text"].as_str().unwrap();
    assert!(
        text.contains(short) && !text.contains("example.com"),
        "{text}"
    );
    assert!(
        text.contains("<b>bold</b>"),
        "the text is stored as written: {text}"
    );
    assert_eq!(
        post["user_mentions"],
        json!([{"username": "carol", "user_id": carol}]),
        "unknown mentions are dropped"
    );
    assert_eq!(post["media"], json!({}));

    // Home timelines: the follower and the mentioned user see it; the author does not.
    for (reader, sees) in [(&bob, 1), (&carol, 1), (&alice, 0)] {
        let home = app
            .timeline("home-timeline-read-frontend", reader, 0, 10)
            .await;
        assert_eq!(home.len(), sees, "{reader}");
    }

    // Twelve more posts, in parallel: each composed exactly once, all in the timeline.
    let texts: Vec<String> = (0..12).map(|i| format!("post {i}")).collect();
    join_all(texts.iter().map(|text| app.compose("alice", &alice, text))).await;
    assert_eq!(
        app.invocations("compose-post-service-compose-and-upload")
            .await,
        before + 13
    );
    let all = app
        .timeline("user-timeline-read-frontend", &alice, 0, 100)
        .await;
    assert_eq!(all.len(), 13);
    let times: Vec<u64> = all
        .iter()
        .map(|p| p["timestamp"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    // Pages are half-open and do not overlap.
    let first = app
        .timeline("user-timeline-read-frontend", &alice, 0, 5)
        .await;
    let second = app
        .timeline("user-timeline-read-frontend", &alice, 5, 10)
        .await;
    assert_eq!((first.len(), second.len()), (5, 5));
    let ids = |posts: &[Value]| -> Vec<String> {
        posts
            .iter()
            .map(|p| p["post_id"].as_str().unwrap().to_string())
            .collect()
    };
    let service = app
        .ok(
            "user-timeline-service-read-user-timeline",
            json!({"user_id": alice, "start": "0", "stop": "10"}),
        )
        .await;
    let service_ids: Vec<String> = service["post_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(service_ids, [ids(&first), ids(&second)].concat());
    assert_eq!(
        app.timeline("home-timeline-read-frontend", &bob, 0, 100)
            .await
            .len(),
        13
    );

    // A compose by someone who is not that user fails with the callee's reasons, and
    // leaves no post behind.
    let wrong = app
        .fails(
            "compose-post-frontend",
            json!({"username": "bob", "user_id": alice, "post_type": 0, "text": "x",
                   "media_id": null, "media_type": null}),
        )
        .await;
    assert_eq!(wrong["status"], "ComposePostFrontError");
    assert!(wrong["req_id"].is_number());
    assert_eq!(wrong["errors"][0]["status"], "UserIDNotExistError");
    let long = app
        .fails(
            "compose-post-frontend",
            json!({"username": "alice", "user_id": alice, "post_type": 0,
                   "text": "x".repeat(20_000), "media_id": null, "media_type": null}),
        )
        .await;
    assert_eq!(long["status"], "MissingFieldError");
    assert_eq!(
        app.timeline("user-timeline-read-frontend", &alice, 0, 100)
            .await
            .len(),
        13
    );

    // A callee's failure (here the URL shortener's, refusing a URL over 2 KiB) reaches its
    // caller in `errors`, with its status code and URL.
    let failing = app
        .fails(
            "text-service-upload-text",
            json!({"req_id": 1, "text": format!("see http://{}", "a".repeat(3000))}),
        )
        .await;
    assert_eq!(failing["status"], "TextServiceUploadTextError");
    let inner = &failing["errors"][0];
    assert_eq!(inner["http_status_code"], 500);
    assert_eq!(
        inner["status"], "MissingFieldError",
        "a URL over 2 KiB: {inner}"
    );
    let url = inner["url"].as_str().unwrap();
    assert!(
        url.ends_with("/function/url-shorten-service-upload-urls"),
        "{url}"
    );
    // A downstream failure of the timeline front end is a 200 with its status, as the
    // original's.
    let reply = app
        .call(
            "user-timeline-read-frontend",
            json!({"user_id": alice, "start": 0, "stop": 5000}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"], "UserTimelineReadFrontendError");
}

#[tokio::test(flavor = "multi_thread")]
async fn media_round_trips_through_the_object_store() {
    let deployed = start().await;
    let app = deployed.app();
    let alice = app.register("alice").await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let uploaded = app
        .ok(
            "media-front-upload-media",
            json!({"filename": "cat.png", "file": format!("data:image/png;base64,{encoded}")}),
        )
        .await;
    let media_id = uploaded["media_id"].as_str().unwrap();
    assert!(
        media_id.starts_with("cat-") && media_id.len() == 36,
        "{media_id}"
    );
    assert_eq!(uploaded["media_type"], "png");
    let back = app
        .node
        .send_as_client(
            "GET",
            &format!("/function/ds-net/media/{media_id}.png"),
            &[],
            "",
        )
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(back.header("content-type"), "image/png");
    assert_eq!(back.body.as_ref(), bytes.as_slice());

    for (body, status) in [
        (
            json!({"filename": "cat.png", "file": "data:image/png;base64,@@@"}),
            "InputDataError",
        ),
        (
            json!({"filename": "../etc.png", "file": encoded}),
            "InputDataError",
        ),
        (json!({"filename": "cat.png"}), "MissingFieldError"),
    ] {
        let refused = app.fails("media-front-upload-media", body).await;
        assert_eq!(refused["status"], status, "{refused}");
    }

    app.ok(
        "compose-post-frontend",
        json!({"username": "alice", "user_id": alice, "post_type": 0, "text": "a cat",
               "media_id": media_id, "media_type": "png"}),
    )
    .await;
    let posts = app
        .timeline("user-timeline-read-frontend", &alice, 0, 1)
        .await;
    assert_eq!(
        posts[0]["media"],
        json!({"media_id": media_id, "media_type": "png"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_reports_bad_input_in_the_classic_format() {
    let deployed = start().await;
    let app = deployed.app();
    for function in FUNCTIONS.iter().filter(|f| **f != "ds-net") {
        let missing = app.fails(function, json!({})).await;
        assert_eq!(
            missing["status"], "MissingFieldError",
            "{function}: {missing}"
        );
        let has_reason = missing["message"].is_string() || missing["errors"][0].is_string();
        assert!(has_reason, "{function}: {missing}");
        let reply = app
            .node
            .send_as_client("POST", &format!("/function/{function}"), &[], "{not json")
            .await;
        let malformed = classic_failure(function, &reply);
        assert_eq!(malformed["status"], "MissingFieldError", "{function}");
    }
    // Mistyped fields are named.
    let mistyped = app
        .fails("get-user-id", json!({"username": ["alice"]}))
        .await;
    assert_eq!(mistyped["message"], "username must be a string");
}

/// Where the browser test keeps its screenshots (under the target directory, kept after the
/// run for people to look at).
const SCREENSHOTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/browser/socialnet"
);

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_work_end_to_end_in_headless_chromium() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let setup = std::process::Command::new(format!("{root}/tests/browser/setup.sh"))
        .arg(format!("{root}/target/browser"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(setup.status.success(), "tests/browser/setup.sh failed");
    let node_path = String::from_utf8(setup.stdout).unwrap().trim().to_string();

    let deployed = start().await;
    let app = deployed.app();
    app.ok(
        "register-user",
        json!({"username": "ben", "first_name": "Ben", "last_name": "B", "password": "ben-pw"}),
    )
    .await;
    let _ = std::fs::remove_dir_all(SCREENSHOTS);
    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    let url = app.node.url.clone();
    let script = format!("{root}/tests/browser/socialnet.cjs");
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(url)
            .arg(SCREENSHOTS)
            .env("NODE_PATH", node_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "the browser run failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for shot in [
        "01-signup",
        "02-main-after-compose",
        "03-profile-following",
        "04-home-timeline",
        "05-logged-out",
    ] {
        let bytes = std::fs::read(format!("{SCREENSHOTS}/{shot}.png")).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{shot}"
        );
    }
}

/// On a cluster of three workers (each with its own state replica) behind a gateway that
/// balances by `X-Baton-Affinity`, every post is composed exactly once: the six parts of a
/// post meet on one worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_each_post_is_composed_exactly_once() {
    use crate::cluster::Cluster;
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_linked(dir.path(), &["--load-balancing", "consistent-hash"]);
    let gateway = &cluster.gateways[0];
    // Every function on every worker, so a post's key finds its worker for each of them.
    // The first waits for each worker to compile the component (a debug build on a loaded
    // machine takes a while); the others find it compiled.
    let deployments = baton_api::manifest::read_manifest(std::path::Path::new(MANIFEST)).unwrap();
    for (n, deployment) in deployments.into_iter().enumerate() {
        let mut settings = serde_json::to_value(&deployment.request).unwrap();
        settings["labels"]["com.openfaas.scale.min"] = "3".into();
        let name = deployment.request.service.clone();
        crate::cluster::deploy(gateway, &name, baton_guests::SOCIALNET, settings).await;
        let limit = std::time::Duration::from_secs(if n == 0 { 600 } else { 120 });
        assert!(
            crate::harness::eventually(limit, || async {
                let placement = cluster.placement(&name).await;
                placement.len() == 3 && placement.iter().all(|(_, ids)| !ids.is_empty())
            })
            .await,
            "{name} is not on every worker: {}",
            cluster.nodes().await
        );
    }
    let app = App { node: gateway };
    let alice = app.register("alice").await;
    // Registered on one worker; composing through another checks the name against its
    // replica, which holds the user once the state has replicated.
    assert!(
        cluster.replicated("socialnet/user/alice").await,
        "the registration never reached every worker"
    );
    let texts: Vec<String> = (0..24)
        .map(|i| format!("cluster post {i} @alice"))
        .collect();
    join_all(texts.iter().map(|text| app.compose("alice", &alice, text))).await;
    assert_eq!(
        app.invocations("compose-post-service-compose-and-upload")
            .await,
        24,
        "each post composed once"
    );
    // Every worker's replica ends up with all 24 posts (reads go to any worker).
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(30), || async {
            let reply = app
                .call(
                    "user-timeline-read-frontend",
                    json!({"user_id": alice, "start": 0, "stop": 100}),
                )
                .await;
            reply.status == 200 && reply.json()["posts"].as_array().map(Vec::len) == Some(24)
        })
        .await,
        "the timeline never held the 24 posts"
    );
}
