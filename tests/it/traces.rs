//! Traces across the queue, as a real OTLP/HTTP receiver gets them: one webhook is one trace
//! from ingest's span through the dispatcher's to the create and into the PipelineRun's
//! annotation; a sender's `traceparent` is a link; a redelivery, and a replay from the
//! dead-letter stream, link instead of continuing; and a dead collector costs nothing but
//! counted drops.

use std::time::{Duration, Instant};

use sluice_tests::api_double::{Failure, Verb};
use sluice_tests::otlp::{ExportedSpan, OtlpReceiver};
use sluice_tests::procs::{
    ConfigFrom, Dispatcher, Ingest, SinkTarget, eventually, free_port, github_signature,
};

use crate::support::{ConfigDir, SECRET, github_listener, metric_sum, post, push_body};

const SA_USER: &str = "system:serviceaccount:team-a:builder";
/// What a sender put in its own request: linked to, never continued.
const SENDER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";

/// The GitHub listener with a `cel` filter that lets pushes to main through: an interceptor
/// the dispatcher runs, so it has a span.
fn listener_with_cel() -> String {
    let listener = github_listener("team-a", "builder");
    let edge = "            - {name: eventTypes, value: [push]}\n";
    assert!(listener.contains(edge));
    listener.replace(
        edge,
        &format!(
            "{edge}        - ref: {{name: cel}}\n          params:\n            - {{name: filter, value: \"body.ref == 'refs/heads/main'\"}}\n"
        ),
    )
}

/// ingest and one dispatcher on a fresh NATS and API double, both exporting to `endpoint`.
struct Traced {
    nats: sluice_tests::NatsServer,
    api: sluice_tests::ApiDouble,
    ingest: Ingest,
    dispatcher: Dispatcher,
    _config: ConfigDir,
    _kube_dir: tempfile::TempDir,
}

impl Traced {
    async fn start(endpoint: &str, prepare: impl FnOnce(&sluice_tests::ApiDouble)) -> Traced {
        let config = ConfigDir::new().file("github.yaml", &listener_with_cel());
        let nats = sluice_tests::NatsServer::start().await;
        let api = sluice_tests::ApiDouble::start().await;
        api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
        prepare(&api);
        let kube_dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(kube_dir.path());
        // Batches leave every 100 ms, so that the test need not wait the default 5 s.
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ];
        let ingest =
            Ingest::start_from_env(&nats.url(), ConfigFrom::Dir(config.path()), &[], &env).await;
        ingest.wait_ready().await;
        let dispatcher = Dispatcher::spawn_from_env(
            &nats.url(),
            ConfigFrom::Dir(config.path()),
            SinkTarget::Kube(&kubeconfig),
            &[],
            &env,
        );
        dispatcher.wait_ready().await;
        Traced {
            nats,
            api,
            ingest,
            dispatcher,
            _config: config,
            _kube_dir: kube_dir,
        }
    }

    /// Posts a signed push carrying the sender's own `traceparent`; returns the event id.
    async fn push(&self, revision: &str) -> String {
        let body = push_body(revision);
        let sender = format!("00-{SENDER_TRACE}-{SENDER_SPAN}-01");
        let (status, answer) = post(
            &reqwest::Client::new(),
            &self.ingest.hook_url("team-a", "github"),
            &body,
            &[
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", &github_signature(SECRET, &body)),
                ("traceparent", &sender),
            ],
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        answer["eventID"].as_str().expect("an event id").to_owned()
    }

    /// The one PipelineRun created, once it is.
    async fn the_run(&self) -> serde_json::Value {
        let created = eventually(Duration::from_secs(30), || async {
            self.api
                .object_count("tekton.dev", "pipelineruns", "team-a")
                >= 1
        })
        .await;
        assert!(created, "no run:\n{}", self.dispatcher.process.logs());
        let runs = self.api.objects("tekton.dev", "pipelineruns", "team-a");
        assert_eq!(runs.len(), 1);
        runs.into_iter().next().expect("one run")
    }
}

/// `(trace id, span id)` of the span context in a PipelineRun's annotation, in the JSON
/// carrier form Tekton Pipelines reads.
fn annotated_context(run: &serde_json::Value) -> (String, String) {
    let annotation = run["metadata"]["annotations"]["tekton.dev/pipelinerunSpanContext"]
        .as_str()
        .unwrap_or_else(|| panic!("no span-context annotation: {run}"));
    let carrier: serde_json::Value = serde_json::from_str(annotation).expect("a JSON carrier");
    let traceparent = carrier["traceparent"].as_str().expect("a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// Waits until the receiver holds spans for which `done` holds; returns them all.
async fn spans_until(
    receiver: &OtlpReceiver,
    done: impl Fn(&[ExportedSpan]) -> bool,
) -> Vec<ExportedSpan> {
    let arrived = eventually(Duration::from_secs(30), || async {
        done(&receiver.spans())
    })
    .await;
    let spans = receiver.spans();
    assert!(arrived, "the spans never arrived: {spans:#?}");
    spans
}

fn named<'s>(spans: &'s [ExportedSpan], name: &str) -> Vec<&'s ExportedSpan> {
    spans.iter().filter(|span| span.name() == name).collect()
}

