//! Readable differences between two snapshot texts: a unified diff, and the line of the first
//! change so that a failure can point at it.

use similar::TextDiff;

/// Lines of context around each change: enough to see which object a changed line is in.
const CONTEXT_LINES: usize = 4;

/// The unified diff from `expected` (committed) to `actual` (the database), or `None` when
/// they are equal.
pub fn unified(
    expected: &str,
    actual: &str,
    expected_name: &str,
    actual_name: &str,
) -> Option<String> {
    if expected == actual {
        return None;
    }
    let diff = TextDiff::from_lines(expected, actual);
    Some(
        diff.unified_diff()
            .context_radius(CONTEXT_LINES)
            .header(expected_name, actual_name)
            .to_string(),
    )
}

/// The 1-based line in `expected` where the first difference starts.
pub fn first_changed_line(expected: &str, actual: &str) -> usize {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    let mut line = 1;
    loop {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (None, None) => return 1,
            _ => return line,
        }
    }
}

/// How many lines were added and removed.
pub fn counts(expected: &str, actual: &str) -> (usize, usize) {
    let diff = TextDiff::from_lines(expected, actual);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_a_hunk_with_its_context() {
        let before = "tables:\n  public.a:\n    rls: false\n";
        let after = "tables:\n  public.a:\n    rls: true\n";
        let diff = unified(before, after, "committed", "database").unwrap();
        assert!(diff.contains("-    rls: false\n+    rls: true"), "{diff}");
        assert!(diff.contains("--- committed"), "{diff}");
        assert_eq!(first_changed_line(before, after), 3);
        assert_eq!(counts(before, after), (1, 1));
        assert!(unified(before, before, "a", "b").is_none());
    }
}
