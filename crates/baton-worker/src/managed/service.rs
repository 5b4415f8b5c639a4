//! The gRPC service the control plane calls: prepare, create, delete and list sandboxes.

use super::SandboxHost;
use async_trait::async_trait;
use baton_api::cluster::worker_server::{Worker as WorkerRpc, WorkerServer};
use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{MAX_MESSAGE_BYTES, ServerAuth};
use futures_util::StreamExt;
use std::sync::Arc;
use tonic::{Request, Response, Status};

impl SandboxHost {
    /// The gRPC service the control plane calls.
    pub fn grpc_service(
        self: &Arc<Self>,
    ) -> tonic::service::interceptor::InterceptedService<WorkerServer<WorkerService>, ServerAuth>
    {
        tonic::service::interceptor::InterceptedService::new(
            WorkerServer::new(WorkerService(self.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            ServerAuth::new(self.config.token.as_deref()),
        )
    }
}

/// [`WorkerRpc`] over a [`SandboxHost`].
pub struct WorkerService(Arc<SandboxHost>);

/// Lines a log stream holds for a slow gateway before it waits (backpressure, not loss).
const LOG_STREAM_BUFFER: usize = 256;

#[async_trait]
impl WorkerRpc for WorkerService {
    type LogsStream = tokio_stream::wrappers::ReceiverStream<Result<proto::LogLine, Status>>;

    async fn logs(
        &self,
        request: Request<proto::LogRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let query = baton_api::query_from_wire(request.get_ref());
        let logs = self.0.function_logs(&query);
        let (tx, rx) = tokio::sync::mpsc::channel(LOG_STREAM_BUFFER);
        if let Some(logs) = logs {
            let lines = logs.query(&query);
            let function = query.name.clone();
            // Ends when the lines do, or when the gateway hangs up (the send fails).
            tokio::spawn(async move {
                let mut lines = std::pin::pin!(lines);
                while let Some(line) = lines.next().await {
                    let line = proto::LogLine {
                        function: function.clone(),
                        instance: line.instance.to_string(),
                        stream: line.stream.as_str().into(),
                        unix_micros: baton_api::unix_micros(line.time),
                        text: line.text,
                    };
                    if tx.send(Ok(line)).await.is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn prepare(
        &self,
        request: Request<proto::Function>,
    ) -> Result<Response<proto::Empty>, Status> {
        self.0
            .prepare(request.get_ref())
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn forget(
        &self,
        request: Request<proto::FunctionName>,
    ) -> Result<Response<proto::Empty>, Status> {
        self.0.forget_function(&request.get_ref().name);
        Ok(Response::new(proto::Empty {}))
    }

    async fn create_sandboxes(
        &self,
        request: Request<proto::CreateSandboxes>,
    ) -> Result<Response<proto::CreateSandboxesReply>, Status> {
        let replies = futures_util::future::join_all(
            request
                .into_inner()
                .placements
                .into_iter()
                .map(|placement| self.0.create_placement(placement)),
        )
        .await;
        let mut reply = proto::CreateSandboxesReply::default();
        for one in replies {
            reply.created.extend(one.created);
            reply.failed.extend(one.failed);
        }
        Ok(Response::new(reply))
    }

    async fn delete_sandboxes(
        &self,
        request: Request<proto::SandboxIds>,
    ) -> Result<Response<proto::Empty>, Status> {
        self.0.delete(&request.get_ref().ids);
        Ok(Response::new(proto::Empty {}))
    }

    async fn list_sandboxes(
        &self,
        _: Request<proto::Empty>,
    ) -> Result<Response<proto::SandboxList>, Status> {
        let sandboxes = self
            .0
            .sandboxes
            .read()
            .unwrap()
            .iter()
            .map(|(id, s)| proto::WorkerSandbox {
                id: id.clone(),
                function: s.function.clone(),
                version: s.version,
            })
            .collect();
        Ok(Response::new(proto::SandboxList { sandboxes }))
    }
}
