//! A property the engine's unit tests run with a fake database.

use super::{Compiled, Rows, StepOutcome};
use crate::actors::Actor;
use crate::policy_tests::properties::Template;

pub(super) fn template(text: &str) -> Template {
    Template::parse(text).unwrap()
}

/// Two operations: `vote` draws one value of a three-value pool, `reset` draws none.
pub(super) fn compiled(actors: Vec<Actor>) -> Compiled {
    Compiled {
        templates: vec![
            template("update posts set votes = votes + {{delta}}"),
            template("update posts set votes = 0"),
        ],
        draw_pools: vec![vec![vec!["1".into(), "2".into(), "3".into()]], vec![]],
        impersonations: actors.iter().map(super::Impersonation::of).collect(),
        actors,
        invariant: "select * from posts where votes < 0".into(),
        invariant_call: "select * from posts where votes < 0".into(),
        cases: 40,
        max_steps: 6,
    }
}

pub(super) fn actor(name: &str, spec: &str) -> Actor {
    let spec: crate::actors::ActorSpec =
        crate::yaml::parse_yaml(spec, std::path::Path::new("props.yaml")).unwrap();
    Actor::resolve(name, &spec).unwrap()
}

pub(super) fn violated() -> StepOutcome {
    StepOutcome::Violated(Rows {
        columns: vec!["votes".into()],
        rows: vec![vec![Some("-1".into())]],
    })
}
