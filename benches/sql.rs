//! Check + submit throughput on the SQL repositories against a hand-written sqlx
//! baseline doing the same work the straightforward way, with no abstraction and
//! pre-encoded JSON: the two reads, a transaction with one statement per row (the
//! compare-and-swap, each event, each outbox row), a claim per email, and a
//! transaction marking them delivered. The crate now does the commit and the claim in
//! one statement on PostgreSQL and marks in one statement, so the two sides no longer
//! send the same statements: the ratio is what a host gains over writing it by hand.
//!
//! Target: dpor at least 0.8x the baseline's throughput.
//!
//! Also the outbox's dispatch throughput (notifications per second, from a batch of
//! pending ones), with one dispatcher and with two running at once; and reading the
//! change feed (events per second: `PorService::changes` from the start to the end of
//! 10,000 events, in pages of 1,000, as a downstream reader catching up does).
//!
//! SQLite runs on a temporary file in WAL mode; PostgreSQL needs
//! `DPOR_TEST_POSTGRES_URL` (`source .ci/postgres.sh` starts one) and is skipped
//! without it. Run with `cargo bench --all-features --bench sql`.

use std::collections::HashMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dpor::sqlx;
use dpor::*;
use support::{Discard, PARTNERS, directory};

mod support;
use tokio::runtime::Runtime;

const SUBSCRIPTIONS: usize = 100;

fn ids() -> Vec<SubscriptionId> {
    (0..SUBSCRIPTIONS)
        .map(|i| SubscriptionId::new(format!("sub-{i:04}")).unwrap())
        .collect()
}

async fn seed<R: Store>(repo: &R) {
    let customer = CustomerId::new("contoso").unwrap();
    for id in ids() {
        repo.insert(Subscription::new(
            id,
            customer.clone(),
            CloudService::Office365,
            "E3",
        ))
        .await
        .unwrap();
    }
}

/// What the baseline remembers instead of reading it back: per subscription, its
/// version, its last event sequence and its partner.
type Versions = HashMap<String, (i64, i64, Option<&'static str>)>;

/// The same statements by hand, written once per database (sqlx's generic bounds are
/// more trouble than two copies made by a macro).
macro_rules! baseline {
    ($name:ident, $pool:ty, $claim:expr) => {
        async fn $name(pool: &$pool, versions: &mut Versions, k: usize) {
            let id = format!("sub-{:04}", k % SUBSCRIPTIONS);
            let mpn = PARTNERS[(k / SUBSCRIPTIONS) % 2];
            let get = "SELECT id, version, record FROM dpor_subscriptions WHERE id = $1";
            for _ in 0..2 {
                // Check ID, then the re-read at submit.
                sqlx::query(get)
                    .bind(id.as_str())
                    .fetch_optional(pool)
                    .await
                    .unwrap();
            }
            let (version, sequence, current) = versions.get(&id).copied().unwrap_or((0, 0, None));
            let mut tx = pool.begin().await.unwrap();
            let updated = sqlx::query(
                "UPDATE dpor_subscriptions SET partner = $1, version = $2, record = $3 \
                 WHERE id = $4 AND version = $5",
            )
            .bind(Some(mpn))
            .bind(version + 1)
            .bind(format!(
                r#"{{"id":"{id}","partner":"{mpn}","version":{}}}"#,
                version + 1
            ))
            .bind(id.as_str())
            .bind(version)
            .execute(&mut *tx)
            .await
            .unwrap();
            assert_eq!(updated.rows_affected(), 1);
            let events: &[&str] = if current.is_some() {
                &["removed", "added"]
            } else {
                &["added"]
            };
            let mut outbox = Vec::new();
            for (i, kind) in events.iter().enumerate() {
                let seq = sequence + 1 + i as i64;
                sqlx::query(
                    "INSERT INTO dpor_events (subscription, sequence, event) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(seq)
                .bind(format!(
                    r#"{{"subscription":"{id}","sequence":{seq},"kind":"{kind}"}}"#
                ))
                .execute(&mut *tx)
                .await
                .unwrap();
                let nid = format!("{id}#{seq}");
                sqlx::query(
                    "INSERT INTO dpor_outbox (id, notification, subscription, recipient, \
                     next_attempt_at) VALUES ($1, $2, $3, $4, 0)",
                )
                .bind(nid.as_str())
                .bind(format!(r#"{{"id":"{nid}","kind":"{kind}"}}"#))
                .bind(id.as_str())
                .bind(mpn)
                .execute(&mut *tx)
                .await
                .unwrap();
                outbox.push(nid);
            }
            tx.commit().await.unwrap();
            // Claim each, as the outbox does before sending.
            for nid in &outbox {
                sqlx::query($claim)
                    .bind(i64::MAX)
                    .bind(0_i64)
                    .bind(1_i64)
                    .bind(nid.as_str())
                    .fetch_all(pool)
                    .await
                    .unwrap();
            }
            let mut tx = pool.begin().await.unwrap();
            for nid in &outbox {
                sqlx::query(
                    "UPDATE dpor_outbox SET status = 'delivered', claimed_until = NULL \
                             WHERE id = $1 AND status = 'pending'",
                )
                .bind(nid.as_str())
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
            versions.insert(id, (version + 1, sequence + events.len() as i64, Some(mpn)));
        }
    };
}

/// The outbox's claim, as dpor runs it (`$1` the lease's end, `$2` now, `$3` the limit,
/// `$4` the id).
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE dpor_outbox SET claimed_until = $1 WHERE position IN (",
            " SELECT o.position FROM dpor_outbox o",
            " WHERE o.status = 'pending' AND o.next_attempt_at <= $2",
            " AND (o.claimed_until IS NULL OR o.claimed_until <= $2)",
            " AND ($4 IS NULL OR o.id = $4)",
            " AND NOT EXISTS (SELECT 1 FROM dpor_outbox e WHERE e.status = 'pending'",
            " AND e.subscription = o.subscription AND e.recipient = o.recipient",
            " AND e.position < o.position)",
            " ORDER BY o.position LIMIT $3 ",
            $lock,
            ") RETURNING position"
        )
    };
}

baseline!(sqlite_baseline, sqlx::SqlitePool, claim!(""));
baseline!(
    postgres_baseline,
    sqlx::PgPool,
    claim!("FOR UPDATE SKIP LOCKED")
);

fn run_dpor<R: Store>(c: &mut Criterion, rt: &Runtime, group: &str, repo: R) {
    let service = PorService::new(repo, directory(), Discard);
    let admin = Actor::global_admin(CustomerId::new("contoso").unwrap());
    let ids = ids();
    let mut k = 0;
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    g.bench_function("dpor", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = &ids[k % SUBSCRIPTIONS];
                let mpn = PARTNERS[(k / SUBSCRIPTIONS) % 2];
                let check = service.check_partner(&admin, id, mpn).await.unwrap();
                assert!(service.submit(&admin, &check).await.unwrap().changed);
            });
            k += 1;
        })
    });
    g.finish();
}

