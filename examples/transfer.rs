//! Moving a host's data from one store to another, as a host that started on the
//! embedded SQLite store and outgrew one machine does:
//!
//! ```sh
//! cargo run --all-features --example transfer -- sqlite://dpor.db postgres://user@host/db
//! ```
//!
//! Stop the services first. Both databases are migrated to this release's schema; the
//! target must be empty, or a partial copy of the source left by an interrupted run
//! (which this run then completes). Without arguments it moves a small demo database
//! between two temporary SQLite files.

use dpor::*;
use time::macros::datetime;

/// The file a SQLite URL names, as the store reads the URL, unless it is in memory
/// (what `SqliteRepository::connect` takes for one).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = dpor::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// A store opened from its URL, migrated to this release's schema.
async fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres") {
        let repo = PostgresRepository::connect(url).await?;
        let migration = repo.migrate().await?;
        println!(
            "  {url}: schema version {} (was {})",
            migration.to, migration.from
        );
        Ok(Box::new(repo))
    } else {
        let repo = SqliteRepository::connect(url).await?;
        let migration = repo.migrate().await?;
        println!(
            "  {url}: schema version {} (was {})",
            migration.to, migration.from
        );
        Ok(Box::new(repo))
    }
}

/// A few subscriptions with a partner of record, a history, and an email still pending.
async fn demo_data(repo: &dyn Store) -> Result<(), Box<dyn std::error::Error>> {
    let contoso = CustomerId::new("contoso")?;
    for (id, service) in [
        ("sub-001", CloudService::Office365),
        ("sub-002", CloudService::Azure),
    ] {
        repo.insert(Subscription::new(
            SubscriptionId::new(id)?,
            contoso.clone(),
            service,
            id,
        ))
        .await?;
    }
    let directory = InMemoryDirectory::new().with_partner(
        Partner::new(MpnId::parse("565380")?, "Fabrikam")
            .with_contact_email("por@fabrikam.example")
            .enrolled_in(Program::OnlineServicesSell),
    );
    let notifier = RecordingNotifier::new();
    let service = PorService::new(repo, directory, notifier.clone())
        .with_clock(ManualClock::new(datetime!(2026-01-05 10:00 UTC)));
    let admin = Actor::global_admin(contoso);
    for id in ["sub-001", "sub-002"] {
        if id == "sub-002" {
            notifier.fail_next(1); // the mail server is down: the email stays pending
        }
        let check = service
            .check_partner(&admin, &SubscriptionId::new(id)?, "565380")
            .await?;
        service.submit(&admin, &check).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = std::env::temp_dir().join(format!("dpor-transfer-demo-{}", std::process::id()));
    let moved = run(&args, &demo).await;
    if args.is_empty() {
        let _ = std::fs::remove_dir_all(&demo); // the demo's files, whatever happened
    }
    moved
}

async fn run(args: &[String], demo: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let (from_url, to_url) = match args {
        [from, to] => {
            // SQLite creates a file it cannot find: a mistyped source would be an empty
            // store, and the copy a successful copy of nothing.
            if !from.starts_with("postgres")
                && let Some(file) = sqlite_file(from)
                && !file.exists()
            {
                let file = file.display();
                return Err(format!("the source database {file} does not exist").into());
            }
            (from.clone(), to.clone())
        }
        [] => {
            std::fs::create_dir_all(demo)?;
            let urls = (
                format!("sqlite://{}", demo.join("small.db").display()),
                format!("sqlite://{}", demo.join("bigger.db").display()),
            );
            println!("No URLs given: moving a demo database between two temporary files.");
            urls
        }
        _ => return Err("usage: transfer FROM_DATABASE_URL TO_DATABASE_URL".into()),
    };
    println!("Opening both stores:");
    let from = open(&from_url).await?;
    let to = open(&to_url).await?;
    if args.is_empty() {
        demo_data(&*from).await?;
    }

    println!("Copying, {} records a page:", transfer::DEFAULT_PAGE_SIZE);
    let report = transfer(&*from, &*to).await?;
    println!(
        "  {} subscriptions with {} history events, {} outbox entries ({} delivered)",
        report.subscriptions, report.events, report.notifications, report.delivered
    );
    if report.subscriptions_already_there + report.notifications_already_there > 0 {
        println!(
            "  carried on after an earlier run: {} subscriptions and {} entries were there",
            report.subscriptions_already_there, report.notifications_already_there
        );
    }
    let pending = to.pending_notifications(usize::MAX).await?;
    println!(
        "  pending emails in the target, for dispatch_pending: {}",
        pending.len()
    );

    Ok(())
}
