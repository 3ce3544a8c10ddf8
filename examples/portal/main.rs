//! A reference portal that wraps `dpor`: the customer's "partner of record" pages as
//! server-rendered HTML, and a JSON API over the same `PorService`.
//!
//! Run with `cargo run --example portal` (port from `PORT`, default 8080), then open
//! <http://127.0.0.1:8080/>. It runs on the in-memory defaults, seeded with two
//! customers ("contoso" and "fourthcoffee"), their subscriptions and three partners.
//!
//! Layout: `app.rs` (state, router, error mapping, the sign-in cookie), `pages.rs` (the
//! HTML pages), `api.rs` (the JSON API), `html.rs` (escaping and layout), `seed.rs`
//! (demo data). The tests `tests/portal_api.rs` and `tests/portal_browser.rs` include
//! these modules and build the same router.
//!
//! Built with the `sqlite` feature and given `DATABASE_URL`, it runs on SQLite instead
//! (`DATABASE_URL=sqlite://portal.db cargo run --features sqlite --example portal`),
//! migrating and seeding the database on start (seeding skips what is there).
//!
//! To run over another store, build a `PorService` over it and hand it to
//! [`app::build_app`]: the router is generic over the repository, the directory and
//! the clock.

mod api;
mod app;
mod html;
mod pages;
mod seed;

use std::net::{Ipv4Addr, SocketAddr};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|e| format!("PORT must be a port number, not {port:?}: {e}"))?,
        Err(_) => 8080,
    };
    let (app, store) = match database_url() {
        #[cfg(feature = "sqlite")]
        Some(url) => {
            let repository = dpor::SqliteRepository::connect(&url).await?;
            repository.migrate().await?;
            let outbox = dpor::RecordingNotifier::new();
            let service = dpor::PorService::new(repository, seed::directory()?, outbox.clone());
            seed::seed(&service).await?;
            (app::build_app(service, outbox, seed::customers()?), url)
        }
        _ => {
            let (service, outbox) = seed::demo_service().await?;
            (
                app::build_app(service, outbox, seed::customers()?),
                "in-memory store".to_owned(),
            )
        }
    };

    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!(
        "dpor portal on http://{} ({store}; Ctrl-C to stop)",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// `DATABASE_URL`, when the example is built with the `sqlite` feature to use it.
fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if cfg!(not(feature = "sqlite")) && url.is_some() {
        eprintln!("DATABASE_URL is ignored: build with `--features sqlite` to use it");
        return None;
    }
    url
}
