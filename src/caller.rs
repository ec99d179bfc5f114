//! Who started the run (the `db-ci` command or a Rust test through `db_ci::testing::Gate`),
//! so that advice in a message names the switch the reader can actually flip.

/// Who asked for the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Caller {
    #[default]
    Cli,
    /// A `cargo test` through `db_ci::testing::Gate`.
    Library,
}

impl Caller {
    /// How to accept the catalog as the committed snapshot.
    pub fn update_snapshot(self) -> &'static str {
        self.either(
            "`db-ci run --update-snapshot`",
            "`Gate::update_snapshot(true)` (the CLI: `db-ci run --update-snapshot`)",
        )
    }

    /// How to run on a server of another major version than the project's.
    pub fn any_server_version(self) -> &'static str {
        self.either(
            "--any-server-version",
            "`Gate::any_server_version(true)` (the CLI: --any-server-version)",
        )
    }

    /// How the lint fail level was turned off.
    pub fn fail_on_lint_never(self) -> &'static str {
        self.either(
            "--fail-on-lint never",
            "`Gate::fail_on_lint(FailOn::Never)`",
        )
    }

    /// How to pick another backend or image.
    pub fn backend_switch(self, cli: &str) -> String {
        match self {
            Caller::Cli => cli.to_owned(),
            Caller::Library => format!("{cli}; in a test: `Gate::backend(…)`, `Gate::image(…)`"),
        }
    }

    fn either(self, cli: &'static str, library: &'static str) -> &'static str {
        match self {
            Caller::Cli => cli,
            Caller::Library => library,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_caller_is_told_the_gate_method_and_the_cli_user_the_flag() {
        assert_eq!(
            Caller::Cli.update_snapshot(),
            "`db-ci run --update-snapshot`"
        );
        assert!(Caller::Library
            .update_snapshot()
            .starts_with("`Gate::update_snapshot(true)`"));
        assert!(Caller::Library
            .any_server_version()
            .contains("Gate::any_server_version"));
        assert!(!Caller::Cli.fail_on_lint_never().contains("Gate"));
    }
}
