//! The protocol's floor: the messages a no-op remote try costs the
//! server, sent with bare async-nats calls and no dojobber code at all,
//! with the same concurrency as `remote_try`'s real rows (16 tries in
//! flight, worker processes with one slot each). What a real try costs
//! above this row is ours; what this row costs is what crash safety
//! needs, on this machine.
//!
//! A no-op try (its check passes at once; not handed again, so never
//! claimed; the lease read at most every half of its TTL, so about never)
//! is, message by message:
//!
//! 1. the coordinator publishes the try to the work-queue stream (stored
//!    on file) and gets the server's acknowledgement: a try the server
//!    acknowledged survives a crash of either side;
//! 2. a worker's slot sends a pull request for one try and the server
//!    delivers one: the work queue hands each try to one worker, and
//!    hands it again if that worker goes silent;
//! 3. the worker publishes its report to the reports stream (stored on
//!    file) and gets the acknowledgement: a report is never lost, and the
//!    try is acked only after it;
//! 4. the server delivers the report to the coordinator's reader (an
//!    ordered consumer on the run's subject: it survives reconnections;
//!    its own pull requests go out once per few hundred reports);
//! 5. the worker acks the try, which takes it off the work queue.
//!
//! Four messages in and four out per try, two of them written to files,
//! as in a real run. Payloads have the size of the real ones.

use std::time::{Duration, Instant};

use async_nats::StatusCode;
use async_nats::jetstream::consumer::pull::{BatchConfig, OrderedConfig};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

/// Tries in flight at once: the coordinator's default.
const IN_FLIGHT: usize = 16;

/// About the size of a real `TryRequest` (JSON: run, job, job id,
/// attempt, no-act, the plan's fingerprint in 64 hex digits).
const TRY_SIZE: usize = 160;

/// About the size of a real `WorkerReport` of a passed check.
const REPORT_SIZE: usize = 170;

/// How long a pull request waits at the server, as a real worker's.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

fn tries_stream(suite: &str) -> String {
    format!("BARE_TRIES_{suite}")
}

fn try_subject(suite: &str) -> String {
    format!("bare.{suite}.try")
}

fn reports_stream(suite: &str) -> String {
    format!("BARE_REPORTS_{suite}")
}

fn report_subject(suite: &str, run: &str) -> String {
    format!("bare.{suite}.report.{run}")
}

/// Makes the suite's two streams, with the real ones' settings: a work
/// queue of tries and a stream of reports, both on file.
pub async fn make_streams(url: &str, suite: &str) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: tries_stream(suite),
        subjects: vec![try_subject(suite)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("the stream of tries");
    js.get_or_create_stream(stream::Config {
        name: reports_stream(suite),
        subjects: vec![format!("bare.{suite}.report.>")],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(24 * 3600),
        ..Default::default()
    })
    .await
    .expect("the stream of reports");
}

/// One bare coordinator run of `jobs` no-op tries, 16 in flight; how long
/// it took (its reader's consumer made, every report read). On a task of
/// `runtime`, as a coordinator's phases are, so that it shares the
/// runtime's threads with the client's connection.
pub fn run(runtime: &tokio::runtime::Runtime, url: &str, suite: &str, jobs: usize) -> Duration {
    let (url, suite) = (url.to_owned(), suite.to_owned());
    runtime
        .block_on(runtime.spawn(async move { run_here(&url, &suite, jobs).await }))
        .expect("the bare run")
}

