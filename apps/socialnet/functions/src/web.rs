//! `ds-net`: the social network's web pages, served by the function at `/function/ds-net/…`
//! and working through the other functions: sign up, log in, compose (text, mentions, URLs,
//! an image), the home and user timelines, profiles with follow and unfollow.
//!
//! A login sets the `socialnet` cookie to `<user_id>:<username, percent-encoded>:<token>`;
//! every page that acts for a user checks the token against `user-service-login`'s secret.
//! All text from users is escaped.

use crate::call::{call, succeeded};
use baton_sdk::{Request, Response};
use serde_json::{Value, json};
use socialnet_logic::form;
use socialnet_logic::html::escape;

const BASE: &str = "/function/ds-net";
const COOKIE: &str = "socialnet";
const PAGE_SIZE: u64 = 10;

/// A signed-in user.
struct Session {
    user_id: String,
    username: String,
}

fn session(request: &Request) -> Option<Session> {
    let value = form::cookie(request.header("cookie")?, COOKIE)?;
    let mut parts = value.splitn(3, ':');
    let (user_id, username, token) = (parts.next()?, parts.next()?, parts.next()?);
    let username = form::decode(username);
    let expected = crate::users::token_of(user_id).ok()?;
    let owner = crate::users::username_of(user_id).ok()??;
    (token == expected && owner == username).then(|| Session {
        user_id: user_id.to_string(),
        username,
    })
}

