//! The repository conformance suite (`dpor::testkit`) against the in-memory store.
//! The SQLite and PostgreSQL stores run it in their own test files.

use dpor::InMemoryRepository;

#[tokio::test]
async fn in_memory_repository_conforms() {
    if let Err(failure) =
        dpor::testkit::check_repository(|| async { InMemoryRepository::new() }).await
    {
        panic!("{failure}");
    }
}
