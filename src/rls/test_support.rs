//! Cells and actors for the rls modules' unit tests: built as planning builds them, without
//! a database.

use crate::actors::Actor;

use super::plan::{Cell, CellKind, OpKind};
use crate::policy_tests::cases::{Expect, Operation};

/// A cell of `operation` on `public.notes` (or an `sql:` cell) run as `actor`.
pub fn cell(operation: Operation, expect: Option<Expect>, actor: Actor) -> Cell {
    Cell {
        file: "policy-tests/notes.yaml".into(),
        case: "notes are private".into(),
        case_line: 7,
        target: if operation == Operation::Sql {
            "sql".into()
        } else {
            "public.notes".into()
        },
        operation,
        actor,
        expect,
        case_index: 0,
        unreviewed: false,
        deny_sqlstates: Vec::new(),
        deny_on_error: false,
        op: String::new(),
        op_kind: if operation == Operation::Select {
            OpKind::Count
        } else {
            OpKind::Rows
        },
        then: Vec::new(),
        returns: None,
        kind: if operation == Operation::Sql {
            CellKind::Call {
                probe_actors: Vec::new(),
            }
        } else {
            CellKind::Rows {
                relation: crate::catalog::QualifiedName::new("public", "notes"),
                before: None,
                after: None,
                filter: "owner_id = alice".into(),
                broken: None,
            }
        },
        now: None,
        base_now: None,
    }
}

/// The actor `name` as the matrix's `actors:` entry `spec` (YAML) resolves it.
pub fn actor(name: &str, spec: &str) -> Actor {
    let spec: crate::actors::ActorSpec =
        crate::yaml::parse_yaml(spec, std::path::Path::new("notes.yaml")).unwrap();
    Actor::resolve(name, &spec).unwrap()
}
