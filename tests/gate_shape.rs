//! What the gate reads from a migration statement's text, pinned: each `.sql` file under
//! `tests/gate_shape/` split into statements as the rehearsal's trace splits them, and for
//! each what `gate::shape` classifies it as (its operations, whether it opens a table to the
//! anon key, whether it sets a lock timeout).

use db_ci::gate::shape;

/// Each statement of `source` with its line, then what shape reads from it (a statement it
/// reads nothing from says so, so a lost classification shows in the diff).
fn render(source: &str) -> String {
    let mut out = String::new();
    for statement in db_ci::sql::split(source) {
        let text = statement.text(source);
        let (line, _) = db_ci::sql::line_col(source, statement.start);
        out.push_str(&format!("-- line {line}\n{}\n", text.trim_end()));
        let mut read = Vec::new();
        for op in shape::operations_within(text) {
            read.push(format!("{op:?}"));
        }
        if let Some((table, policy)) = shape::opens_to_anon(text) {
            read.push(format!(
                "OpensToAnon {{ table: {table:?}, policy: {policy:?} }}"
            ));
        }
        if shape::sets_lock_timeout(text) {
            read.push("SetsLockTimeout".to_owned());
        }
        if read.is_empty() {
            read.push("(nothing)".to_owned());
        }
        for item in read {
            out.push_str(&format!("=> {item}\n"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn what_each_statement_is_read_as_is_pinned() {
    insta::glob!("gate_shape/*.sql", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        insta::assert_snapshot!(render(&source));
    });
}
