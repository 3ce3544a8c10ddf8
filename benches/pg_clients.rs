//! PostgreSQL check + submit throughput at several concurrent clients, for
//! `benches/pg_vs_pgbench.sh`, which runs `pgbench -b tpcb-like` at the same client
//! counts on the same server and prints the ratios (target: at least 1.0x).
//!
//! Each client is a task with its own connection doing what a host's request handler
//! does: parse the subscription id from text, "Check ID", then "Submit", through
//! [`PorService`] over [`PostgresRepository`], with a [`RecordingNotifier`]. Every
//! submit replaces the partner of record (two events, two emails, each claimed and
//! marked delivered). Clients pick subscriptions from a shared set, so two of them
//! sometimes race on one (every 16th request goes to one of 16 shared subscriptions):
//! a [`Error::Conflict`] or an unchanged submit is counted, any other error fails the
//! run.
//!
//! Not a criterion bench: throughput under concurrency for a fixed time is what
//! pgbench reports, so this reports the same. Settings from the environment:
//! `DPOR_TEST_POSTGRES_URL` (required), `DPOR_BENCH_CLIENTS` (default `1,8,16`),
//! `DPOR_BENCH_SECONDS` (default 10). It prints one line per client count:
//! `clients <n> tps <x> changed <c> unchanged <u> conflicts <k>`.
//!
//! `cargo bench --features postgres --bench pg_clients`

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpor::sqlx;
use dpor::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use dpor::*;
use support::{PARTNERS, directory};

mod support;

/// Subscriptions the clients share.
const SUBSCRIPTIONS: u64 = 10_000;

type Service = PorService<PostgresRepository, InMemoryDirectory, RecordingNotifier>;

fn setting<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A service over a new, migrated schema with [`SUBSCRIPTIONS`] subscriptions, its
/// pool `clients` connections wide.
async fn service(url: &str, clients: u32) -> Service {
    let schema = format!("dpor_bench_clients_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    // The crate's pool settings, a connection per client.
    let pool = PostgresRepository::pool_options()
        .max_connections(clients)
        .min_connections(clients)
        .connect_with(options)
        .await
        .unwrap();
    let repo = PostgresRepository::from_pool(pool);
    repo.migrate().await.unwrap();
    let customer = CustomerId::new("contoso").unwrap();
    let batch: Vec<_> = (0..SUBSCRIPTIONS)
        .map(|s| {
            let id = SubscriptionId::new(format!("sub-{s:07}")).unwrap();
            let sub = Subscription::new(id, customer.clone(), CloudService::Office365, "E3");
            (sub, Vec::new())
        })
        .collect();
    repo.import_subscriptions(batch).await.unwrap();
    PorService::new(repo, directory(), RecordingNotifier::new())
}

/// What the clients did.
#[derive(Default)]
struct Counts {
    done: AtomicU64,
    unchanged: AtomicU64,
    conflicts: AtomicU64,
}

/// Subscriptions every client also writes to now and then, so that clients race.
const HOT: u64 = 16;

/// One client of `clients`: check + submit until `stop`, mostly on subscriptions of its
/// own (in turn), every 16th on a shared hot one. It designates the partner it did not
/// designate there last; on a hot subscription another client may have, and the submit
/// then changes nothing (counted as unchanged) or conflicts.
async fn client(
    service: Arc<Service>,
    n: u64,
    clients: u64,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let admin = Actor::global_admin(CustomerId::new("contoso").unwrap());
    let mut last: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let own = (SUBSCRIPTIONS - HOT) / clients;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let s = if k.is_multiple_of(16) {
            (k / 16 + n) % HOT
        } else {
            HOT + n * own + k % own
        };
        let partner = last.get(&s).map_or(0, |p| 1 - p);
        last.insert(s, partner);
        let text = format!("sub-{s:07}");
        let id = SubscriptionId::new(text).unwrap();
        let result = match service.check_partner(&admin, &id, PARTNERS[partner]).await {
            Ok(check) => service.submit(&admin, &check).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(receipt) if !receipt.changed => counts.unchanged.fetch_add(1, Ordering::Relaxed),
            Ok(_) => counts.done.fetch_add(1, Ordering::Relaxed),
            Err(Error::Conflict { .. }) => counts.conflicts.fetch_add(1, Ordering::Relaxed),
            Err(other) => panic!("client {n}: {other}"),
        };
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo bench` / `cargo test --benches` probing the binary
    }
    let Ok(url) = std::env::var("DPOR_TEST_POSTGRES_URL") else {
        eprintln!("pg_clients needs DPOR_TEST_POSTGRES_URL (benches/pg_vs_pgbench.sh sets it)");
        std::process::exit(2);
    };
    let seconds: f64 = setting("DPOR_BENCH_SECONDS", 10.0);
    let clients: String = setting("DPOR_BENCH_CLIENTS", "1,8,16".to_owned());
    for n in clients
        .split(',')
        .filter_map(|c| c.trim().parse::<u32>().ok())
    {
        // As many worker threads as pgbench's `-j` in the script: one per client, at
        // most two (the machine's cores).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.clamp(1, 2) as usize)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let service = Arc::new(service(&url, n).await);
            let stop = Arc::new(AtomicBool::new(false));
            let counts = Arc::new(Counts::default());
            let started = Instant::now();
            let tasks: Vec<_> = (0..n)
                .map(|c| {
                    let run = client(
                        service.clone(),
                        u64::from(c),
                        u64::from(n),
                        stop.clone(),
                        counts.clone(),
                    );
                    tokio::spawn(run)
                })
                .collect();
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await.unwrap();
            }
            let elapsed = started.elapsed().as_secs_f64();
            let [done, unchanged, conflicts] = [&counts.done, &counts.unchanged, &counts.conflicts]
                .map(|c| c.load(Ordering::Relaxed));
            // Every check + submit counts, as pgbench counts every transaction.
            println!(
                "clients {n} tps {:.1} changed {done} unchanged {unchanged} conflicts {conflicts}",
                (done + unchanged + conflicts) as f64 / elapsed,
            );
        });
    }
}
