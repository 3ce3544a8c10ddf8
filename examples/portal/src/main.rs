//! `dpor-portal`: serves the reference portal on `127.0.0.1:$PORT` (default 8080).
//!
//! | variable | what it sets | default |
//! |---|---|---|
//! | `PORT` | the port | `8080` |
//! | `DATABASE_URL` | the store: `sqlite://portal.db` (feature `sqlite`) or `postgres://...` (feature `postgres`), migrated and seeded on start | the in-memory store |
//! | `PORTAL_SESSION_KEY` | the key that signs session cookies, at least 64 bytes | a random key: sessions end with the process |
//! | `PORTAL_ORIGIN` | the origin browsers reach the portal at behind a proxy, e.g. `https://portal.example`; `https` makes the cookie `Secure` | each request's `Host` |
//! | `PORTAL_OPERATOR_TOKEN` | the operator's secret (outbox page and `GET /api/outbox`) | a random token, printed on start |

use std::net::{Ipv4Addr, SocketAddr};

use dpor_portal::session::Sessions;
use dpor_portal::{Config, build_app, seed};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|e| format!("PORT must be a port number, not {port:?}: {e}"))?,
        Err(_) => 8080,
    };
    let origin = std::env::var("PORTAL_ORIGIN").ok();
    let secure = origin.as_deref().is_some_and(|o| o.starts_with("https://"));
    let sessions = match std::env::var("PORTAL_SESSION_KEY") {
        Ok(key) => {
            Sessions::new(key.as_bytes(), secure).map_err(|e| format!("PORTAL_SESSION_KEY: {e}"))?
        }
        Err(_) => Sessions::generated(secure),
    };
    let (operator_token, generated) = match std::env::var("PORTAL_OPERATOR_TOKEN") {
        Ok(token) if !token.trim().is_empty() => (token.trim().to_owned(), false),
        _ => (dpor_portal::session::random_token(), true),
    };
    let config = Config {
        sessions,
        origin,
        operator_token: operator_token.clone(),
        customers: seed::customers()?,
    };
    let url = std::env::var("DATABASE_URL").ok();
    let (app, store) = match url.as_deref() {
        None => {
            let (service, outbox) = seed::demo_service().await?;
            (
                build_app(service, outbox, config),
                "in-memory store".to_owned(),
            )
        }
        #[cfg(feature = "sqlite")]
        Some(url) if url.starts_with("sqlite:") => {
            let repository = dpor::SqliteRepository::connect(url).await?;
            repository.migrate().await?;
            (seeded(repository, config).await?, url.to_owned())
        }
        #[cfg(feature = "postgres")]
        Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            let repository = dpor::PostgresRepository::connect(url).await?;
            repository.migrate().await?;
            (seeded(repository, config).await?, "PostgreSQL".to_owned())
        }
        Some(url) => {
            return Err(format!(
                "DATABASE_URL {url:?}: this build runs on sqlite: URLs with `--features sqlite` \
                 and on postgres: URLs with `--features postgres` (e.g. \
                 `cargo run -p dpor-portal --features sqlite`)"
            )
            .into());
        }
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!(
        "dpor portal on http://{} ({store}; Ctrl-C to stop)",
        listener.local_addr()?
    );
    if generated {
        println!("operator token (PORTAL_OPERATOR_TOKEN to choose one): {operator_token}");
    }
    axum::serve(listener, app).await?;
    Ok(())
}

/// The portal over `repository`, seeded (seeding skips what is there).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn seeded<R: dpor::Store + 'static>(
    repository: R,
    config: Config,
) -> Result<axum::Router, BoxError> {
    let outbox = dpor::RecordingNotifier::new();
    let service = dpor::PorService::new(repository, seed::directory()?, outbox.clone());
    seed::seed(&service).await?;
    Ok(build_app(service, outbox, config))
}
