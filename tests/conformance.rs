//! The repository conformance suite (`dpor::testkit`) against the in-memory store.
//! The SQLite and PostgreSQL stores run it in their own test files.

mod common;

use dpor::InMemoryRepository;

#[tokio::test]
async fn in_memory_repository_conforms() {
    if let Err(failure) =
        dpor::testkit::check_repository(|| async { InMemoryRepository::new() }).await
    {
        panic!("{failure}");
    }
}

#[tokio::test]
async fn in_memory_commit_claims_its_email() {
    common::commit_claims_its_email(&InMemoryRepository::new()).await;
}
