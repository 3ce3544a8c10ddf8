//! The pure transitions: `Subscription::associate` and `remove_partner`.
//!
//! Target: under 200 ns per transition.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dpor::*;
use time::macros::datetime;

fn bench(c: &mut Criterion) {
    let at = datetime!(2026-01-05 10:00 UTC);
    let sell = Program::OnlineServicesSell;
    let a = Partner::new(MpnId::parse("565380").unwrap(), "Fabrikam Consulting").enrolled_in(sell);
    let b = Partner::new(MpnId::parse("3664167").unwrap(), "Northwind Traders").enrolled_in(sell);
    let empty = Subscription::new(
        SubscriptionId::new("sub-001").unwrap(),
        CustomerId::new("contoso").unwrap(),
        CloudService::Office365,
        "Office 365 E3",
    );
    let Ok(Transition::Changed { next: with_a, .. }) = empty.associate(&a, sell, at) else {
        panic!("expected a change")
    };

    let mut group = c.benchmark_group("transition");
    group.bench_function("associate", |bench| {
        bench.iter(|| black_box(black_box(&empty).associate(black_box(&a), sell, at)))
    });
    group.bench_function("replace", |bench| {
        bench.iter(|| black_box(black_box(&with_a).associate(black_box(&b), sell, at)))
    });
    group.bench_function("remove", |bench| {
        bench.iter(|| black_box(black_box(&with_a).remove_partner(at)))
    });
    group.bench_function("unchanged", |bench| {
        bench.iter(|| black_box(black_box(&with_a).associate(black_box(&a), sell, at)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
