//! Check + submit throughput at several concurrent clients on a SQL store.
//!
//! On PostgreSQL (the default), for `benches/pg_vs_pgbench.sh`, which runs
//! `pgbench -b tpcb-like` at the same client counts on the same server and prints the
//! ratios (target: at least 1.0x). On SQLite (`DPOR_BENCH_STORE=sqlite`), one file in
//! WAL mode shared by every client: the target is 8 clients at least 1.0x the
//! throughput of one, with no error but a conflict (no `SQLITE_BUSY`).
//!
//! Each client is a task doing what a host's request handler does: parse the
//! subscription id from text, "Check ID", then "Submit", through [`PorService`] with a
//! [`RecordingNotifier`]. Every submit replaces the partner of record (two events, two
//! emails, each claimed and marked delivered). Clients sometimes race on one
//! subscription (every 16th request goes to one of 16 shared subscriptions): a
//! [`Error::Conflict`] or an unchanged submit is counted, any other error fails the
//! run.
//!
//! Not a criterion bench: throughput under concurrency for a fixed time is what
//! pgbench reports, so this reports the same. Settings from the environment:
//! `DPOR_BENCH_STORE` (`postgres` or `sqlite`), `DPOR_TEST_POSTGRES_URL` (for
//! PostgreSQL), `DPOR_BENCH_CLIENTS` (default `1,8,16`), `DPOR_BENCH_SECONDS` (default
//! 10). It prints one line per client count:
//! `clients <n> tps <x> changed <c> unchanged <u> conflicts <k>`.
//!
//! `cargo bench --all-features --bench clients`

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpor::*;
use support::{PARTNERS, directory};

mod support;

/// Subscriptions the clients share.
const SUBSCRIPTIONS: u64 = 10_000;

type Service<R> = PorService<R, InMemoryDirectory, RecordingNotifier>;

fn setting<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A PostgreSQL repository in a new, migrated schema, its pool `clients` connections
/// wide. The schema has a fixed name, as the `sql` bench's do: a run leaves one behind
/// on the server it is given, which the next run replaces (it was one per process).
async fn postgres(url: &str, clients: u32) -> PostgresRepository {
    let options = support::empty_schema(url, "dpor_bench_clients").await;
    // The crate's pool settings, a connection per client.
    let pool = PostgresRepository::pool_options()
        .max_connections(clients)
        .min_connections(clients)
        .connect_with(options)
        .await
        .unwrap();
    let repo = PostgresRepository::from_pool(pool);
    repo.migrate().await.unwrap();
    repo
}

/// A SQLite repository on a new file.
async fn sqlite(url: &str) -> SqliteRepository {
    let repo = SqliteRepository::connect(url).await.unwrap();
    repo.migrate().await.unwrap();
    repo
}

/// A service over `repo` with [`SUBSCRIPTIONS`] subscriptions, each with the first of
/// [`PARTNERS`] as partner of record already (imported with the event that set it), so
/// that every submit the clients make replaces a partner: two events, two emails.
/// Until issue 15's ninth round they started with none, and a client's first visit to
/// each of its subscriptions (half the calls of a short run) was a designation of one
/// event and one email.
async fn service<R: Store>(repo: R) -> Service<R> {
    let customer = CustomerId::new("contoso").unwrap();
    let first = &support::directory_partners()[0];
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let batch: Vec<_> = (0..SUBSCRIPTIONS)
        .map(|s| {
            let id = SubscriptionId::new(format!("sub-{s:07}")).unwrap();
            let sub = Subscription::new(id, customer.clone(), CloudService::Office365, "E3");
            match sub.associate(first, Program::OnlineServicesSell, at) {
                Ok(Transition::Changed { next, events }) => (next, events),
                other => panic!("a new subscription takes a partner: {other:?}"),
            }
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
async fn client<R: Store>(
    service: Arc<Service<R>>,
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
        // Each subscription starts with the first partner: the second replaces it.
        let partner = last.get(&s).map_or(1, |p| 1 - p);
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
            Err(other) => panic!("client {n}: {other}: {other:?}"),
        };
    }
}

/// Runs `n` clients on `service` for `seconds` and prints what they did.
async fn run<R: Store + 'static>(service: Service<R>, n: u32, seconds: f64) {
    let service = Arc::new(service);
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
    let [done, unchanged, conflicts] =
        [&counts.done, &counts.unchanged, &counts.conflicts].map(|c| c.load(Ordering::Relaxed));
    // Every check + submit counts, as pgbench counts every transaction.
    println!(
        "clients {n} tps {:.1} changed {done} unchanged {unchanged} conflicts {conflicts}",
        (done + unchanged + conflicts) as f64 / elapsed,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo bench` / `cargo test --benches` probing the binary
    }
    let on_sqlite = std::env::var("DPOR_BENCH_STORE").is_ok_and(|s| s == "sqlite");
    let url = std::env::var("DPOR_TEST_POSTGRES_URL");
    if !on_sqlite && url.is_err() {
        eprintln!("clients needs DPOR_TEST_POSTGRES_URL (benches/pg_vs_pgbench.sh sets it)");
        std::process::exit(2);
    }
    let seconds: f64 = setting("DPOR_BENCH_SECONDS", 10.0);
    let clients: String = setting("DPOR_BENCH_CLIENTS", "1,8,16".to_owned());
    for n in clients
        .split(',')
        .filter_map(|c| c.trim().parse::<u32>().ok())
        .filter(|n| (1..=64).contains(n))
    {
        // As many worker threads as pgbench's `-j` in the script: one per client, at
        // most two (the machine's cores).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.clamp(1, 2) as usize)
            .enable_all()
            .build()
            .unwrap();
        // A file per run: the last run's connections may still be closing.
        let mut files = support::TempDbs::default();
        let file = files.url(&format!("clients-{n}"));
        runtime.block_on(async {
            match (on_sqlite, &url) {
                (true, _) => run(service(sqlite(&file).await).await, n, seconds).await,
                (false, Ok(url)) => run(service(postgres(url, n).await).await, n, seconds).await,
                (false, Err(_)) => {} // refused above
            }
        });
        drop(runtime);
    }
}
