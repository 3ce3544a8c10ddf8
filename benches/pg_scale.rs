//! PostgreSQL reads at scale: `list_by_customer`, `list_by_partner` and `history` at
//! 10,000 subscriptions (50,000 events) and at 1,000,000 (5,000,000 events), side by
//! side. The answers are the same size at both scales (10 subscriptions per customer
//! and per partner, 5 events per subscription), so any difference is what finding them
//! costs: with the indexes of the schema, a few more index pages, not a scan.
//!
//! Target (issue 15): at 1M within 1.5x of the latency at 10k. The EXPLAIN of each
//! statement at 1M is in the README ("Persistence: picking a store").
//!
//! Needs `DPOR_TEST_POSTGRES_URL` (`source .ci/postgres.sh`); seeds each scale once
//! per database, in a schema of its own (the 1M one takes a minute or two and about
//! 2 GB). `cargo bench --features postgres --bench pg_scale`

use std::str::FromStr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dpor::sqlx;
use dpor::sqlx::postgres::PgConnectOptions;
use dpor::*;
use tokio::runtime::Runtime;

const SCALES: [(&str, i64); 2] = [("10k", 10_000), ("1M", 1_000_000)];

/// The subscriptions of the seed: `sub-<8 digits>`; subscription `s` belongs to
/// customer `cust-<s / 10>` and has partner `1000000 + s / 10` on record, after 5 events.
const SEED_SUBSCRIPTIONS: &str = r#"
INSERT INTO dpor_subscriptions (id, customer, partner, version, record)
SELECT 'sub-' || lpad(s::text, 8, '0'), 'cust-' || lpad((s / 10)::text, 7, '0'),
       (1000000 + s / 10)::text, 5,
       '{"id":"sub-' || lpad(s::text, 8, '0') || '","customer":"cust-'
       || lpad((s / 10)::text, 7, '0') || '","service":{"type":"office365"},"name":"E3",'
       || '"status":"active","version":5,"last_event_sequence":5,"partner_of_record":'
       || '{"mpn_id":"' || (1000000 + s / 10) || '","partner_name":"Partner",'
       || '"program":"online_services_sell","since":"2026-01-05T10:00:00Z"}}'
FROM generate_series(0, $1 - 1) AS s"#;

/// Five events per subscription: associated, removed, associated, removed, associated.
const SEED_EVENTS: &str = r#"
INSERT INTO dpor_events (subscription, sequence, event)
SELECT 'sub-' || lpad(s::text, 8, '0'), q,
       '{"subscription":"sub-' || lpad(s::text, 8, '0') || '","customer":"cust-'
       || lpad((s / 10)::text, 7, '0') || '","sequence":' || q
       || ',"at":"2026-01-05T10:00:00Z","kind":'
       || CASE WHEN q % 2 = 1
          THEN '{"type":"partner_associated","partner":"' || (1000000 + s / 10)
               || '","partner_name":"Partner","program":"online_services_sell","replaced":null}'
          ELSE '{"type":"partner_removed","partner":"' || (1000000 + s / 10)
               || '","reason":{"type":"removed_by_customer"}}'
          END || '}'
FROM generate_series(0, $1 - 1) AS s, generate_series(1, 5) AS q"#;

/// A repository on the seeded schema of `size` subscriptions (seeding it if needed).
async fn seeded(url: &str, size: i64) -> PostgresRepository {
    let schema = format!("dpor_scale_{size}");
    let options = PgConnectOptions::from_str(url).unwrap();
    let repo = PostgresRepository::connect_with(options.options([("search_path", &schema)]))
        .await
        .unwrap();
    let pool = repo.pool();
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(pool)
        .await
        .unwrap();
    repo.migrate().await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dpor_subscriptions")
        .fetch_one(pool)
        .await
        .unwrap();
    if stored != size {
        eprintln!("seeding {size} subscriptions and {} events", size * 5);
        sqlx::query("TRUNCATE dpor_events, dpor_subscriptions")
            .execute(pool)
            .await
            .unwrap();
        for statement in [SEED_SUBSCRIPTIONS, SEED_EVENTS] {
            sqlx::query(statement)
                .bind(size)
                .execute(pool)
                .await
                .unwrap();
        }
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
    repo
}

fn scale(c: &mut Criterion) {
    let Ok(url) = std::env::var("DPOR_TEST_POSTGRES_URL") else {
        eprintln!("pg_scale skipped: DPOR_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = Runtime::new().unwrap();
    let repos: Vec<(&str, i64, PostgresRepository)> = SCALES
        .iter()
        .map(|(name, size)| (*name, *size, rt.block_on(seeded(&url, *size))))
        .collect();
    let mut group = c.benchmark_group("pg_scale");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    for (name, size, repo) in &repos {
        // A different key each call, spread over the whole table.
        let pick = |k: &mut u64, n: i64| -> i64 {
            *k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((*k >> 33) % n as u64) as i64
        };
        let mut k = 1;
        group.bench_function(BenchmarkId::new("list_by_customer", name), |b| {
            b.iter(|| {
                let customer = CustomerId::new(format!("cust-{:07}", pick(&mut k, size / 10)));
                let found = rt.block_on(repo.list_by_customer(&customer.unwrap()));
                assert_eq!(found.unwrap().len(), 10);
            })
        });
        group.bench_function(BenchmarkId::new("list_by_partner", name), |b| {
            b.iter(|| {
                let partner = MpnId::parse(&(1_000_000 + pick(&mut k, size / 10)).to_string());
                let found = rt.block_on(repo.list_by_partner(&partner.unwrap()));
                assert_eq!(found.unwrap().len(), 10);
            })
        });
        group.bench_function(BenchmarkId::new("history", name), |b| {
            b.iter(|| {
                let id = SubscriptionId::new(format!("sub-{:08}", pick(&mut k, *size)));
                let found = rt.block_on(repo.history(&id.unwrap()));
                assert_eq!(found.unwrap().len(), 5);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
