//! The data listener: gateways' invocations, `ANY /sandbox/{id}/{path}`, and `/metrics`.

use super::{SANDBOX_WAIT, SandboxHost};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Duration;

impl SandboxHost {
    /// `GET /metrics`: the worker's sandboxes and its state agent's replication (Prometheus
    /// text; open, by the Prometheus convention, like a node's).
    fn metrics(&self) -> http::Response<Full<Bytes>> {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP baton_worker_sandboxes Sandboxes on this worker.\n# TYPE baton_worker_sandboxes gauge\nbaton_worker_sandboxes {}",
            self.sandbox_count()
        );
        let _ = writeln!(
            out,
            "# HELP baton_worker_functions_prepared Function versions fetched and compiled, ready for sandboxes.\n# TYPE baton_worker_functions_prepared gauge\nbaton_worker_functions_prepared {}",
            self.prepared_count()
        );
        if let Some(state) = &self.state {
            let _ = (state.metrics)(&mut out);
        }
        http::Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(out)))
            .expect("static response")
    }

    /// Serves invocations from gateways on `listener`: `ANY /sandbox/{id}/{path}`.
    pub async fn serve_data(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let host = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let host = host.clone();
                    async move { Ok::<_, std::convert::Infallible>(host.route(request).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    }

    async fn route(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.path() == "/metrics" {
            return self.metrics();
        }
        let Some(rest) = parts.uri.path().strip_prefix("/sandbox/") else {
            return text(404, "worker data plane: use /sandbox/{id}/{path}\n");
        };
        let (id, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let id = id.to_owned();
        let hold = parts
            .headers
            .remove(SANDBOX_WAIT)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        let limit = self
            .sandboxes
            .read()
            .unwrap()
            .get(&id)
            .map_or(16 << 20, |s| s.spec.limits.max_body_bytes as usize);
        let mut function_path = path.to_owned();
        if let Some(query) = parts.uri.query() {
            function_path.push('?');
            function_path.push_str(query);
        }
        match function_path.parse() {
            Ok(uri) => parts.uri = uri,
            Err(_) => return text(400, "bad path\n"),
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return text(413, "request body too large\n"),
        };
        self.invoke(&id, hold, http::Request::from_parts(parts, body))
            .await
    }
}

fn text(status: u16, body: &'static str) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}