fn page(title: &str, user: Option<&Session>, body: &str) -> Response {
    let nav = match user {
        Some(s) => format!(
            "<a href=\"{BASE}/main\">Home</a> <a href=\"{BASE}/profile?user={u}\">{name}</a> \
             <a href=\"{BASE}/contact\">Contact</a> <a id=\"logout\" href=\"{BASE}/logout\">Log out</a>",
            u = form::encode(&s.username),
            name = escape(&s.username)
        ),
        None => format!(
            "<a href=\"{BASE}/\">Log in</a> <a href=\"{BASE}/signup\">Sign up</a> \
             <a href=\"{BASE}/contact\">Contact</a>"
        ),
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} · ds-net</title>\
         <style>body{{font-family:sans-serif;max-width:46em;margin:1em auto;padding:0 1em;color:#222}}\
         nav{{border-bottom:1px solid #ccc;padding:.5em 0;margin-bottom:1em}}nav a{{margin-right:1em}}\
         .post{{border:1px solid #ddd;border-radius:6px;padding:.6em;margin:.6em 0}}\
         .meta{{color:#777;font-size:.85em}}.post img{{max-width:100%;display:block;margin-top:.4em}}\
         .error{{color:#b00}}label{{display:block;margin:.4em 0}}textarea{{width:100%;height:5em}}</style>\
         </head><body><nav><strong>ds-net</strong> {nav}</nav><h1>{title}</h1>{body}\
         <script>{TIME_SCRIPT}</script></body></html>",
        title = escape(title)
    );
    Response::new(200, html).with_header("content-type", "text/html; charset=utf-8")
}

fn redirect(to: &str) -> Response {
    Response::new(303, Vec::new()).with_header("location", &format!("{BASE}{to}"))
}

fn error_page(user: Option<&Session>, status: u16, message: &str) -> Response {
    let mut response = page(
        "Something went wrong",
        user,
        &format!("<p class=\"error\" id=\"error\">{}</p>", escape(message)),
    );
    response.status = status;
    response
}

/// The `message` of a failed reply, else its status.
fn reason(reply: &Value) -> String {
    let inner = reply["errors"].get(0).unwrap_or(reply);
    inner["message"]
        .as_str()
        .or(inner.as_str())
        .or(reply["status"].as_str())
        .unwrap_or("unknown error")
        .to_string()
}

pub fn serve(request: Request) -> Response {
    let path = request.path().trim_end_matches('/').to_string();
    let user = session(&request);
    let body = String::from_utf8_lossy(&request.body).into_owned();
    match (request.method.as_str(), path.as_str()) {
        ("GET", "" | "/login") => login_page(user.as_ref(), None),
        ("POST", "/login") => login(&body),
        ("GET", "/signup") => signup_page(None),
        ("POST", "/register") => register(&body),
        ("GET", "/logout") => redirect("/").with_header(
            "set-cookie",
            &format!("{COOKIE}=; Path={BASE}; Max-Age=0; HttpOnly; SameSite=Lax"),
        ),
        ("GET", "/contact") => page(
            "Contact",
            user.as_ref(),
            "<p>ds-net is DeathStarBench's social network running as Baton functions.</p>",
        ),
        ("GET", p) if p.starts_with("/media/") => media(&p["/media/".len()..]),
        (_, "/main" | "/profile" | "/compose" | "/follow" | "/unfollow") => match user {
            None => redirect("/"),
            Some(user) => signed_in(&request, &path, &body, &user),
        },
        _ => error_page(user.as_ref(), 404, &format!("no page at {path}")),
    }
}

fn signed_in(request: &Request, path: &str, body: &str, user: &Session) -> Response {
    let query = request.query().unwrap_or("");
    match (request.method.as_str(), path) {
        ("GET", "/main") => main_page(user, query),
        ("GET", "/profile") => profile_page(user, query),
        ("POST", "/compose") => compose(user, body),
        ("POST", "/follow") => follow(user, body, "social-graph-follow-with-username"),
        ("POST", "/unfollow") => follow(user, body, "social-graph-unfollow-with-username"),
        _ => error_page(Some(user), 405, "method not allowed"),
    }
}

/// A message above a form, or nothing.
fn note(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"error\" id=\"error\">{}</p>", escape(m)))
        .unwrap_or_default()
}

fn login_page(user: Option<&Session>, message: Option<&str>) -> Response {
    if let Some(user) = user {
        return main_page(user, "");
    }
    let note = note(message);
    page(
        "Log in",
        None,
        &format!(
            "{note}<form method=\"post\" action=\"{BASE}/login\">\
             <label>Username <input name=\"username\" id=\"username\" required></label>\
             <label>Password <input name=\"password\" id=\"password\" type=\"password\" required></label>\
             <button id=\"login\">Log in</button></form>\
             <p>No account? <a href=\"{BASE}/signup\">Sign up</a>.</p>"
        ),
    )
}

fn signup_page(message: Option<&str>) -> Response {
    let note = note(message);
    page(
        "Sign up",
        None,
        &format!(
            "{note}<form method=\"post\" action=\"{BASE}/register\">\
             <label>Username <input name=\"username\" id=\"username\" required></label>\
             <label>First name <input name=\"first_name\" id=\"first_name\" required></label>\
             <label>Last name <input name=\"last_name\" id=\"last_name\" required></label>\
             <label>Password <input name=\"password\" id=\"password\" type=\"password\" required></label>\
             <button id=\"signup\">Sign up</button></form>"
        ),
    )
}

fn login(body: &str) -> Response {
    let username = form::field(body, "username").unwrap_or_default();
    let password = form::field(body, "password").unwrap_or_default();
    let reply = call(
        "user-service-login",
        &json!({"username": username, "password": password}),
        None,
    );
    if !succeeded(&reply) {
        let mut response = login_page(None, Some(&reason(&reply)));
        response.status = 401;
        return response;
    }
    let cookie = format!(
        "{COOKIE}={}:{}:{}; Path={BASE}; HttpOnly; SameSite=Lax",
        reply["user_id"].as_str().unwrap_or_default(),
        form::encode(&username),
        reply["token"].as_str().unwrap_or_default()
    );
    redirect("/main").with_header("set-cookie", &cookie)
}

fn register(body: &str) -> Response {
    let field = |k: &str| form::field(body, k).unwrap_or_default();
    let username = field("username");
    // Registrations of one name meet on one worker of a cluster, whose replica decides.
    let reply = call(
        "register-user",
        &json!({"username": username, "first_name": field("first_name"),
                "last_name": field("last_name"), "password": field("password")}),
        Some(&crate::store::part(&username)),
    );
    if succeeded(&reply) {
        login_page(None, Some("Signed up: log in now."))
    } else {
        let mut response = signup_page(Some(&reason(&reply)));
        response.status = 400;
        response
    }
}

fn post_html(post: &Value) -> String {
    let creator = post["creator"]["username"].as_str().unwrap_or("?");
    let media = match (
        post["media"]["media_id"].as_str(),
        post["media"]["media_type"].as_str(),
    ) {
        (Some(id), Some(kind)) => format!(
            "<img alt=\"media\" src=\"{BASE}/media/{}.{}\">",
            escape(id),
            escape(kind)
        ),
        _ => String::new(),
    };
    let urls: String = post["urls"]
        .as_array()
        .map(|urls| {
            urls.iter()
                .map(|u| {
                    format!(
                        "<li>{} → {}</li>",
                        escape(u["shortened_url"].as_str().unwrap_or("")),
                        escape(u["expanded_url"].as_str().unwrap_or(""))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let urls = if urls.is_empty() {
        urls
    } else {
        format!("<ul class=\"urls\">{urls}</ul>")
    };
    format!(
        "<div class=\"post\"><div class=\"meta\"><a href=\"{BASE}/profile?user={u}\">@{c}</a> · \
         <span class=\"time\" data-ts=\"{t}\">{t}</span></div><div class=\"text\">{text}</div>{urls}{media}</div>",
        u = form::encode(creator),
        c = escape(creator),
        t = post["timestamp"],
        text = escape(post["text"].as_str().unwrap_or(""))
    )
}

/// Reads a timeline page through `function`; the posts as HTML, or why not.
fn timeline_html(function: &str, user_id: &str, start: u64, id: &str) -> String {
    let reply = call(
        function,
        &json!({"user_id": user_id, "start": start, "stop": start.saturating_add(PAGE_SIZE)}),
        None,
    );
    let posts = match reply["posts"].as_array() {
        Some(posts) if reply["status"] == "success" => posts,
        _ => return format!("<p class=\"error\">{}</p>", escape(&reason(&reply))),
    };
    if posts.is_empty() {
        return format!("<div id=\"{id}\"><p class=\"empty\">No posts.</p></div>");
    }
    let html: String = posts.iter().map(post_html).collect();
    format!("<div id=\"{id}\">{html}</div>")
}

fn start_of(query: &str) -> u64 {
    form::field(query, "start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn main_page(user: &Session, query: &str) -> Response {
    let start = start_of(query);
    let home = timeline_html(
        "home-timeline-read-frontend",
        &user.user_id,
        start,
        "home-timeline",
    );
    let mine = timeline_html(
        "user-timeline-read-frontend",
        &user.user_id,
        start,
        "user-timeline",
    );
    let next = start.saturating_add(PAGE_SIZE);
    page(
        &format!("Welcome, {}", user.username),
        Some(user),
        &format!(
            "<form id=\"compose-form\" method=\"post\" action=\"{BASE}/compose\">\
             <label>What's happening? (@mention people, paste links)\
             <textarea name=\"text\" id=\"text\" required></textarea></label>\
             <label>Image <input type=\"file\" id=\"image\" accept=\"image/*\"></label>\
             <input type=\"hidden\" name=\"media_id\" id=\"media_id\">\
             <input type=\"hidden\" name=\"media_type\" id=\"media_type\">\
             <button id=\"compose\">Post</button> <span id=\"upload-status\"></span></form>\
             <script>{UPLOAD_SCRIPT}</script>\
             <h2>Home timeline</h2>{home}<h2>Your posts</h2>{mine}\
             <p><a id=\"older\" href=\"{BASE}/main?start={next}\">Older</a></p>"
        ),
    )
}

/// Shows post times (seconds since the epoch) in the reader's local time.
const TIME_SCRIPT: &str = "document.querySelectorAll('.time').forEach(function(e){\
var t=Number(e.dataset.ts);if(t)e.textContent=new Date(t*1000).toLocaleString();});";

/// Uploads the chosen image to `media-front-upload-media` before the form is sent, and puts
/// the id it gets into the form.
const UPLOAD_SCRIPT: &str = "document.getElementById('compose-form').addEventListener('submit',\
function(e){var f=document.getElementById('image').files[0];if(!f||document.getElementById('media_id').value)return;\
e.preventDefault();var form=e.target;var status=document.getElementById('upload-status');status.textContent='uploading…';\
var r=new FileReader();r.onload=function(){var dot=f.name.lastIndexOf('.');\
var ext=(dot>0?f.name.slice(dot+1):'png').toLowerCase().replace(/[^a-z0-9]/g,'').slice(0,8)||'png';\
var name=(dot>0?f.name.slice(0,dot):f.name).replace(/[^A-Za-z0-9_-]/g,'_').slice(0,64)||'image';\
fetch('/function/media-front-upload-media',{method:'POST',headers:{'content-type':'application/json'},\
body:JSON.stringify({filename:name+'.'+ext,file:r.result})}).then(function(x){return x.text();}).then(function(t){\
var line=t.split('\\n').filter(function(l){return l.charAt(0)=='{';})[0];var j=JSON.parse(line);\
if(j.status!='success'){status.textContent=j.message||j.status;return;}\
document.getElementById('media_id').value=j.media_id;document.getElementById('media_type').value=j.media_type;form.submit();});};\
r.readAsDataURL(f);});";

fn compose(user: &Session, body: &str) -> Response {
    let text = form::field(body, "text").unwrap_or_default();
    let media_id = form::field(body, "media_id").filter(|s| !s.is_empty());
    let media_type = form::field(body, "media_type").filter(|s| !s.is_empty());
    let reply = call(
        "compose-post-frontend",
        &json!({"username": user.username, "user_id": user.user_id, "post_type": 0,
                "text": text, "media_id": media_id, "media_type": media_type}),
        None,
    );
    if succeeded(&reply) {
        redirect("/main")
    } else {
        error_page(Some(user), 400, &reason(&reply))
    }
}

fn profile_page(user: &Session, query: &str) -> Response {
    let name = form::field(query, "user").unwrap_or_else(|| user.username.clone());
    let reply = call("get-user-id", &json!({"username": name}), None);
    let Some(user_id) = reply["user_id"].as_str() else {
        return error_page(Some(user), 404, &reason(&reply));
    };
    let count = |function: &str, key: &str| {
        let reply = call(function, &json!({"user_id": user_id}), None);
        reply[key].as_array().map_or(0, Vec::len)
    };
    let followers = call(
        "social-graph-get-followers",
        &json!({"user_id": user_id}),
        None,
    );
    let following = followers["followers"]
        .as_array()
        .is_some_and(|list| list.iter().any(|f| f["user_id"] == user.user_id.as_str()));
    let action = if name == user.username {
        String::new()
    } else {
        let (path, label) = if following {
            ("unfollow", "Unfollow")
        } else {
            ("follow", "Follow")
        };
        format!(
            "<form method=\"post\" action=\"{BASE}/{path}\">\
             <input type=\"hidden\" name=\"followee_name\" value=\"{n}\">\
             <button id=\"{path}\">{label}</button></form>",
            n = escape(&name)
        )
    };
    let posts = timeline_html(
        "user-timeline-read-frontend",
        user_id,
        start_of(query),
        "user-timeline",
    );
    page(
        &format!("@{name}"),
        Some(user),
        &format!(
            "<p><span id=\"followers\">{}</span> followers · <span id=\"followees\">{}</span> following</p>\
             {action}<h2>Posts</h2>{posts}",
            followers["followers"].as_array().map_or(0, Vec::len),
            count("social-graph-get-followees", "followees"),
        ),
    )
}

fn follow(user: &Session, body: &str, function: &str) -> Response {
    let followee = form::field(body, "followee_name").unwrap_or_default();
    let reply = call(
        function,
        &json!({"username": user.username, "followee_name": followee}),
        None,
    );
    if succeeded(&reply) {
        redirect(&format!("/profile?user={}", form::encode(&followee)))
    } else {
        error_page(Some(user), 400, &reason(&reply))
    }
}

fn media(filename: &str) -> Response {
    match crate::media::get(filename) {
        Ok(Some(bytes)) => {
            let kind = match filename.rsplit('.').next() {
                Some("png") => "image/png",
                Some("jpg" | "jpeg") => "image/jpeg",
                Some("gif") => "image/gif",
                Some("webp") => "image/webp",
                _ => "application/octet-stream",
            };
            Response::new(200, bytes).with_header("content-type", kind)
        }
        Ok(None) => Response::text(404, "no such media\n"),
        Err(e) => Response::text(503, format!("{e}\n")),
    }
}
