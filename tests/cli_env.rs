//! The environment the GitHub Action gives db-ci: every input as a `DB_CI_*` variable, empty
//! when the workflow did not set it. Empty means unset, never an invalid value.

mod common;

#[test]
fn empty_db_ci_variables_are_unset() {
    if common::Backend::local().is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let args = vec![
        "run".to_owned(),
        dir.display().to_string(),
        "--backend".to_owned(),
        "local".to_owned(),
    ];
    let output = common::db_ci_with_env(
        &args,
        &[
            ("CI", "true"),
            ("DB_CI_FAIL_ON_LINT", ""),
            ("DB_CI_DATABASE_URL", ""),
            ("DB_CI_IMAGE", ""),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // A set value is still read: an invalid one is a usage error.
    let output = common::db_ci_with_env(&args, &[("CI", "true"), ("DB_CI_FAIL_ON_LINT", "bogus")]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an invalid level is a usage error"
    );
}