/// Benchmarks `op` (one baseline operation) next to dpor's in `group`.
fn run_baseline<F: AsyncFnMut(usize)>(c: &mut Criterion, rt: &Runtime, group: &str, mut op: F) {
    let mut k = 0;
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    g.bench_function("baseline", |b| {
        b.iter(|| {
            rt.block_on(op(k));
            k += 1;
        })
    });
    g.finish();
}

/// How many pending notifications a dispatch run delivers.
const PENDING: usize = 1_000;

/// `PENDING` notifications of independent subscriptions, pending.
fn pending() -> Vec<OutboxEntry> {
    (0..PENDING)
        .map(|i| {
            let subscription = SubscriptionId::new(format!("mail-{i:05}")).unwrap();
            OutboxEntry::new(
                0,
                Notification {
                    id: NotificationId::for_event(&subscription, 1),
                    partner: MpnId::parse(PARTNERS[0]).unwrap(),
                    contact_email: None,
                    kind: NotificationKind::Added,
                    subscription,
                    customer: CustomerId::new("contoso").unwrap(),
                    service: CloudService::Office365,
                    at: time::OffsetDateTime::UNIX_EPOCH,
                },
            )
        })
        .collect()
}

/// Dispatch throughput with each of `repos` (pools over one database) running a
/// dispatcher at once; `reset` empties the outbox before each run (not timed).
fn run_dispatch<R: Store + Clone + 'static>(
    c: &mut Criterion,
    rt: &Runtime,
    group: &str,
    repos: &[R],
    reset: impl AsyncFn(),
) {
    let services: Vec<_> = repos
        .iter()
        .map(|repo| std::sync::Arc::new(PorService::new(repo.clone(), directory(), Discard)))
        .collect();
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    g.throughput(criterion::Throughput::Elements(PENDING as u64));
    g.bench_function(format!("{}_dispatchers", repos.len()), |b| {
        b.iter_custom(|runs| {
            let mut total = Duration::ZERO;
            for _ in 0..runs {
                rt.block_on(async {
                    reset().await;
                    repos[0].import_outbox(pending()).await.unwrap();
                });
                let start = std::time::Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = services
                        .iter()
                        .map(|service| {
                            let service = service.clone();
                            tokio::spawn(async move {
                                // Bounded: a store that kept offering what it
                                // delivered would otherwise hang the bench.
                                for _ in 0..1_000 {
                                    let report = service.dispatch_pending(100).await.unwrap();
                                    if report.delivered == 0 {
                                        break;
                                    }
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// Events in the feed the `feed` rows read.
const FEED_EVENTS: usize = 10_000;

/// `FEED_EVENTS` events: subscriptions whose partner of record changed 5 times each
/// (each change after the first is two events), imported as they are.
async fn seed_feed<R: Store>(repo: &R) {
    let customer = CustomerId::new("contoso").unwrap();
    let partners: Vec<Partner> = support::directory_partners();
    let mut batch = Vec::new();
    let mut events = 0;
    for i in 0.. {
        if events >= FEED_EVENTS {
            break;
        }
        let id = SubscriptionId::new(format!("feed-{i:05}")).unwrap();
        let mut subscription =
            Subscription::new(id, customer.clone(), CloudService::Office365, "E3");
        let mut history = Vec::new();
        for k in 0..5 {
            let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(k);
            if let Transition::Changed { next, events } = subscription
                .associate(&partners[k as usize % 2], Program::OnlineServicesSell, at)
                .unwrap()
            {
                subscription = next;
                history.extend(events);
            }
        }
        events += history.len();
        batch.push((subscription, history));
        if batch.len() == 200 {
            repo.import_subscriptions(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    repo.import_subscriptions(batch).await.unwrap();
}

/// Reads the whole feed through `service`, a page of 1,000 at a time, as a reader
/// catching up does; answers how many changes.
async fn read_feed<R: Store>(service: &PorService<R, InMemoryDirectory, Discard>) -> usize {
    let billing = Actor::billing_system();
    let (mut read, mut after) = (0, None);
    loop {
        let page = service
            .changes(&billing, after.as_ref(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return read;
        };
        after = Some(last.cursor);
        read += page.len();
    }
}

/// Reading the whole feed through the service.
fn run_feed<R: Store + 'static>(c: &mut Criterion, rt: &Runtime, group: &str, repo: R) {
    let service = PorService::new(repo, directory(), Discard);
    let total = rt.block_on(async {
        seed_feed(service.repository()).await;
        read_feed(&service).await
    });
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    g.throughput(criterion::Throughput::Elements(total as u64));
    g.bench_function("read_all", |b| {
        b.iter(|| assert_eq!(rt.block_on(read_feed(&service)), total))
    });
    g.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut files = support::TempDbs::default();
    let repo = rt.block_on(async {
        let repo = SqliteRepository::connect(&files.url("dpor")).await.unwrap();
        repo.migrate().await.unwrap();
        seed(&repo).await;
        repo
    });
    run_dpor(c, &rt, "sql/sqlite_file_wal/check_submit", repo);
    let pool = rt.block_on(async {
        let repo = SqliteRepository::connect(&files.url("baseline"))
            .await
            .unwrap();
        repo.migrate().await.unwrap();
        seed(&repo).await;
        repo.pool().clone()
    });
    let mut versions = Versions::new();
    run_baseline(c, &rt, "sql/sqlite_file_wal/check_submit", async |k| {
        sqlite_baseline(&pool, &mut versions, k).await
    });

    let url = files.url("dispatch");
    let repos: Vec<SqliteRepository> = rt.block_on(async {
        let first = SqliteRepository::connect(&url).await.unwrap();
        first.migrate().await.unwrap();
        vec![first, SqliteRepository::connect(&url).await.unwrap()]
    });
    let reset = async || {
        sqlx::query("DELETE FROM dpor_outbox")
            .execute(repos[0].pool())
            .await
            .unwrap();
    };
    for dispatchers in [1, 2] {
        run_dispatch(
            c,
            &rt,
            "sql/sqlite_file_wal/dispatch",
            &repos[..dispatchers],
            reset,
        );
    }
    let feed = rt.block_on(async {
        let repo = SqliteRepository::connect(&files.url("feed")).await.unwrap();
        repo.migrate().await.unwrap();
        repo
    });
    run_feed(c, &rt, "sql/sqlite_file_wal/feed", feed);
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("DPOR_TEST_POSTGRES_URL") else {
        eprintln!("sql/postgres: skipped, DPOR_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = Runtime::new().unwrap();
    let fresh = |schema: &'static str| {
        let url = url.clone();
        async move {
            let options = support::empty_schema(&url, schema).await;
            let repo =
                PostgresRepository::from_pool(sqlx::PgPool::connect_with(options).await.unwrap());
            repo.migrate().await.unwrap();
            seed(&repo).await;
            repo
        }
    };
    let repo = rt.block_on(fresh("dpor_bench"));
    run_dpor(c, &rt, "sql/postgres/check_submit", repo);
    let pool = rt.block_on(fresh("dpor_bench_baseline")).pool().clone();
    let mut versions = Versions::new();
    run_baseline(c, &rt, "sql/postgres/check_submit", async |k| {
        postgres_baseline(&pool, &mut versions, k).await
    });

    let first = rt.block_on(fresh("dpor_bench_dispatch"));
    let second = rt.block_on(async {
        let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url)
            .unwrap()
            .options([("search_path", "dpor_bench_dispatch")]);
        PostgresRepository::from_pool(sqlx::PgPool::connect_with(options).await.unwrap())
    });
    let repos = [first, second];
    let reset = async || {
        sqlx::query("DELETE FROM dpor_outbox")
            .execute(repos[0].pool())
            .await
            .unwrap();
    };
    for dispatchers in [1, 2] {
        run_dispatch(
            c,
            &rt,
            "sql/postgres/dispatch",
            &repos[..dispatchers],
            reset,
        );
    }
    let feed = rt.block_on(async {
        let options = support::empty_schema(&url, "dpor_bench_feed").await;
        let repo =
            PostgresRepository::from_pool(sqlx::PgPool::connect_with(options).await.unwrap());
        repo.migrate().await.unwrap();
        repo
    });
    run_feed(c, &rt, "sql/postgres/feed", feed);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
