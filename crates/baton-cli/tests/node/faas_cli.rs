//! faas-cli against Baton, replayed: faas-cli cannot be installed here, so each step sends
//! exactly what faas-cli sends (method, path, query, body, Basic auth as `faas-cli login`
//! stores it) and checks the answer against what faas-cli accepts. The source of each
//! request in github.com/openfaas/faas-cli is named beside it.

use crate::harness::{Node, Options};
use base64::Engine;
use serde_json::{Value, json};

/// What `faas-cli login -u admin --password TOKEN` makes every later request carry
/// (`proxy/auth.go`: `SetBasicAuth`).
fn basic(password: &str) -> String {
    let pair = format!("admin:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

struct FaasCli<'a> {
    node: &'a Node,
    auth: String,
}

impl FaasCli<'_> {
    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let reply = self
            .node
            .send_as_client(
                method,
                path,
                &[("authorization", self.auth.as_str())],
                body.to_owned(),
            )
            .await;
        (reply.status, reply.text())
    }

    async fn json(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = self.call(method, path, body).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

#[tokio::test]
async fn a_faas_cli_session_replayed_gets_what_faas_cli_expects() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        Options {
            token: Some("the-gateway-password".into()),
            ..Options::default()
        },
    );
    // commands/login.go (validateLogin): GET /system/functions with the new credentials;
    // 200 stores them, 401 is "unable to login".
    let wrong = FaasCli {
        node: &node,
        auth: basic("guess"),
    };
    assert_eq!(wrong.call("GET", "/system/functions", "").await.0, 401);
    let cli = FaasCli {
        node: &node,
        auth: basic("the-gateway-password"),
    };
    assert_eq!(cli.call("GET", "/system/functions", "").await.0, 200);

    // proxy/version.go: GET /system/info (provider name and version).
    let (status, info) = cli.json("GET", "/system/info", "").await;
    assert_eq!(status, 200);
    assert_eq!(info["provider"]["provider"], "baton");

    // proxy/namespaces.go: GET /system/namespaces.
    assert_eq!(
        cli.json("GET", "/system/namespaces", "").await,
        (200, json!(["baton"]))
    );

    // proxy/secret.go CreateSecret: POST /system/secrets, types.Secret; 200/201/202 is
    // "Created", 409 "already exists".
    let secret = r#"{"name":"api-key","value":"s3cr3t"}"#;
    assert_eq!(cli.call("POST", "/system/secrets", secret).await.0, 202);
    assert_eq!(cli.call("POST", "/system/secrets", secret).await.0, 409);
    // GetSecretList: GET /system/secrets, a JSON list of types.Secret.
    assert_eq!(
        cli.json("GET", "/system/secrets", "").await,
        (200, json!([{"name": "api-key", "namespace": "baton"}]))
    );

    // proxy/deploy.go: `faas-cli deploy` updates first (PUT /system/functions); a 404 makes it
    // create (POST). The body is the older CreateFunctionRequest, Go's nils as null and
    // Swarm's `network`, as older releases send it.
    let deployment = json!({
        "service": "shout", "image": "shout:latest", "network": "",
        "envProcess": "tee /dev/stderr", "envVars": {"mode": "classic"},
        "constraints": null, "secrets": ["api-key"], "labels": {"com.openfaas.scale.min": "0"},
        "annotations": null, "limits": null, "requests": null,
        "readOnlyRootFilesystem": false
    })
    .to_string();
    assert_eq!(
        cli.call("PUT", "/system/functions", &deployment).await.0,
        404
    );
    let (status, text) = cli.call("POST", "/system/functions", &deployment).await;
    assert!([200, 201, 202].contains(&status), "{status} {text}");
    // Deployed again: the PUT succeeds ("attempting rolling-update").
    let (status, text) = cli.call("PUT", "/system/functions", &deployment).await;
    assert!([200, 201, 202].contains(&status), "{status} {text}");

    // proxy/list.go: GET /system/functions, a list of types.FunctionStatus.
    let (status, list) = cli.json("GET", "/system/functions", "").await;
    assert_eq!(status, 200);
    let shout = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "shout")
        .expect("listed");
    assert_eq!(shout["image"], "shout:latest");
    assert!(shout["invocationCount"].is_number());
    assert!(shout["replicas"].is_number());

    // proxy/describe.go (also `faas-cli ready`, commands/ready.go): GET
    // /system/function/{name}; ready once availableReplicas > 0, which a function that
    // starts on demand is at zero.
    let (status, described) = cli
        .json("GET", "/system/function/shout?namespace=", "")
        .await;
    assert_eq!(status, 200);
    assert!(described["availableReplicas"].as_u64().unwrap() > 0);
    assert_eq!(described["envProcess"], "tee /dev/stderr");
    assert_eq!(cli.call("GET", "/system/function/ghost", "").await.0, 404);

    // proxy/invoke.go: POST /function/{name} with the body; the output is printed.
    let (status, output) = cli.call("POST", "/function/shout", "hello faas-cli").await;
    assert_eq!((status, output.as_str()), (200, "hello faas-cli"));
    // `faas-cli invoke --async`: POST /async-function/{name}; 202 with X-Call-Id.
    let queued = node
        .send_as_client(
            "POST",
            "/async-function/shout",
            &[("authorization", cli.auth.as_str())],
            "later",
        )
        .await;
    assert_eq!(queued.status, 202);
    assert!(!queued.header("x-call-id").is_empty());

    // proxy/logs.go: GET /system/logs?name=&follow=false&tail=-1 (faas-cli's default tail),
    // newline-delimited logs.Message, decoded one after the other.
    let (status, logs) = cli
        .call("GET", "/system/logs?name=shout&follow=false&tail=-1", "")
        .await;
    assert_eq!(status, 200);
    let messages: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON message per line"))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m["name"] == "shout" && m["text"] == "hello faas-cli"),
        "{logs}"
    );

    // proxy/scale.go: POST /system/scale-function/{name}, types.ScaleServiceRequest;
    // 200/201/202 accepted, 404 "not found".
    let scale = r#"{"serviceName":"shout","serviceNamespace":"","replicas":2}"#;
    assert_eq!(
        cli.call("POST", "/system/scale-function/shout", scale)
            .await
            .0,
        202
    );
    let ghost = r#"{"serviceName":"ghost","replicas":1}"#;
    assert_eq!(
        cli.call("POST", "/system/scale-function/ghost", ghost)
            .await
            .0,
        404
    );

    // proxy/delete.go: DELETE /system/functions with {"functionName"}; 200/201/202 is
    // "Removing old function.", 404 "No existing function to remove".
    let remove = r#"{"functionName":"shout"}"#;
    assert_eq!(cli.call("DELETE", "/system/functions", remove).await.0, 202);
    assert_eq!(cli.call("DELETE", "/system/functions", remove).await.0, 404);

    // proxy/secret.go UpdateSecret (PUT, 404 "unable to find secret") and RemoveSecret
    // (DELETE with the types.Secret; 200/202 fine, 404 "unable to find secret").
    let update = r#"{"name":"api-key","value":"rotated"}"#;
    assert_eq!(cli.call("PUT", "/system/secrets", update).await.0, 202);
    let missing = r#"{"name":"nope","value":"x"}"#;
    assert_eq!(cli.call("PUT", "/system/secrets", missing).await.0, 404);
    let remove = r#"{"name":"api-key"}"#;
    assert_eq!(cli.call("DELETE", "/system/secrets", remove).await.0, 202);
    assert_eq!(cli.call("DELETE", "/system/secrets", remove).await.0, 404);
}
