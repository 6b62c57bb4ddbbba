//! The suite's streams, consumers and buckets on the server, made if
//! missing by whoever connects first (coordinator or worker), and the
//! settings both sides must agree on.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, consumer, kv, message::PublishMessage, stream};

use futures_util::StreamExt;

use crate::error::{Error, nats};
use crate::wire::Names;

/// The timings of a suite's transport. Coordinator and workers of a suite
/// should use the same; the first to connect creates the consumers with
/// its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a worker may stay silent on a try before JetStream hands
    /// the try to another worker, which reports it lost. Workers confirm
    /// progress every third of it while a phase runs.
    pub ack_wait: Duration,
    /// How often the server delivers a try at most.
    pub max_deliver: i64,
    /// How long the coordinator's lease outlives its last refresh: a
    /// coordinator killed blocks a new one for at most this long. The
    /// suite's first coordinator on a server makes the lease bucket with
    /// it; later ones use the bucket as it is.
    pub lease_ttl: Duration,
    /// How long the coordinator waits for a worker to answer a cleanup.
    pub cleanup_timeout: Duration,
    /// How long a worker keeps trying to publish a phase's outcome while
    /// the server is away; after it, the try is left to be redelivered.
    pub publish_patience: Duration,
}

impl Default for Settings {
    /// Ack wait 30 s, 5 deliveries, lease 15 s, cleanup 30 s, publish 60 s.
    fn default() -> Self {
        Settings {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            lease_ttl: Duration::from_secs(15),
            cleanup_timeout: Duration::from_secs(30),
            publish_patience: Duration::from_secs(60),
        }
    }
}

/// A suite's handles on the server.
#[derive(Clone)]
pub(crate) struct Transport {
    pub(crate) js: jetstream::Context,
    pub(crate) names: Names,
    pub(crate) settings: Settings,
    pub(crate) tries: stream::Stream,
    pub(crate) reports: stream::Stream,
    /// Run arguments and claims on tries.
    pub(crate) runs: kv::Store,
    /// The runs' [`SharedStorage`](crate::SharedStorage).
    pub(crate) shared: kv::Store,
}

/// The lease key in the suite's lease bucket: the run id of the
/// coordinator that holds it.
pub(crate) const LEASE_KEY: &str = "coordinator";

/// How long a run's arguments, claims and reports are kept on the server.
const KEEP_RUNS: Duration = Duration::from_secs(24 * 3600);

impl Transport {
    /// Finds or makes the suite's streams and the runs bucket.
    pub(crate) async fn open(
        client: async_nats::Client,
        names: Names,
        settings: Settings,
    ) -> Result<Transport, Error> {
        let js = jetstream::new(client);
        let tries = js
            .get_or_create_stream(stream::Config {
                name: names.tries_stream(),
                subjects: vec![format!("dojobber.{}.try.>", names.suite())],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(nats("cannot open the stream of tries"))?;
        let reports = js
            .get_or_create_stream(stream::Config {
                name: names.reports_stream(),
                subjects: vec![format!("dojobber.{}.report.>", names.suite())],
                storage: stream::StorageType::File,
                max_age: KEEP_RUNS,
                ..Default::default()
            })
            .await
            .map_err(nats("cannot open the stream of reports"))?;
        let runs = bucket(&js, &names.runs_bucket(), KEEP_RUNS).await?;
        let shared = bucket(&js, &names.shared_bucket(), KEEP_RUNS).await?;
        Ok(Transport {
            shared,
            js,
            names,
            settings,
            tries,
            reports,
            runs,
        })
    }

    /// Whether any worker serves `label` now: its consumer on the server
    /// says whether one ever did, the live workers' presence keys whether
    /// one does now (a try held by a dead worker looks the same as one
    /// held by a live one to the consumer). `None` when the server cannot
    /// tell.
    pub(crate) async fn served(&self, label: Option<&str>) -> Option<Served> {
        let name = self.names.consumer(label);
        let info = match self.tries.consumer_info(&name).await {
            Ok(info) => info.clone(),
            Err(error) if matches!(error.kind(), ConsumerInfoErrorKind::NotFound) => {
                return Some(Served::Never);
            }
            Err(_) => return None,
        };
        let presence = self.presence_bucket().await.ok()?;
        let mut keys = presence.keys().await.ok()?;
        while let Some(key) = keys.next().await {
            let Ok(key) = key else { return None };
            let Ok(Some(value)) = presence.get(&key).await else {
                continue;
            };
            let Ok(present) = serde_json::from_slice::<Presence>(&value) else {
                continue;
            };
            if label.is_none_or(|label| present.labels.iter().any(|l| l == label)) {
                return Some(Served::Yes);
            }
        }
        Some(Served::NotNow {
            queued: info.num_pending + info.num_ack_pending as u64,
        })
    }

    /// The bucket of the suite's live workers: a key per worker name,
    /// which expires `lease_ttl` after its last refresh.
    pub(crate) async fn presence_bucket(&self) -> Result<kv::Store, Error> {
        bucket(
            &self.js,
            &self.names.workers_bucket(),
            self.settings.lease_ttl,
        )
        .await
    }

    /// The pull consumer of one label's tries (`None`: jobs with no label).
    pub(crate) async fn consumer(
        &self,
        label: Option<&str>,
    ) -> Result<consumer::PullConsumer, Error> {
        let name = self.names.consumer(label);
        self.tries
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.names.try_subject(label),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_deliver: self.settings.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats("cannot open the consumer of tries"))
    }

    /// Publishes to a stream, trying again while the server is away, up to
    /// the publish patience. The message id makes JetStream store a
    /// message sent again (its first acknowledgement lost) only once.
    pub(crate) async fn publish(
        &self,
        subject: String,
        payload: bytes::Bytes,
        id: &str,
    ) -> Result<(), String> {
        let give_up = Instant::now() + self.settings.publish_patience;
        loop {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(id);
            let sent = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < give_up => {
                    tracing::warn!(%error, %subject, "cannot publish; trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The coordinator's lease bucket: keys expire `lease_ttl` after their
    /// last write.
    pub(crate) async fn lease_bucket(&self) -> Result<kv::Store, Error> {
        bucket(
            &self.js,
            &self.names.lease_bucket(),
            self.settings.lease_ttl,
        )
        .await
    }
}

/// Finds a key-value bucket, or makes it with one value per key.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, Error> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: name.to_owned(),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Made meanwhile by another coordinator or worker (perhaps with
        // other settings): theirs is used.
        Err(error) => js
            .get_key_value(name)
            .await
            .map_err(|_| nats("cannot open a key-value bucket")(error)),
    }
}

/// Whether a label's tries have a worker, from its consumer on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// A worker asks for its tries or holds one.
    Yes,
    /// No worker asks or holds one now; `queued` tries wait.
    NotNow { queued: u64 },
    /// No worker ever served it: its consumer does not exist.
    Never,
}

/// A live worker, as its presence key says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Presence {
    /// Its labels.
    pub(crate) labels: Vec<String>,
    /// This process's own mark, so it knows its key from another's.
    pub(crate) instance: String,
}
