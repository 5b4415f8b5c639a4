//! Asynchronous calls kept in NATS JetStream, for cluster gateways, as OpenFaaS's gateway and
//! queue-worker keep them: a gateway publishes an accepted call and answers `202` once
//! JetStream has stored it; every gateway of the cluster consumes the same stream, so a call
//! runs on one of them, and one that dies mid-call leaves it unacknowledged for another (at
//! least once).
//!
//! The stream (default `BATON_ASYNC`, subject `<stream>.calls`) keeps calls as a work queue:
//! file storage, a message removed once acknowledged, at most `queue` messages with new ones
//! refused beyond that (`429`). One durable pull consumer, `baton-gateways`, shared by all
//! gateways, acknowledges explicitly after the call ran and its callback was tried; while a
//! call runs its gateway tells JetStream it is still working every third of the ack wait.

use crate::async_calls::{AsyncConfig, run};
use crate::async_journal::Record;
use crate::metrics::Metrics;
use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use baton_api::{ApiError, ErrorKind, Invoker};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The consumer every gateway shares.
const CONSUMER: &str = "baton-gateways";

/// Where a cluster's gateways keep asynchronous calls.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream's name (letters, digits, `-` and `_`).
    pub stream: String,
    /// How long a call may go without word from its gateway before JetStream gives it to
    /// another. Default 30 s.
    pub ack_wait: Duration,
}

impl JetStreamConfig {
    /// A stream named `BATON_ASYNC` on the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        JetStreamConfig {
            url: url.into(),
            stream: "BATON_ASYNC".into(),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// A gateway's connection to the stream.
pub struct JetStreamQueue {
    context: jetstream::Context,
    subject: String,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    ack_wait: Duration,
}

impl JetStreamQueue {
    /// Connects and makes (or finds) the stream, holding at most `capacity` calls, and the
    /// shared consumer.
    pub async fn connect(config: &JetStreamConfig, capacity: usize) -> anyhow::Result<Arc<Self>> {
        let valid = !config.stream.is_empty()
            && config
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        anyhow::ensure!(
            valid,
            "NATS stream name {:?}: letters, digits, '-' and '_' only",
            config.stream
        );
        let client = tokio::time::timeout(
            Duration::from_secs(10),
            async_nats::connect(config.url.as_str()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer from NATS at {} within 10 s", config.url))?
        .with_context(|| format!("connecting to NATS at {}", config.url))?;
        let context = jetstream::new(client);
        let subject = format!("{}.calls", config.stream);
        let stream = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_messages: i64::try_from(capacity.max(1)).unwrap_or(i64::MAX),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("making the JetStream stream {}: {e}", config.stream))?;
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("making the JetStream consumer {CONSUMER}: {e}"))?;
        tracing::info!(url = %config.url, stream = %config.stream, "asynchronous calls in NATS JetStream");
        Ok(Arc::new(JetStreamQueue {
            context,
            subject,
            consumer,
            ack_wait: config.ack_wait,
        }))
    }

    /// Stores `record`: acknowledged once JetStream has it; 429 when the stream is full, 503
    /// when NATS cannot take it.
    pub(crate) async fn push(&self, record: &Record) -> Result<(), ApiError> {
        let stored = async {
            self.context
                .publish(self.subject.clone(), record.encode().into())
                .await?
                .await
        };
        match tokio::time::timeout(Duration::from_secs(10), stored).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if full(&error.to_string()) => Err(ApiError::new(
                ErrorKind::Overloaded,
                "the asynchronous queue is full; retry later",
            )),
            Ok(Err(error)) => {
                tracing::error!(%error, "an asynchronous call could not be stored in JetStream");
                Err(unavailable())
            }
            Err(_) => {
                tracing::error!("JetStream did not store an asynchronous call within 10 s");
                Err(unavailable())
            }
        }
    }

    /// Runs calls from the stream, `config.concurrency` at once, until the gateway stops;
    /// reconnects the consumer when it fails.
    pub(crate) fn start(
        self: Arc<Self>,
        config: AsyncConfig,
        invoker: Arc<dyn Invoker>,
        metrics: Metrics,
    ) {
        let client = crate::https::client();
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        tokio::spawn(async move {
            loop {
                let messages = self
                    .consumer
                    .stream()
                    .max_messages_per_batch(config.concurrency.max(1))
                    .messages()
                    .await;
                let mut messages = match messages {
                    Ok(messages) => messages,
                    Err(error) => {
                        tracing::warn!(%error, "cannot consume asynchronous calls from JetStream; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                while let Some(message) = messages.next().await {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            tracing::warn!(%error, "reading asynchronous calls from JetStream");
                            break;
                        }
                    };
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let record = match Record::decode(&message.payload) {
                        Ok(record) => record,
                        Err(error) => {
                            tracing::error!(%error, "dropping an unreadable asynchronous call from JetStream");
                            let _ = message.ack_with(AckKind::Term).await;
                            continue;
                        }
                    };
                    let (invoker, metrics, client, config) = (
                        invoker.clone(),
                        metrics.clone(),
                        client.clone(),
                        config.clone(),
                    );
                    let every = self.ack_wait / 3;
                    tokio::spawn(async move {
                        let call = run(record, invoker, metrics, client, config);
                        tokio::pin!(call);
                        let mut progress = tokio::time::interval(every);
                        progress.tick().await;
                        loop {
                            tokio::select! {
                                () = &mut call => break,
                                _ = progress.tick() => {
                                    let _ = message.ack_with(AckKind::Progress).await;
                                }
                            }
                        }
                        if let Err(error) = message.ack().await {
                            tracing::warn!(%error, "acknowledging an asynchronous call to JetStream; it may run again");
                        }
                        drop(permit);
                    });
                }
                tracing::warn!("the JetStream consumer ended; reconnecting in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Whether a publish error says the stream holds as many calls as it may.
fn full(error: &str) -> bool {
    error.contains("maximum messages")
}

fn unavailable() -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "the asynchronous queue cannot record calls now; retry later",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_stream_is_told_from_other_failures() {
        assert!(super::full(
            "publish failed: nats: maximum messages exceeded (10077)"
        ));
        assert!(!super::full("timed out: didn't receive ack in time"));
    }
}