async fn run_here(url: &str, suite: &str, jobs: usize) -> Duration {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    let run = format!(
        "b{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let started = Instant::now();
    let reports = js
        .get_stream(reports_stream(suite))
        .await
        .expect("the stream of reports");
    // 4. The run's reader: an ordered consumer on the run's subject.
    let reader = reports
        .create_consumer(OrderedConfig {
            filter_subject: report_subject(suite, &run),
            ..Default::default()
        })
        .await
        .expect("the reader");
    let mut reports = reader.messages().await.expect("the reader's messages");
    // 1. A try published with a message id (a try sent again is stored
    // once); its acknowledgement awaited later, beside the next ones.
    let publish = |n: usize| {
        let js = js.clone();
        // The run first: the worker reports on the run's subject.
        let payload = padded(format!("{run} {n} "), TRY_SIZE);
        let id = format!("{run}.try.{n}.1");
        async move {
            let message = PublishMessage::build().payload(payload).message_id(id);
            js.send_publish(try_subject(suite), message)
                .await
                .expect("published")
        }
    };
    let mut unconfirmed = FuturesUnordered::new();
    let mut sent = 0;
    while sent < jobs.min(IN_FLIGHT) {
        let ack = publish(sent).await;
        unconfirmed.push(ack.into_future());
        sent += 1;
    }
    let mut reported = 0;
    while reported < jobs {
        tokio::select! {
            report = reports.next() => {
                report.expect("the reader lives").expect("a report");
                reported += 1;
                if sent < jobs {
                    let ack = publish(sent).await;
                    unconfirmed.push(ack.into_future());
                    sent += 1;
                }
            }
            Some(ack) = unconfirmed.next(), if !unconfirmed.is_empty() => {
                ack.expect("the server stored the try");
            }
        }
    }
    while let Some(ack) = unconfirmed.next().await {
        ack.expect("the server stored the try");
    }
    started.elapsed()
}

/// If this process was started as a bare worker (`<bench> bare-worker URL
/// SUITE`), serves until killed and never returns.
pub fn serve_if_worker() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("bare-worker") {
        return;
    }
    let [_, _, url, suite] = &args[..] else {
        panic!("usage: {} bare-worker URL SUITE", args[0]);
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    // On a task, as a real worker's slots are.
    let (url, suite) = (url.to_owned(), suite.to_owned());
    runtime
        .block_on(runtime.spawn(async move { serve(&url, &suite).await }))
        .expect("the bare worker");
    std::process::exit(0);
}

/// One slot: asks for one try at a time, and asks for the next as soon as
/// it has one (a real slot asks once the try's last phase has ended, and
/// reports and acks in a task of its own while the next try comes).
async fn serve(url: &str, suite: &str) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client.clone());
    let tries = js
        .get_stream(tries_stream(suite))
        .await
        .expect("the stream of tries");
    // The work queue's consumer, with a real worker's settings.
    let consumer: consumer::PullConsumer = tries
        .get_or_create_consumer(
            "bare",
            consumer::pull::Config {
                durable_name: Some("bare".into()),
                filter_subject: try_subject(suite),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_deliver: 5,
                ..Default::default()
            },
        )
        .await
        .expect("the consumer of tries");
    let inbox = client.new_inbox();
    let mut deliveries = client.subscribe(inbox.clone()).await.expect("subscribe");
    loop {
        // 2. A pull request for one try, answered with a try or a word
        // that it expired.
        let request = BatchConfig {
            batch: 1,
            expires: Some(PULL_EXPIRES),
            ..Default::default()
        };
        consumer
            .request_batch(request, inbox.clone().into())
            .await
            .expect("a pull request");
        let message = deliveries.next().await.expect("the inbox lives");
        if !matches!(message.status, None | Some(StatusCode::OK)) {
            continue;
        }
        let message = jetstream::Message {
            message,
            context: js.clone(),
        };
        let js = js.clone();
        let suite = suite.to_owned();
        tokio::spawn(async move {
            let run = std::str::from_utf8(&message.payload)
                .ok()
                .and_then(|text| text.split(' ').next())
                .expect("the run's id")
                .to_owned();
            let sequence = message.info().expect("a JetStream message").stream_sequence;
            // 3. The report, stored and acknowledged before the ack.
            let report = PublishMessage::build()
                .payload(padded(format!("{run} {sequence} "), REPORT_SIZE))
                .message_id(format!("{run}.{sequence}.check"));
            js.send_publish(report_subject(&suite, &run), report)
                .await
                .expect("published")
                .await
                .expect("the server stored the report");
            // 5. The ack: the try leaves the work queue.
            message.ack().await.expect("acked");
        });
    }
}

/// `text` padded with spaces to `size` bytes.
fn padded(mut text: String, size: usize) -> bytes::Bytes {
    let pad = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n(' ', pad));
    text.into()
}
