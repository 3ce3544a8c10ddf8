//! `MpnId::parse` against `str::trim` + `str::parse::<u64>` on the same strings, one
//! benchmark per input and per call (as a portal calls it).
//!
//! Target: a valid parse within 1.5x the baseline, for every input.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dpor::MpnId;

const VALID: [&str; 6] = [
    "565380",
    "3664167",
    "0012345",
    "12345",
    "1234567890",
    " 565380 ",
];
const INVALID: [&str; 5] = ["", "56a380", "1234", "12345678901", "MSFT-565380"];

fn bench(c: &mut Criterion) {
    for (kind, inputs) in [("valid", &VALID[..]), ("invalid", &INVALID[..])] {
        for input in inputs {
            let mut group = c.benchmark_group(format!("mpn_id/{kind}/{input:?}"));
            group.bench_function("dpor", |b| {
                b.iter(|| black_box(MpnId::parse(black_box(input))))
            });
            group.bench_function("baseline_u64", |b| {
                b.iter(|| black_box(black_box(input).trim().parse::<u64>()))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
