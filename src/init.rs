//! `db-ci init`: what an unconfigured project is told to do next, and writing a `db-ci.yaml`
//! tuned to the project from what a replay of it shows.

use crate::project::Project;

/// One line for the end of a run on a project without `db-ci.yaml`: what to do next.
/// `None` once the project is configured.
pub fn next_step_hint(project: &Project) -> Option<String> {
    if project.root.join(crate::config::FILE_NAME).is_file() {
        return None;
    }
    Some(format!(
        "next: no {} in {}: run `db-ci init {}` to write one tuned to this project",
        crate::config::FILE_NAME,
        project.root.display(),
        project.root.display()
    ))
}
