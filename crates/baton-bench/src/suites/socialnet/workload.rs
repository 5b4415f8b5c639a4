//! DeathStarBench's social-network workload as pure functions: the graph file, the mix of
//! requests (`mixed-workload.lua`: 60 % home timeline, 30 % user timeline, 10 % compose) and
//! the bodies it sends, mapped onto DeathStarFaaS's functions (JSON bodies; one medium, the
//! first of the script's list, as `compose-post-frontend` takes one).

use serde_json::{Value, json};

/// The social graph: `users` nodes `0..users` and undirected edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Node count.
    pub users: usize,
    /// Edges `(u, v)`, each once.
    pub edges: Vec<(usize, usize)>,
}

impl Graph {
    /// Parses a `.nodes` count and a `.edges` list (`u v` per line, 0-based).
    pub fn parse(nodes: &str, edges: &str) -> Result<Graph, String> {
        let users: usize = nodes
            .trim()
            .parse()
            .map_err(|e| format!("the .nodes file is not a count: {e}"))?;
        let mut list = Vec::new();
        for (n, line) in edges.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut ids = line.split_whitespace().map(str::parse::<usize>);
            let (Some(Ok(u)), Some(Ok(v)), None) = (ids.next(), ids.next(), ids.next()) else {
                return Err(format!("line {}: expected two ids, got {line:?}", n + 1));
            };
            if u >= users || v >= users {
                return Err(format!("line {}: id beyond the {users} users", n + 1));
            }
            list.push((u, v));
        }
        Ok(Graph { users, edges: list })
    }
}

/// The kinds of request the workload sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `home-timeline-read-frontend`.
    ReadHomeTimeline,
    /// `user-timeline-read-frontend`.
    ReadUserTimeline,
    /// `compose-post-frontend`.
    ComposePost,
}

impl Kind {
    /// Every kind, in the mix's order.
    pub const ALL: [Kind; 3] = [
        Kind::ReadHomeTimeline,
        Kind::ReadUserTimeline,
        Kind::ComposePost,
    ];

    /// The function a request of this kind calls.
    pub fn function(self) -> &'static str {
        match self {
            Kind::ReadHomeTimeline => "home-timeline-read-frontend",
            Kind::ReadUserTimeline => "user-timeline-read-frontend",
            Kind::ComposePost => "compose-post-frontend",
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ReadHomeTimeline => "read-home-timeline",
            Kind::ReadUserTimeline => "read-user-timeline",
            Kind::ComposePost => "compose-post",
        }
    }
}

/// The mixed workload's pick for a uniform `coin` in `[0, 1)`.
pub fn mixed(coin: f64) -> Kind {
    if coin < 0.60 {
        Kind::ReadHomeTimeline
    } else if coin < 0.90 {
        Kind::ReadUserTimeline
    } else {
        Kind::ComposePost
    }
}

const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn random_string(rng: &mut fastrand::Rng, len: usize) -> String {
    (0..len)
        .map(|_| ALPHANUMERIC[rng.usize(..ALPHANUMERIC.len())] as char)
        .collect()
}

/// A user's name and id as the loader registers them: `username_<i>` and `<i>`.
pub fn user(i: usize) -> (String, String) {
    (format!("username_{i}"), i.to_string())
}

/// The registration of user `i` (`register-user-with-id`), as DeathStarBench's loader
/// registers it.
pub fn registration(i: usize) -> Value {
    let (username, user_id) = user(i);
    json!({"username": username, "user_id": user_id, "first_name": format!("first_name_{i}"),
           "last_name": format!("last_name_{i}"), "password": format!("password_{i}")})
}

/// A compose-post body as `compose-post.lua` makes it: 256 random alphanumerics, 1–6
/// mentions of other users, 1–6 URLs of 64 random characters; 1–5 media of which the first
/// is sent.
pub fn compose(rng: &mut fastrand::Rng, users: usize, author: usize) -> Value {
    let (username, user_id) = user(author);
    let mut text = random_string(rng, 256);
    for _ in 0..rng.usize(1..=6) {
        let mut other = rng.usize(..users.max(2) - 1);
        if other >= author {
            other += 1;
        }
        text.push_str(&format!(
            " @username_{}",
            other.min(users.saturating_sub(1))
        ));
    }
    for _ in 0..rng.usize(1..=6) {
        text.push_str(&format!(" http://{}", random_string(rng, 64)));
    }
    let media: Vec<String> = (0..rng.usize(1..=5))
        .map(|_| (0..18).map(|_| char::from(b'0' + rng.u8(..10))).collect())
        .collect();
    json!({"username": username, "user_id": user_id, "post_type": 0, "text": text,
           "media_id": media[0], "media_type": "png"})
}

/// A timeline read: `start` uniform in 0..=100, ten posts.
pub fn read(rng: &mut fastrand::Rng, user: usize) -> Value {
    let start = rng.u64(0..=100);
    json!({"user_id": user.to_string(), "start": start, "stop": start + 10})
}

/// The body of a `kind` request by a uniformly drawn user.
pub fn request(rng: &mut fastrand::Rng, users: usize, kind: Kind) -> Value {
    let author = rng.usize(..users);
    match kind {
        Kind::ComposePost => compose(rng, users, author),
        _ => read(rng, author),
    }
}

/// How many posts user `i` gets when seeding with an average of `average`: uniform in
/// `0..=2 × average` (DeathStarBench's `--compose` gives 0–20, 10 on average).
pub fn seeded_posts(rng: &mut fastrand::Rng, average: u32) -> u32 {
    rng.u32(0..=2 * average)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphs_parse_and_refuse_bad_lines() {
        let graph = Graph::parse("4", "1 0\n3 2\n\n").unwrap();
        assert_eq!(
            graph,
            Graph {
                users: 4,
                edges: vec![(1, 0), (3, 2)]
            }
        );
        assert!(Graph::parse("x", "").is_err());
        assert!(Graph::parse("4", "1\n").is_err());
        assert!(Graph::parse("4", "1 9\n").unwrap_err().contains("beyond"));
    }

    #[test]
    fn the_mix_is_sixty_thirty_ten() {
        let cases = [
            (0.0, Kind::ReadHomeTimeline),
            (0.599, Kind::ReadHomeTimeline),
            (0.6, Kind::ReadUserTimeline),
            (0.899, Kind::ReadUserTimeline),
            (0.9, Kind::ComposePost),
            (0.999, Kind::ComposePost),
        ];
        for (coin, kind) in cases {
            assert_eq!(mixed(coin), kind, "{coin}");
        }
    }

    #[test]
    fn compose_bodies_have_the_scripts_shape() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..200 {
            let body = compose(&mut rng, 962, 5);
            let text = body["text"].as_str().unwrap();
            let mentions = text.matches(" @username_").count();
            let urls = text.matches(" http://").count();
            assert!(
                (1..=6).contains(&mentions) && (1..=6).contains(&urls),
                "{text}"
            );
            assert!(!text.contains("@username_5 ") && !text.ends_with("@username_5"));
            assert!((340..=772).contains(&text.len()), "{}", text.len());
            assert_eq!(body["media_id"].as_str().unwrap().len(), 18);
            assert_eq!(body["user_id"], "5");
        }
    }

    #[test]
    fn reads_ask_for_ten_posts_from_zero_to_a_hundred() {
        let mut rng = fastrand::Rng::with_seed(2);
        for _ in 0..200 {
            let body = read(&mut rng, 3);
            let start = body["start"].as_u64().unwrap();
            assert!(start <= 100);
            assert_eq!(body["stop"].as_u64().unwrap(), start + 10);
        }
    }
}