fn one<'s>(spans: &'s [ExportedSpan], name: &str) -> &'s ExportedSpan {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name} span expected: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn one_webhook_is_one_trace_from_ingest_to_the_pipelinerun() {
    let receiver = OtlpReceiver::start();
    let stack = Traced::start(&receiver.endpoint(), |_| {}).await;
    let event_id = stack.push(&"a".repeat(40)).await;
    let run = stack.the_run().await;
    let (run_trace, run_parent) = annotated_context(&run);

    let spans = spans_until(&receiver, |spans| {
        ["webhook", "consume", "interceptor", "create"]
            .iter()
            .all(|name| spans.iter().any(|span| span.name() == *name))
    })
    .await;
    // Only the spans made for export: no logging span reaches the collector.
    for span in &spans {
        assert!(
            ["webhook", "consume", "interceptor", "create"].contains(&span.name()),
            "unexpected span {span:?}"
        );
    }
    let webhook = one(&spans, "webhook");
    let consume = one(&spans, "consume");
    let interceptor = one(&spans, "interceptor");
    let create = one(&spans, "create");

    // Ingest's server span starts the trace: the sender's context is a link, not its parent.
    assert_eq!(webhook.service(), "sluice-ingest");
    assert_eq!(webhook.kind(), "server");
    assert_eq!(webhook.parent_span_id(), "", "{webhook:?}");
    assert_ne!(webhook.trace_id(), SENDER_TRACE);
    assert_eq!(
        webhook.links(),
        vec![(SENDER_TRACE.into(), SENDER_SPAN.into(), "sender".into())]
    );
    assert_eq!(webhook.attribute("sluice.event_id"), Some(event_id.clone()));
    assert_eq!(
        webhook.attribute("sluice.listener").as_deref(),
        Some("github")
    );
    assert_eq!(
        webhook.attribute("sluice.namespace").as_deref(),
        Some("team-a")
    );
    assert_eq!(
        webhook.attribute("http.response.status_code").as_deref(),
        Some("202")
    );

    // The dispatcher continues it across the queue…
    let trace = webhook.trace_id();
    assert_eq!(consume.service(), "sluice-dispatcher");
    assert_eq!(consume.kind(), "consumer");
    assert_eq!(consume.trace_id(), trace);
    assert_eq!(consume.parent_span_id(), webhook.span_id());
    assert_eq!(consume.attribute("sluice.event_id"), Some(event_id.clone()));
    assert_eq!(consume.attribute("sluice.attempt").as_deref(), Some("1"));
    assert_eq!(consume.attribute("sluice.result").as_deref(), Some("ack"));

    // …through the trigger's interceptor and create, children of the delivery…
    for child in [interceptor, create] {
        assert_eq!(child.trace_id(), trace, "{child:?}");
        assert_eq!(child.parent_span_id(), consume.span_id(), "{child:?}");
        assert_eq!(
            child.attribute("sluice.trigger").as_deref(),
            Some("on-push")
        );
        assert_eq!(
            child.attribute("sluice.namespace").as_deref(),
            Some("team-a")
        );
    }
    assert_eq!(
        interceptor.attribute("sluice.interceptor").as_deref(),
        Some("cel")
    );
    assert_eq!(
        interceptor.attribute("sluice.result").as_deref(),
        Some("continue")
    );
    assert_eq!(create.kind(), "client");
    assert_eq!(
        create.attribute("sluice.result").as_deref(),
        Some("created")
    );
    assert_eq!(
        create.attribute("k8s.name").as_deref(),
        run["metadata"]["name"].as_str()
    );

    // …and into the PipelineRun, for Tekton Pipelines to continue under the create.
    assert_eq!(run_trace, trace);
    assert_eq!(run_parent, create.span_id());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_links_to_the_webhook_rather_than_continuing_its_trace() {
    let receiver = OtlpReceiver::start();
    let stack = Traced::start(&receiver.endpoint(), |api| {
        api.fail_next(Verb::Create, 1, Failure::InternalError);
    })
    .await;
    stack.push(&"b".repeat(40)).await;
    let run = stack.the_run().await;

    let spans = spans_until(&receiver, |spans| {
        named(spans, "consume").len() >= 2 && named(spans, "create").len() >= 2
    })
    .await;
    let webhook = one(&spans, "webhook");
    let consumes = named(&spans, "consume");
    let attempt = |n: &str| {
        *consumes
            .iter()
            .find(|span| span.attribute("sluice.attempt").as_deref() == Some(n))
            .unwrap_or_else(|| panic!("no attempt {n}: {consumes:#?}"))
    };
    let (first, second) = (attempt("1"), attempt("2"));
    assert_eq!(first.parent_span_id(), webhook.span_id());
    assert_eq!(first.attribute("sluice.result").as_deref(), Some("retry"));
    let failed = named(&spans, "create")
        .into_iter()
        .find(|span| span.attribute("sluice.result").as_deref() == Some("error"))
        .expect("the failed create's span");
    assert_eq!(failed.parent_span_id(), first.span_id());
    assert_eq!(
        failed.attribute("http.response.status_code").as_deref(),
        Some("500")
    );

    // The second delivery is a trace of its own, leading back to the webhook.
    assert_ne!(second.trace_id(), webhook.trace_id());
    assert_eq!(second.parent_span_id(), "");
    assert_eq!(
        second.links(),
        vec![(
            webhook.trace_id().into(),
            webhook.span_id().into(),
            "redelivery".into()
        )]
    );
    let (run_trace, _) = annotated_context(&run);
    assert_eq!(
        run_trace,
        second.trace_id(),
        "the run continues the attempt that made it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_dead_letter_links_to_the_delivery_that_gave_it_up() {
    let receiver = OtlpReceiver::start();
    let stack = Traced::start(&receiver.endpoint(), |api| {
        api.fail_next(Verb::Create, 1, Failure::Forbidden);
    })
    .await;
    stack.push(&"c".repeat(40)).await;
    let spans = spans_until(&receiver, |spans| {
        named(spans, "create")
            .iter()
            .any(|span| span.attribute("sluice.result").as_deref() == Some("error"))
            && named(spans, "consume")
                .iter()
                .any(|span| span.attribute("sluice.result").is_some())
    })
    .await;
    let gave_up = one(&spans, "consume");
    assert_eq!(
        gave_up.attribute("sluice.result").as_deref(),
        Some("ack"),
        "dead-lettered, then acked"
    );

    let replay = tokio::process::Command::new(sluice_tests::procs::bin_path("sluice"))
        .args(["dlq", "replay", "--all"])
        .env("SLUICE_NATS_URL", stack.nats.url())
        .output()
        .await
        .expect("run sluice dlq replay");
    assert!(replay.status.success(), "{replay:?}");
    stack.the_run().await;

    let spans = spans_until(&receiver, |spans| named(spans, "consume").len() >= 2).await;
    let replayed = named(&spans, "consume")
        .into_iter()
        .find(|span| span.span_id() != gave_up.span_id())
        .expect("the replay's consumer span");
    assert_eq!(replayed.parent_span_id(), "", "a trace of its own");
    assert_ne!(replayed.trace_id(), gave_up.trace_id());
    assert_eq!(
        replayed.links(),
        vec![(
            gave_up.trace_id().into(),
            gave_up.span_id().into(),
            "dead_letter".into()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_collector_costs_webhooks_nothing_but_dropped_spans() {
    // Nothing listens there.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let stack = Traced::start(&dead, |_| {}).await;
    let post_pushes = |revisions: std::ops::Range<u32>| async {
        let client = reqwest::Client::new();
        let url = stack.ingest.hook_url("team-a", "github");
        for i in revisions {
            let body = push_body(&format!("{i:040x}"));
            let started = Instant::now();
            let (status, answer) = post(
                &client,
                &url,
                &body,
                &[
                    ("X-GitHub-Event", "push"),
                    ("X-Hub-Signature-256", &github_signature(SECRET, &body)),
                ],
            )
            .await;
            assert_eq!(status, 202, "{answer}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a webhook waited {:?} with the collector down",
                started.elapsed()
            );
        }
    };
    post_pushes(0..20).await;
    let created = eventually(Duration::from_secs(30), || async {
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a")
            >= 20
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());

    for (binary, metrics_url) in [
        ("ingest", &stack.ingest.metrics_url),
        ("dispatcher", &stack.dispatcher.metrics_url),
    ] {
        let counted = eventually(Duration::from_secs(30), || async {
            metric_sum(
                metrics_url,
                "sluice_trace_spans_dropped_total",
                &["reason=\"export_failed\""],
            )
            .await
                > 0
        })
        .await;
        assert!(counted, "{binary} counted no dropped span");
    }
    // Known to be down now: later webhooks' spans are not even recorded, and say so.
    post_pushes(20..30).await;
    let skipped = eventually(Duration::from_secs(10), || async {
        metric_sum(
            &stack.ingest.metrics_url,
            "sluice_trace_spans_dropped_total",
            &["reason=\"collector_down\""],
        )
        .await
            > 0
    })
    .await;
    assert!(skipped, "no span was skipped while the collector was down");
    assert!(
        stack.ingest.process.logs().contains("trace export failed"),
        "the failure is logged once: {}",
        stack.ingest.process.logs()
    );
}
