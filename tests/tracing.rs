//! The `tracing` feature: a span per service operation with its outcome, an event for
//! each delivery failure and dead letter, and no email address or partner name at
//! INFO or above.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use dpor::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// What a subscriber saw: spans with their fields, and events with their level.
#[derive(Default)]
struct Seen {
    spans: Vec<Vec<(String, String)>>,
    events: Vec<(Level, Vec<(String, String)>)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        ));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut seen = self.0.lock().unwrap();
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        seen.spans.push(fields);
        Id::from_u64(seen.spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.0.lock().unwrap();
        let index = span.into_u64() as usize - 1;
        values.record(&mut Fields(&mut seen.spans[index]));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .events
            .push((*event.metadata().level(), fields));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The messages of the events seen at `level`, in order.
fn messages(seen: &Seen, level: Level) -> Vec<&str> {
    seen.events
        .iter()
        .filter(|(l, _)| *l == level)
        .filter_map(|(_, fields)| field(fields, "message"))
        .collect()
}

/// What the thread's subscriber saw while `work` ran on a current-thread runtime.
fn traced<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> Recorder {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(work());
    recorder
}

#[test]
fn operations_and_delivery_failures_are_traced_without_personal_data() {
    let recorder = traced(|| async {
        let w = world().await;
        let service = w.service.with_delivery_policy(DeliveryPolicy {
            max_attempts: 2,
            ..DeliveryPolicy::default()
        });
        w.notifier.fail_next(2);
        check_and_submit(&service, &admin(), &sub_id("sub-001"), "565380")
            .await
            .unwrap();
        let billing = Actor::customer(contoso(), CustomerRole::BillingAdministrator);
        assert!(
            service
                .remove_partner(&billing, &sub_id("sub-001"))
                .await
                .is_err()
        );
        w.clock.advance(time::Duration::hours(2));
        service.dispatch_pending(10).await.unwrap();
    });

    let seen = recorder.0.lock().unwrap();
    let submit = seen
        .spans
        .iter()
        .find(|s| field(s, "operation") == Some("submit"))
        .expect("a span for submit");
    assert_eq!(field(submit, "subscription"), Some("sub-001"));
    assert_eq!(
        field(submit, "actor"),
        Some("customer.global_administrator")
    );
    assert_eq!(field(submit, "outcome"), Some("ok"));
    let refused = seen
        .spans
        .iter()
        .find(|s| field(s, "operation") == Some("remove_partner"))
        .expect("a span for remove_partner");
    assert_eq!(field(refused, "outcome"), Some("forbidden"));
    assert_eq!(
        field(refused, "actor"),
        Some("customer.billing_administrator")
    );

    assert_eq!(
        messages(&seen, Level::WARN),
        ["delivery failed", "dead letter"]
    );
    let failure = &seen
        .events
        .iter()
        .find(|(l, _)| *l == Level::WARN)
        .unwrap()
        .1;
    assert_eq!(field(failure, "notification"), Some("sub-001#1"));
    assert_eq!(field(failure, "attempt"), Some("1"));

    // Nothing at INFO or above names an address or a partner.
    for (level, fields) in &seen.events {
        if *level <= Level::INFO {
            for (_, value) in fields {
                assert!(
                    !value.contains('@') && !value.contains("Fabrikam"),
                    "{level}: {value}"
                );
            }
        }
    }
    for fields in &seen.spans {
        for (_, value) in fields {
            assert!(
                !value.contains('@') && !value.contains("Fabrikam"),
                "span: {value}"
            );
        }
    }
}

#[test]
fn a_failed_claim_after_a_commit_is_traced() {
    let recorder = traced(|| async {
        let w = world().await;
        // A store that claims nothing with its commit (the trait's default) and whose
        // claim then fails: the change stands, its email waits for the dispatcher.
        let repo = Faulty::new(w.repo.clone());
        repo.fail_claim
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let service = PorService::new(repo, w.directory.clone(), w.notifier.clone())
            .with_clock(w.clock.clone());
        let receipt = check_and_submit(&service, &admin(), &sub_id("sub-001"), "565380")
            .await
            .unwrap();
        assert_eq!(receipt.notifications_delivered, 0);
    });
    let seen = recorder.0.lock().unwrap();
    assert_eq!(
        messages(&seen, Level::ERROR),
        ["claiming notifications to deliver failed"]
    );
}
