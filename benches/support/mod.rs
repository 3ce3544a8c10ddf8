//! What the bench binaries share. Each binary uses part of it.
#![allow(dead_code)]

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use dpor::*;

/// The two partners the benches alternate between, so that every operation changes.
pub const PARTNERS: [&str; 2] = ["565380", "3664167"];

/// [`PARTNERS`], enrolled in the Sell program.
pub fn directory_partners() -> Vec<Partner> {
    PARTNERS
        .iter()
        .enumerate()
        .map(|(i, mpn)| {
            Partner::new(MpnId::parse(mpn).unwrap(), format!("Partner {i}"))
                .with_contact_email(format!("partner{i}@example.com"))
                .enrolled_in(Program::OnlineServicesSell)
        })
        .collect()
}

/// A directory listing [`directory_partners`].
pub fn directory() -> InMemoryDirectory {
    let directory = InMemoryDirectory::new();
    for partner in directory_partners() {
        directory.insert(partner);
    }
    directory
}

/// Polls a future that never waits (the in-memory ports) to completion, in place: the
/// figures are the crate's own cost, with no runtime in them.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// A host's notifier that accepts everything (so that no bench piles up emails).
pub struct Discard;

#[async_trait]
impl Notifier for Discard {
    async fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// Connection options for a new, empty schema `schema` (dropped first if it exists) on
/// the server at `url`.
#[cfg(feature = "postgres")]
pub async fn empty_schema(url: &str, schema: &str) -> dpor::sqlx::postgres::PgConnectOptions {
    use dpor::sqlx;
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    for statement in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    admin.close().await;
    <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
        .unwrap()
        .options([("search_path", schema)])
}

/// The bench's SQLite files, `dpor-bench-<pid>-<name>.db` in the temp dir, removed
/// (with their `-wal` and `-shm`) before use and when dropped.
#[derive(Default)]
pub struct TempDbs(Vec<std::path::PathBuf>);

impl TempDbs {
    /// The URL of a new file named `name`.
    pub fn url(&mut self, name: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("dpor-bench-{}-{name}.db", std::process::id()));
        remove_db(&path);
        let url = format!("sqlite://{}", path.display());
        self.0.push(path);
        url
    }
}

impl Drop for TempDbs {
    fn drop(&mut self) {
        self.0.iter().for_each(|path| remove_db(path));
    }
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
