//! The CLI against a running node.

use crate::harness::{Node, Options};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn deploy_from_a_manifest_then_invoke_list_describe_logs_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        Options {
            token: Some("tok".into()),
            ..Options::default()
        },
    );
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::copy(baton_guests::ECHO_PATH, app.join("echo.wasm")).unwrap();
    std::fs::write(app.join("upper.sh"), "tr a-z A-Z; echo done >&2").unwrap();
    std::fs::write(
        app.join("baton.toml"),
        "[functions.echo]\nwasm = \"echo.wasm\"\ntimeout = \"3s\"\nmemory = \"32Mi\"\n\n\
         [functions.upper]\nprocess = \"sh upper.sh\"\nmode = \"classic\"\nenv = { GREETING = \"hi\" }\n",
    )
    .unwrap();
    let manifest = app.join("baton.toml").display().to_string();
    let deployed = node.cli(&["deploy", "-f", &manifest, "--json"]);
    let statuses: serde_json::Value = serde_json::from_str(&stdout(&deployed)).unwrap();
    assert_eq!(statuses.as_array().unwrap().len(), 2);
    // Deploying again updates (PUT) rather than failing.
    let again = node.cli(&["deploy", "-f", &manifest, "--json"]);
    let statuses: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert!(
        statuses
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["version"] == 2)
    );

    assert_eq!(
        stdout(&node.cli(&["invoke", "echo", "-d", "hello", "--path", "/x"])),
        "hello"
    );
    assert_eq!(
        stdout(&node.cli(&["invoke", "upper", "-d", "shout"])),
        "SHOUT"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&node.cli(&["invoke", "echo", "-d", "x", "--json"]))).unwrap();
    assert_eq!(json["status"], 200);
    assert_eq!(json["body"], "x");

    let listed = stdout(&node.cli(&["ls"]));
    assert!(
        listed.starts_with("NAME") && listed.contains("echo") && listed.contains("process-classic"),
        "{listed}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&node.cli(&["ls", "--json"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let described: serde_json::Value =
        serde_json::from_str(&stdout(&node.cli(&["describe", "echo", "--json"]))).unwrap();
    assert_eq!(described["timeoutMs"], 3000);
    assert_eq!(described["limits"]["memory"], "32Mi");
    assert!(stdout(&node.cli(&["describe", "upper"])).contains("GREETING=hi"));
    assert!(stdout(&node.cli(&["logs", "upper"])).contains("done"));

    let missing = node.cli(&["invoke", "ghost"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    assert!(node.cli(&["rm", "echo", "upper"]).status.success());
    assert!(stdout(&node.cli(&["ls", "--json"])).trim() == "[]");
    assert!(!node.cli(&["rm", "echo"]).status.success());
}

#[tokio::test]
async fn deploy_from_an_openfaas_stack_file_and_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), Options::default());
    let handler = dir.path().join("wc");
    std::fs::create_dir(&handler).unwrap();
    std::fs::write(handler.join("index.sh"), "wc -w").unwrap();
    std::fs::write(
        dir.path().join("stack.yml"),
        "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  wc:\n    lang: dockerfile\n    handler: ./wc\n    image: wc:latest\n    environment:\n      fprocess: sh index.sh\n",
    )
    .unwrap();
    let stack = dir.path().join("stack.yml").display().to_string();
    stdout(&node.cli(&["deploy", "--stack", &stack]));
    assert_eq!(
        stdout(&node.cli(&["invoke", "wc", "-d", "a b c"])).trim(),
        "3"
    );

    stdout(&node.cli(&[
        "deploy",
        "hello",
        "--wasm",
        baton_guests::HELLO_PATH,
        "--timeout",
        "1s",
    ]));
    assert_eq!(
        stdout(&node.cli(&["invoke", "hello", "--path", "?name=cli"])),
        "Hello, cli!\n"
    );
    let bad = node.cli(&["deploy", "broken", "--wasm", "/etc/hostname"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("400"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test]
async fn new_functions_from_templates_build_deploy_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), Options::default());
    // Functions run as their own user: the project must be readable by others, as a
    // container image's files are.
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    for path in [dir.path(), project.as_path()] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let stack = project.join("stack.yml").display().to_string();
    let listed = stdout(&node.cli(&["new", "--list"]));
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["python3-http", "node20-http"]
    );
    for (name, lang) in [("greet", "python3-http"), ("echo-js", "node20-http")] {
        stdout(&node.cli(&["new", name, "--lang", lang, "-f", &stack]));
        assert!(project.join(name).is_dir());
    }
    // The python handler, changed as a user would: status, headers, a JSON body, and a
    // package from PyPI that the build installs from requirements.txt.
    std::fs::write(
        project.join("greet/handler.py"),
        "import tabulate\n\ndef handle(event, context):\n    return {\"statusCode\": 201, \"headers\": {\"X-Greeting\": \"yes\"},\n            \"body\": {\"hello\": event.query.get(\"name\"), \"method\": event.method, \"got\": event.body.decode(), \"tabulate\": tabulate.__version__}}\n",
    )
    .unwrap();
    std::fs::write(project.join("greet/requirements.txt"), "tabulate==0.9.0\n").unwrap();
    // The node handler uses a package from npm, which the build installs from package.json.
    std::fs::write(
        project.join("echo-js/package.json"),
        r#"{"name": "echo-js", "private": true, "dependencies": {"is-number": "7.0.0"}}"#,
    )
    .unwrap();
    std::fs::write(
        project.join("echo-js/handler.js"),
        "const isNumber = require(\"is-number\");\nmodule.exports = async (event, context) =>\n  context.status(200).succeed({ body: JSON.stringify(event.body), \"content-type\": event.headers[\"content-type\"], number: isNumber(event.query.n) });\n",
    )
    .unwrap();
    let again = node.cli(&["new", "greet", "--lang", "python3-http", "-f", &stack]);
    assert!(!again.status.success(), "a second greet was made");
    let unknown = node.cli(&["new", "x", "--lang", "cobol", "-f", &stack]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("python3-http"));
    stdout(&node.cli(&["deploy", "--stack", &stack]));
    let reply = node
        .send("POST", "/function/greet?name=Ada", &[], "hi")
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("x-greeting"), "yes");
    assert_eq!(
        reply.json(),
        serde_json::json!({"hello": "Ada", "method": "POST", "got": "hi", "tabulate": "0.9.0"})
    );
    let reply = node
        .send(
            "POST",
            "/function/echo-js?n=42",
            &[("content-type", "application/json")],
            r#"{"a":1}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({"body": "{\"a\":1}", "content-type": "application/json", "number": true})
    );
}

#[test]
fn the_cli_explains_an_unreachable_node() {
    let output = std::process::Command::new(crate::harness::BATON)
        .args(["ls", "--gateway", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach Baton"));
}

/// A site's federation id is made at first use and kept: the same id every time, from a key
/// only the site's user may read; another data directory is another site.
#[test]
fn a_site_keeps_one_federation_id() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let id = |data: &std::path::Path, json: bool| {
        let mut command = std::process::Command::new(crate::harness::BATON);
        command.args(["federation", "id", "--data-dir", data.to_str().unwrap()]);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    };
    let site = dir.path().join("site");
    let first = id(&site, false);
    assert_eq!(first.trim().len(), 43, "{first}");
    assert_eq!(id(&site, false), first);
    let described: serde_json::Value = serde_json::from_str(&id(&site, true)).unwrap();
    assert_eq!(described["id"], first.trim());
    let key = std::path::PathBuf::from(described["key_file"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_ne!(id(&dir.path().join("other"), false), first);
}
