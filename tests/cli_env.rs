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

/// `--color` and the colour conventions, on a project that stops before anything boots.
#[test]
fn console_colour_follows_the_flag_and_the_environment() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/input-rls-unknown-key");
    let coloured = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["run".to_owned(), dir.display().to_string()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let output = common::db_ci_with_env(&args, env);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(stdout.contains("Summary"), "{stdout}");
        stdout.contains("\u{1b}[")
    };
    // Not a terminal: no colour, unless asked for.
    assert!(!coloured(&[], &[]));
    assert!(coloured(&["--color", "always"], &[]));
    assert!(coloured(&[], &[("CLICOLOR_FORCE", "1")]));
    // A GitHub Actions log renders colour; NO_COLOR and --color never still win.
    assert!(coloured(&[], &[("GITHUB_ACTIONS", "true")]));
    assert!(!coloured(
        &[],
        &[("GITHUB_ACTIONS", "true"), ("NO_COLOR", "1")]
    ));
    assert!(!coloured(
        &["--color", "never"],
        &[("GITHUB_ACTIONS", "true")]
    ));
    // An empty NO_COLOR is unset (no-color.org).
    assert!(coloured(
        &[],
        &[("GITHUB_ACTIONS", "true"), ("NO_COLOR", "")]
    ));
    // --color always beats NO_COLOR: the flag is the more specific request.
    assert!(coloured(&["--color", "always"], &[("NO_COLOR", "1")]));
}
