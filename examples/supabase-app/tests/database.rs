use db_ci::sqlx;
use db_ci::testing::{Gate, Shared};

// One boot and one replay of supabase/ for this test binary, on the first test that asks;
// the server stops when the binary exits. The backend: DB_CI_BACKEND, DB_CI_IMAGE,
// DB_CI_DATABASE_URL, else auto. `.backend(…)`, `.seed(…)`, `.only(&[StageId::Rls])`,
// `.fail_on_lint(FailOn::Warn)`, `.any_server_version(true)`… narrow it.
static PROJECT: Shared = Shared::new(|| Gate::new(env!("CARGO_MANIFEST_DIR")));

#[tokio::test]
async fn the_database_is_safe_to_ship() {
    // Panics with the console's failure text: file:line:col, statement, notes, summary.
    PROJECT.assert_pass().await;
}

#[tokio::test]
async fn a_new_user_gets_a_profile() {
    // This test's own copy of the replayed database, with a fixture applied; dropped when
    // the test ends, passed or not.
    let db = PROJECT.database_with(&["tests/fixtures/alice.sql"]).await;
    let username: String = sqlx::query_scalar("select username from profiles")
        .fetch_one(db.pg_pool()) // feature "sqlx"
        .await
        .unwrap();
    assert_eq!(username, "alice");
}

#[tokio::test]
async fn every_test_starts_from_the_replayed_state() {
    let db = PROJECT.database().await;
    let client = db.client(); // tokio-postgres, always there
    let row = client
        .query_one("select count(*) from profiles", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
}
