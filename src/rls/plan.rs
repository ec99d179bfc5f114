//! Turning cases into cells: for each actor × operation, the SQL run as admin before, as the
//! actor, and as admin after, so that the outcome can be judged non-vacuously.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub use super::spec::split_target;
use super::spec::{
    resolve, returns_rows_wanted, CaseSpec, DenyOn, Expect, Expectations, OpExpect, Operation,
    SqlStates, Target,
};
use crate::actors::{Actor, ActorKind};
use crate::policy_tests::PolicyFile;
use crate::sql::{quote_ident, quote_literal};

/// How the actor's statement's result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A `select count(*)`: the number of target rows the actor sees.
    Count,
    /// DML or an RPC: the number of rows affected, or the error.
    Rows,
}

/// One cell: actor × operation × case.
#[derive(Debug, Clone)]
pub struct Cell {
    pub file: String,
    pub case: String,
    pub case_line: usize,
    /// `schema.table`, or `sql`.
    pub target: String,
    pub operation: Operation,
    /// The actor it runs as, resolved (and bound to its seeded user) when planned.
    pub actor: Actor,
    /// `None` while recording (`rls --record`): the cell has no expectation yet and what it
    /// observes becomes one.
    pub expect: Option<Expect>,
    /// The case's index in the file's `cases:`, where a recording is written.
    pub case_index: usize,
    /// The actor is listed under the operation's `unreviewed:`: a recorded expectation
    /// nobody reviewed yet.
    pub unreviewed: bool,
    /// The SQLSTATEs that mean denied besides 42501 (`sqlstate:`, `deny_sqlstate:`).
    pub deny_sqlstates: Vec<String>,
    /// `deny_on: error`: any error that does not say the statement is wrong is a denial.
    pub deny_on_error: bool,
    /// Admin query before: (count, rows already as `set` wants, keys, fingerprint).
    pub before: Option<String>,
    /// The statement run as the actor.
    pub op: String,
    pub op_kind: OpKind,
    /// Admin query after, with the keys of `before` as `$1`: (count, rows as `set` wants,
    /// fingerprint).
    pub after: Option<String>,
    /// `then:` post-conditions, rendered for the actor, run as admin after the statement.
    pub then: Vec<String>,
    /// `returns:` rendered for the actor; the statement then also returns its rows as JSON.
    pub returns: Option<Returns>,
    /// The case's target-row condition, for messages.
    pub filter: String,
    /// Why the cell cannot run (a broken test found while planning), e.g. no key columns.
    pub broken: Option<String>,
    /// For a step of a `steps:` scenario: the scenario (its case's line) it belongs to;
    /// its steps run together, in order, in one transaction.
    pub scenario: Option<usize>,
    /// The frozen clock (`now:` of the case, else of the file).
    pub now: Option<crate::clock::Frozen>,
    /// For a step: its case's clock (the file's), under which its probes run too, so a
    /// denial at the step's own `now:` counts when the statement succeeds at another.
    pub base_now: Option<crate::clock::Frozen>,
    /// Whom the statement is run again as, rolled back, to show it can succeed or return
    /// rows for someone (admin with and without the actor's claims, then each of these
    /// actors): for a `returns: []` and for a step expected to be denied. Empty: no probe.
    pub probe_actors: Vec<Actor>,
}

/// Whether `returns` asks for no row at all: what an actor who sees nothing returns, and
/// what a statement over no row returns too.
pub fn returns_nothing(returns: Option<&Returns>) -> bool {
    returns.is_some_and(|r| r.want.as_array().is_some_and(Vec::is_empty))
}

/// Every actor of `file`, for a cell's probes.
fn all_actors(file: &PolicyFile) -> Vec<Actor> {
    file.actors
        .names()
        .filter_map(|name| file.actors.get(name))
        .cloned()
        .collect()
}

/// What an allowed cell's statement must return (see [`super::spec::compare_returns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Returns {
    pub want: Value,
    pub ordered: bool,
}

/// `sql` wrapped so that it yields its row count and its rows as JSON text, each row as
/// `[column, value]` pairs in column order (an object would lose the order and duplicate
/// names, which a single value's "one column" check needs).
pub fn returning_rows(sql: &str) -> String {
    format!(
        "select count(*), coalesce(json_agg((select json_agg(json_build_array(e.key, e.value) order by e.n) \
         from json_each(row_to_json(dbci_r)) with ordinality e(key, value, n))), '[]')::text \
         from ({}) dbci_r",
        sql.trim().trim_end_matches(';')
    )
}

/// `want` with `{{me.field}}` and `{{actor.field}}` filled in every string.
fn render_value(file: &PolicyFile, actor: &Actor, want: &Value) -> Result<Value, String> {
    Ok(match want {
        Value::String(s) => Value::String(render_for(file, actor, s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(file, actor, v))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(file, actor, v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Where an input error is (the one position type of every YAML input).
pub use crate::yaml::Pos;

/// A case-level problem found while planning: the matrix has a hole or a case is malformed.
#[derive(Debug, Clone)]
pub struct Hole {
    pub case: String,
    pub line: usize,
    pub operation: Operation,
    pub actor: String,
    pub message: String,
}

/// Facts about a target table read from the catalog before planning.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    /// `schema.table` as written in the catalog.
    pub qualified: String,
    pub exists: bool,
    /// Primary key columns (empty for views and tables without one).
    pub key: Vec<String>,
    /// A table whose rows carry `xmin`: a row the actor's statement wrote is found by that
    /// (the row as written, whatever a BEFORE trigger made of the values sent). Views are
    /// read back by the values sent.
    pub has_xmin: bool,
}

/// What planning knows of the database a file will run on.
#[derive(Debug, Clone, Copy)]
pub enum Catalog<'a> {
    /// Before boot, where only input errors are wanted: a table case is planned against no
    /// key and no `xmin` (they decide how a cell finds its rows, and whether it is broken at
    /// run time, never whether the input is wrong), and a missing table is not known yet.
    NotRead,
    /// After replay: the facts of every target, by `(schema, table)`.
    Read(&'a BTreeMap<(String, String), TargetInfo>),
}

/// A row version written inside the cell: its `xmin` is newer than the batch's transaction
/// id (which the first write of a cell assigns before its subtransaction's, and which rows
/// committed by the setup predate). Compared on the 32-bit xid, as `xmin` holds it.
const WRITTEN_IN_CELL: &str =
    "t.xmin::text::bigint > pg_catalog.pg_current_xact_id()::text::bigint % 4294967296";

/// Everything planned from one file.
#[derive(Debug, Default)]
pub struct Plan {
    pub cells: Vec<Cell>,
    pub holes: Vec<Hole>,
    /// Input errors (exit 2): where and message.
    pub errors: Vec<(Pos, String)>,
}

/// The target table of a case (storage cases target `storage.objects`).
pub fn case_target(case: &CaseSpec) -> Option<(String, String)> {
    case.target().ok().and_then(|target| target.relation())
}

/// A YAML value as a SQL literal.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_literal(s),
        other => quote_literal(&other.to_string()),
    }
}

/// Replaces `{{me.field}}` by the acting actor's fields, then every `{{actor.field}}`.
fn render_for(file: &PolicyFile, actor: &Actor, text: &str) -> Result<String, String> {
    static ME: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let me = ME.get_or_init(|| regex::Regex::new(r"\{\{\s*me\.").unwrap());
    let text = me.replace_all(text, format!("{{{{{}.", actor.name).as_str());
    file.actors.render(&text)
}

/// Plans every cell of every case in `file` against what is known of the `catalog`.
/// `record`: actors with no expectation get a cell that records one (`rls --record`)
/// instead of a hole.
pub fn plan(file: &PolicyFile, catalog: Catalog<'_>, record: bool) -> Plan {
    let mut plan = Plan::default();
    let actor_names: Vec<&str> = file.actors.names().collect();
    if actor_names.contains(&"me") {
        plan.errors.push((
            Pos::from(crate::policy_tests::key_line(&file.text, "actors").unwrap_or(1)),
            "an actor may not be called `me`: `{{me.id}}` means the acting actor".to_owned(),
        ));
        return plan;
    }
    for (case_index, spanned) in file.spec.cases.iter().enumerate() {
        let case = &spanned.value;
        let line = spanned.referenced.line() as usize;
        let pos = Pos::of(spanned);
        let target = match case.target() {
            Ok(target) => target,
            Err(message) => {
                plan.errors.push((pos, message));
                continue;
            }
        };
        let at = CaseAt {
            file,
            case,
            case_index,
            line,
            pos,
            actor_names: &actor_names,
            record,
            catalog,
        };
        match &target {
            Target::Steps(steps) => plan_steps(&mut plan, file, case, case_index, line, pos, steps),
            Target::Sql(sql) => plan_sql(&mut plan, &at, sql),
            Target::Table { .. } | Target::Bucket { .. } => {
                let (schema, table) = target
                    .relation()
                    .expect("a table or a bucket has a relation");
                plan_table(&mut plan, &at, &schema, &table);
            }
        }
    }
    for cell in &mut plan.cells {
        cell.base_now = file
            .spec
            .cases
            .get(cell.case_index)
            .and_then(|c| c.value.now)
            .or(file.spec.now);
        cell.now = cell.now.or(cell.base_now);
        // Under a frozen clock the case's own SQL (its statement, `where:`, values and
        // `then:`) reads it too, not only the project's objects.
        if cell.now.is_some() {
            let frozen = |text: &mut String| *text = crate::clock::rewrite(text);
            frozen(&mut cell.op);
            cell.then.iter_mut().for_each(frozen);
            for admin in [&mut cell.before, &mut cell.after].into_iter().flatten() {
                frozen(admin);
            }
        }
    }
    plan
}

/// One case being planned, with what every kind of case is planned against.
struct CaseAt<'a> {
    file: &'a PolicyFile,
    case: &'a CaseSpec,
    case_index: usize,
    line: usize,
    /// The case's own position, where its input errors point.
    pos: Pos,
    actor_names: &'a [&'a str],
    record: bool,
    catalog: Catalog<'a>,
}

/// Plans an `sql:` case: one cell per actor, none of it reading the catalog.
fn plan_sql(plan: &mut Plan, at: &CaseAt<'_>, sql: &str) {
    let CaseAt {
        file,
        case,
        case_index,
        line,
        pos,
        actor_names,
        record,
        ..
    } = *at;
    if case.select.is_some()
        || case.insert.is_some()
        || case.update.is_some()
        || case.delete.is_some()
        || case.filter.is_some()
    {
        plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: an `sql:` case takes `allow:`/`deny:` (and `sqlstate:`), not table operations or `where:`",
                        case.name
                    ),
                ));
        return;
    }
    if let Some(returns) = &case.returns {
        if let Err(message) = returns_rows_wanted(&returns.value) {
            plan.errors
                .push((Pos::of(returns), format!("case `{}`: {message}", case.name)));
            return;
        }
    }
    if case.ordered
        && case
            .returns
            .as_ref()
            .is_none_or(|r| returns_rows_wanted(&r.value) != Ok(true))
    {
        plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: `ordered: true` compares `returns:` rows in order: give `returns:` as a list of rows",
                        case.name
                    ),
                ));
        return;
    }
    let allow = case.allow.clone().unwrap_or_default();
    let deny = case.deny.clone().unwrap_or_default();
    let expectations = match resolve(&allow, &deny, actor_names) {
        Ok(e) => e,
        Err((l, message)) => {
            plan.errors.push((l.unwrap_or(pos), message));
            return;
        }
    };
    if case.sqlstate.is_some() && case.deny_sqlstate.is_some() {
        plan.errors.push((
            pos,
            format!(
                "case `{}`: give `deny_sqlstate: [..]` or the older `sqlstate:`, not both",
                case.name
            ),
        ));
        return;
    }
    if let Some(state) = &case.sqlstate {
        if state.len() != 5 || !state.chars().all(|c| c.is_ascii_alphanumeric()) {
            plan.errors.push((
                pos,
                format!(
                    "case `{}`: sqlstate `{state}` is not a 5-character SQLSTATE",
                    case.name
                ),
            ));
            return;
        }
    }
    let unreviewed = match unreviewed_actors(&case.unreviewed, actor_names, &case.name) {
        Ok(names) => names,
        Err(error) => {
            plan.errors.push(error);
            return;
        }
    };
    if !record {
        add_holes(plan, case, line, Operation::Sql, &expectations.missing);
    }
    for (actor_name, expect) in planned(&expectations, record) {
        let actor = file
            .actors
            .get(&actor_name)
            .expect("resolved against the file's actors");
        // Only what an allowed actor reads is compared (`{{me.email}}` means nothing
        // for anon).
        let returns = match case
            .returns
            .as_ref()
            .filter(|_| expect == Some(Expect::Allow))
            .map(|r| render_value(file, actor, &r.value))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: case.ordered,
            }),
            Err(message) => {
                plan.errors
                    .push((pos, format!("case `{}`: returns: {message}", case.name)));
                break;
            }
        };
        let op = match render_for(file, actor, sql) {
            Ok(op) if returns.is_some() => returning_rows(&op),
            Ok(op) if case.returns_rows => format!(
                "select count(*) from ({}) as returned",
                op.trim().trim_end_matches(';')
            ),
            Ok(op) => op,
            Err(message) => {
                plan.errors
                    .push((pos, format!("case `{}`: {message}", case.name)));
                break;
            }
        };
        let then = match render_then(file, actor, case.then.as_ref()) {
            Ok(then) => then,
            Err((l, message)) => {
                plan.errors
                    .push((l, format!("case `{}`: {message}", case.name)));
                break;
            }
        };
        plan.cells.push(Cell {
            file: file.rel.clone(),
            case: case.name.clone(),
            case_line: line,
            target: "sql".to_owned(),
            operation: Operation::Sql,
            unreviewed: unreviewed.contains(&actor_name),
            actor: actor.clone(),
            expect,
            case_index,
            deny_sqlstates: case
                .sqlstate
                .iter()
                .cloned()
                .chain(states(case.deny_sqlstate.as_ref()))
                .collect(),
            deny_on_error: case.deny_on == Some(DenyOn::Error),
            before: None,
            op,
            op_kind: if case.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            after: None,
            then,
            probe_actors: if returns_nothing(returns.as_ref()) {
                all_actors(file)
            } else {
                Vec::new()
            },
            returns,
            filter: String::new(),
            broken: None,
            scenario: None,
            now: None,
            base_now: None,
        });
    }
}

/// Plans a table, view or storage case: one cell per actor and operation on `schema.table`.
fn plan_table(plan: &mut Plan, at: &CaseAt<'_>, schema: &str, table: &str) {
    let CaseAt {
        file,
        case,
        case_index,
        line,
        pos,
        actor_names,
        record,
        ..
    } = *at;
    if case.returns.is_some() || case.ordered {
        plan.errors.push((
                pos,
                format!(
                    "case `{}`: `returns:` of a table case goes under `select:` (`select: {{ allow: [...], returns: [...] }}`)",
                    case.name
                ),
            ));
        return;
    }
    if let Some(then) = &case.then {
        plan.errors.push((
                Pos::of(then),
                format!(
                    "case `{}`: `then:` of a table case goes under the operation it follows (`update: {{ set: …, then: … }}`)",
                    case.name
                ),
            ));
        return;
    }
    if case.allow.is_some() || case.deny.is_some() || case.sqlstate.is_some() || case.returns_rows {
        plan.errors.push((
                pos,
                format!(
                    "case `{}`: `allow:`/`deny:` go under an operation (`select: {{ allow: [...] }}`) for table cases",
                    case.name
                ),
            ));
        return;
    }
    let info = match at.catalog {
        Catalog::NotRead => TargetInfo::default(),
        Catalog::Read(targets) => {
            let info = targets
                .get(&(schema.to_owned(), table.to_owned()))
                .cloned()
                .unwrap_or_default();
            if !info.exists {
                plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: table or view {schema}.{table} does not exist after replay",
                        case.name
                    ),
                ));
                return;
            }
            info
        }
    };
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let key: Vec<String> = case.key.clone().unwrap_or_else(|| info.key.clone());
    let operations: Vec<(Operation, OpExpect)> = [
        case.select
            .as_ref()
            .map(|o| (Operation::Select, o.expect())),
        case.insert
            .as_ref()
            .map(|o| (Operation::Insert, o.expect())),
        case.update
            .as_ref()
            .map(|o| (Operation::Update, o.expect())),
        case.delete
            .as_ref()
            .map(|o| (Operation::Delete, o.expect())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if operations.is_empty() {
        plan.errors.push((
            pos,
            format!(
                "case `{}`: no operation: give `select:`, `insert:`, `update:` or `delete:`",
                case.name
            ),
        ));
        return;
    }
    for (operation, op) in operations {
        if let Some(select) = case
            .select
            .as_ref()
            .filter(|_| operation == Operation::Select)
        {
            if let Some(ordered) = &select.ordered {
                plan.errors.push((
                        Pos::of(ordered),
                        format!(
                            "case `{}`: a table's rows come in no order: `ordered:` is for `sql:` cases",
                            case.name
                        ),
                    ));
                continue;
            }
            if let Some(returns) = &select.returns {
                if returns_rows_wanted(&returns.value) != Ok(true) {
                    plan.errors.push((
                            Pos::of(returns),
                            format!(
                                "case `{}`: `returns:` of a select is the target rows: a list of objects naming the columns compared, e.g. `[{{ id: 1, title: x }}]`",
                                case.name
                            ),
                        ));
                    continue;
                }
            }
        }
        if let (Operation::Select, Some(then)) = (operation, op.then) {
            plan.errors.push((
                    Pos::of(then),
                    format!(
                        "case `{}`: a select changes nothing for `then:` to check; use `returns:` for what it reads",
                        case.name
                    ),
                ));
            continue;
        }
        let deny_sqlstates: Vec<String> = states(case.deny_sqlstate.as_ref())
            .chain(states(op.deny_sqlstate))
            .collect();
        let deny_on_error = case.deny_on.or(op.deny_on) == Some(DenyOn::Error);
        let then_spec = op.then;
        let expectations = match resolve(op.allow, op.deny, actor_names) {
            Ok(e) => e,
            Err((l, message)) => {
                plan.errors.push((l.unwrap_or(pos), message));
                continue;
            }
        };
        // Denials by any error are only worth something when the statement can succeed:
        // an allowed actor's cell shows it does (a case whose own values are wrong, a
        // NOT NULL or foreign key violation, fails there instead of passing as deny).
        let unreviewed = match unreviewed_actors(op.unreviewed, actor_names, &case.name) {
            Ok(names) => names,
            Err(error) => {
                plan.errors.push(error);
                continue;
            }
        };
        // While recording, the allowed actors are not known yet: the check runs on the
        // recorded file.
        let complete = !record || expectations.missing.is_empty();
        if deny_on_error && complete && !expectations.cells.values().any(|e| *e == Expect::Allow) {
            plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: `deny_on: error` for {} with nobody allowed: an error in the case itself would pass as a denial; allow someone, or name the SQLSTATEs with `deny_sqlstate:`",
                        case.name,
                        operation.as_str()
                    ),
                ));
            continue;
        }
        if !record {
            add_holes(plan, case, line, operation, &expectations.missing);
        }
        for (actor_name, expect) in planned(&expectations, record) {
            let actor = file
                .actors
                .get(&actor_name)
                .expect("resolved against the file's actors");
            match table_cell(
                file,
                case,
                actor,
                operation,
                &qualified,
                &key,
                info.has_xmin,
            ) {
                Ok(CellSql {
                    before,
                    op,
                    op_kind,
                    after,
                    filter,
                    broken,
                }) => {
                    // A write's `then:` is what an allowed actor's write promises.
                    let then_spec = then_spec.filter(|_| expect == Some(Expect::Allow));
                    let then = match render_then(file, actor, then_spec) {
                        Ok(then) => then,
                        Err((l, message)) => {
                            plan.errors
                                .push((l, format!("case `{}`: {message}", case.name)));
                            break;
                        }
                    };
                    let want = case
                        .select
                        .as_ref()
                        .filter(|_| operation == Operation::Select)
                        .and_then(|s| s.returns.as_ref())
                        .filter(|_| expect == Some(Expect::Allow));
                    let returns = match want
                        .map(|r| render_value(file, actor, &r.value))
                        .transpose()
                    {
                        Ok(want) => want.map(|want| Returns {
                            want,
                            ordered: false,
                        }),
                        Err(message) => {
                            plan.errors
                                .push((pos, format!("case `{}`: returns: {message}", case.name)));
                            break;
                        }
                    };
                    // The rows the actor reads, beside their count.
                    let op = match (&returns, broken.is_none()) {
                        (Some(_), true) => {
                            returning_rows(&format!("select t.* from {qualified} t where {filter}"))
                        }
                        _ => op,
                    };
                    plan.cells.push(Cell {
                        file: file.rel.clone(),
                        case: case.name.clone(),
                        case_line: line,
                        target: format!("{schema}.{table}"),
                        operation,
                        unreviewed: unreviewed.contains(&actor_name),
                        actor: actor.clone(),
                        expect,
                        case_index,
                        deny_sqlstates: deny_sqlstates.clone(),
                        deny_on_error,
                        before,
                        op,
                        op_kind,
                        after,
                        then,
                        returns,
                        filter,
                        broken,
                        scenario: None,
                        now: None,
                        base_now: None,
                        probe_actors: Vec::new(),
                    });
                }
                Err(message) => {
                    plan.errors
                        .push((pos, format!("case `{}`: {message}", case.name)));
                    break;
                }
            }
        }
    }
}

/// Plans a `steps:` scenario: one cell per step, run in order in one transaction.
fn plan_steps(
    plan: &mut Plan,
    file: &PolicyFile,
    case: &CaseSpec,
    case_index: usize,
    line: usize,
    pos: Pos,
    steps: &[serde_saphyr::Spanned<super::spec::StepSpec>],
) {
    let name = &case.name;
    if case.select.is_some()
        || case.insert.is_some()
        || case.update.is_some()
        || case.delete.is_some()
        || case.filter.is_some()
        || case.allow.is_some()
        || case.deny.is_some()
        || case.sqlstate.is_some()
        || case.returns.is_some()
        || case.then.is_some()
        || case.returns_rows
        || case.ordered
    {
        plan.errors.push((
            pos,
            format!(
                "case `{name}`: a `steps:` case has its expectations on each step (`as:`, `sql:`, `expect:`, `then:`, `returns:`…); only `deny_sqlstate:` and `deny_on:` may stand beside it"
            ),
        ));
        return;
    }
    if steps.is_empty() {
        plan.errors
            .push((pos, format!("case `{name}`: `steps: []` checks nothing")));
        return;
    }
    // A scenario whose every step is denied could be denied by its own mistake (a misspelt
    // argument): an allowed step shows the statements can succeed.
    if steps
        .iter()
        .all(|s| s.value.expect == super::spec::StepExpect::Deny)
    {
        plan.errors.push((
            pos,
            format!("case `{name}`: every step expects deny: allow at least one, so the scenario shows its statements can succeed"),
        ));
        return;
    }
    let mut cells = Vec::new();
    for (index, spanned) in steps.iter().enumerate() {
        let step = &spanned.value;
        let step_line = spanned.referenced.line() as usize;
        let Some(actor) = file.actors.get(&step.actor.value) else {
            plan.errors.push((
                Pos::of(&step.actor),
                format!(
                    "case `{name}`: step {}: `{}` is not an actor of this file (actors: {})",
                    index + 1,
                    step.actor.value,
                    file.actors.names().collect::<Vec<_>>().join(", ")
                ),
            ));
            return;
        };
        if let Some(returns) = &step.returns {
            if let Err(message) = returns_rows_wanted(&returns.value) {
                plan.errors.push((
                    Pos::of(returns),
                    format!("case `{name}`: step {}: {message}", index + 1),
                ));
                return;
            }
        }
        if step.ordered
            && step
                .returns
                .as_ref()
                .is_none_or(|r| returns_rows_wanted(&r.value) != Ok(true))
        {
            plan.errors.push((
                Pos::from(step_line),
                format!(
                    "case `{name}`: step {}: `ordered: true` compares `returns:` rows in order: give `returns:` as a list of rows",
                    index + 1
                ),
            ));
            return;
        }
        let expect = match step.expect {
            super::spec::StepExpect::Allow => Expect::Allow,
            super::spec::StepExpect::Deny => Expect::Deny,
        };
        let returns = match step
            .returns
            .as_ref()
            .filter(|_| expect == Expect::Allow)
            .map(|r| render_value(file, actor, &r.value))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: step.ordered,
            }),
            Err(message) => {
                plan.errors.push((
                    Pos::from(step_line),
                    format!("case `{name}`: step {}: returns: {message}", index + 1),
                ));
                return;
            }
        };
        let op = match render_for(file, actor, &step.sql) {
            Ok(op) if returns.is_some() => returning_rows(&op),
            Ok(op) if step.returns_rows => format!(
                "select count(*) from ({}) as returned",
                op.trim().trim_end_matches(';')
            ),
            Ok(op) => op,
            Err(message) => {
                plan.errors.push((
                    Pos::from(step_line),
                    format!("case `{name}`: step {}: {message}", index + 1),
                ));
                return;
            }
        };
        let then = match render_then(file, actor, step.then.as_ref()) {
            Ok(then) => then,
            Err((pos, message)) => {
                plan.errors
                    .push((pos, format!("case `{name}`: step {}: {message}", index + 1)));
                return;
            }
        };
        cells.push(Cell {
            file: file.rel.clone(),
            // Each step is its own reported case: `<case> / step N / sql as <actor>`.
            case: format!("{name} / step {}", index + 1),
            case_line: step_line,
            target: "sql".to_owned(),
            operation: Operation::Sql,
            actor: actor.clone(),
            // A step's `expect:` is required: a scenario is never recorded.
            expect: Some(expect),
            case_index,
            unreviewed: false,
            deny_sqlstates: states(case.deny_sqlstate.as_ref())
                .chain(states(step.deny_sqlstate.as_ref()))
                .collect(),
            deny_on_error: case.deny_on.or(step.deny_on) == Some(DenyOn::Error),
            before: None,
            op,
            op_kind: if step.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            after: None,
            then,
            // A denied step must be one that can succeed, for someone; the rows a
            // `returns: []` hides must exist.
            probe_actors: if expect == Expect::Deny || returns_nothing(returns.as_ref()) {
                all_actors(file)
            } else {
                Vec::new()
            },
            returns,
            filter: String::new(),
            broken: None,
            scenario: Some(line),
            now: step.now,
            base_now: None,
        });
    }
    plan.cells.extend(cells);
}

/// The `then:` queries rendered for `actor`; the error carries the line of `then:`.
fn render_then(
    file: &PolicyFile,
    actor: &Actor,
    then: Option<&serde_saphyr::Spanned<super::spec::Then>>,
) -> Result<Vec<String>, (Pos, String)> {
    let Some(then) = then else {
        return Ok(Vec::new());
    };
    then.value
        .0
        .iter()
        .map(|query| {
            render_for(file, actor, query).map_err(|e| (Pos::of(then), format!("then: {e}")))
        })
        .collect()
}

/// The SQLSTATEs of an optional `deny_sqlstate:`.
fn states(list: Option<&SqlStates>) -> impl Iterator<Item = String> + '_ {
    list.into_iter().flat_map(|l| l.0.iter().cloned())
}

/// The actors of an operation to run: each expectation, and while recording each actor
/// without one (`None`).
fn planned(expectations: &Expectations, record: bool) -> Vec<(String, Option<Expect>)> {
    let mut planned: Vec<(String, Option<Expect>)> = expectations
        .cells
        .iter()
        .map(|(actor, expect)| (actor.clone(), Some(*expect)))
        .collect();
    if record {
        planned.extend(expectations.missing.iter().map(|a| (a.clone(), None)));
    }
    planned
}

/// The names under `unreviewed:`, each an actor of the file.
fn unreviewed_actors(
    list: &[serde_saphyr::Spanned<String>],
    actors: &[&str],
    case: &str,
) -> Result<Vec<String>, (Pos, String)> {
    list.iter()
        .map(|name| {
            if actors.contains(&name.value.as_str()) {
                Ok(name.value.clone())
            } else {
                Err((
                    Pos::of(name),
                    format!(
                        "case `{case}`: unreviewed: `{}` is not an actor of this file (actors: {})",
                        name.value,
                        actors.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

fn add_holes(
    plan: &mut Plan,
    case: &CaseSpec,
    line: usize,
    operation: Operation,
    missing: &[String],
) {
    for actor in missing {
        plan.holes.push(Hole {
            case: case.name.clone(),
            line,
            operation,
            actor: actor.clone(),
            message: format!(
                "broken test: actor `{actor}` has no expectation for {} in case `{}`: list it under allow or deny, or write `deny: others`, or record what the database does with `db-ci rls --record`",
                operation.as_str(),
                case.name
            ),
        });
    }
}

/// The SQL of one table cell (see [`Cell`] for what each part is).
struct CellSql {
    before: Option<String>,
    op: String,
    op_kind: OpKind,
    after: Option<String>,
    filter: String,
    broken: Option<String>,
}

/// The before/op/after SQL of a table cell.
fn table_cell(
    file: &PolicyFile,
    case: &CaseSpec,
    actor: &Actor,
    operation: Operation,
    qualified: &str,
    key: &[String],
    has_xmin: bool,
) -> Result<CellSql, String> {
    let mut conditions = Vec::new();
    if let (Some(bucket), Some(object)) = (&case.bucket, &case.object) {
        conditions.push(format!(
            "bucket_id = {} and name = {}",
            quote_literal(&render_for(file, actor, bucket)?),
            quote_literal(&render_for(file, actor, object)?)
        ));
    } else if let Some(bucket) = &case.bucket {
        conditions.push(format!(
            "bucket_id = {}",
            quote_literal(&render_for(file, actor, bucket)?)
        ));
    }
    if let Some(filter) = &case.filter {
        conditions.push(format!("({})", render_for(file, actor, filter)?));
    }
    let filter = if conditions.is_empty() {
        "true".to_owned()
    } else {
        conditions.join(" and ")
    };
    let fingerprint = "md5(coalesce(string_agg(t::text, ',' order by t::text), ''))";
    let key_expr = |set: &[(String, String)]| -> Option<String> {
        if key.is_empty() {
            return None;
        }
        let parts: Vec<String> = key
            .iter()
            .map(|column| {
                let column_sql = format!("t.{}", quote_ident(column));
                match set.iter().find(|(c, _)| c == column) {
                    // CASE gives the literal the column's type, so the key reads the same
                    // as the updated row's.
                    Some((_, value)) => {
                        format!("case when true then {value} else {column_sql} end")
                    }
                    None => column_sql,
                }
            })
            .collect();
        Some(format!("jsonb_build_array({})::text", parts.join(", ")))
    };
    let render_values =
        |values: &BTreeMap<String, Value>| -> Result<Vec<(String, String)>, String> {
            values
                .iter()
                .map(|(column, value)| {
                    let value = match value {
                        Value::String(s) => Value::String(render_for(file, actor, s)?),
                        other => other.clone(),
                    };
                    Ok((column.clone(), literal(&value)))
                })
                .collect()
        };
    match operation {
        Operation::Select => Ok(CellSql {
            before: Some(format!("select count(*), 0::bigint, null::text[], null::text[], ''::text from {qualified} t where {filter}")),
            op: format!("select count(*) from {qualified} t where {filter}"),
            op_kind: OpKind::Count,
            after: None,
            filter,
            broken: None,
        }),
        Operation::Insert => {
            let spec = case.insert.as_ref().expect("insert cell of an insert case");
            let mut values: BTreeMap<String, Value> = BTreeMap::new();
            if let Some(bucket) = &case.bucket {
                values.insert("bucket_id".to_owned(), Value::String(bucket.clone()));
                if let Some(object) = &case.object {
                    values.insert("name".to_owned(), Value::String(object.clone()));
                }
                // What the storage API records for an upload by a signed-in user.
                let owner = actor.id.clone().map_or(Value::Null, Value::String);
                if actor.kind == ActorKind::User {
                    values.insert("owner".to_owned(), owner.clone());
                    values.insert("owner_id".to_owned(), owner);
                }
            }
            values.extend(spec.values.clone());
            if values.is_empty() {
                return Err("`insert:` needs `values:`".to_owned());
            }
            let values = render_values(&values)?;
            // The new row is found by the values it was given, never by `where:` (which
            // describes the rows select/update/delete target).
            let identifies = values
                .iter()
                .map(|(c, v)| format!("t.{} is not distinct from {v}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" and ");
            let columns = values.iter().map(|(c, _)| quote_ident(c)).collect::<Vec<_>>().join(", ");
            let literals = values.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>().join(", ");
            // A table's new row is the one the statement wrote, found by `xmin` as admin
            // sees it: a BEFORE trigger may rewrite the values sent (a slug, an email).
            let (before, after) = if has_xmin {
                (
                    "select 0::bigint, 0::bigint, null::text[], null::text[], ''::text".to_owned(),
                    format!("select count(*) filter (where {WRITTEN_IN_CELL}), 0::bigint, ''::text from {qualified} t"),
                )
            } else {
                (
                    format!("select count(*), 0::bigint, null::text[], null::text[], ''::text from {qualified} t where {identifies}"),
                    format!("select count(*), 0::bigint, ''::text from {qualified} t where {identifies}"),
                )
            };
            Ok(CellSql {
                before: Some(before),
                op: format!("insert into {qualified} ({columns}) values ({literals})"),
                op_kind: OpKind::Rows,
                after: Some(after),
                filter: identifies,
                broken: None,
            })
        }
        Operation::Update | Operation::Delete => {
            let set = match (operation, &case.update) {
                (Operation::Update, Some(spec)) => render_values(&spec.set)?,
                _ => Vec::new(),
            };
            // An input error, so checked before anything that depends on the catalog's key.
            if operation == Operation::Update && set.is_empty() {
                return Err("`update:` needs `set:`".to_owned());
            }
            let (Some(old_key), Some(new_key)) = (key_expr(&[]), key_expr(&set)) else {
                let message = format!(
                    "broken test: {qualified} has no primary key, so db-ci cannot tell which target rows changed; add `key: [column, …]` to the case"
                );
                return Ok(CellSql {
                    before: None,
                    op: String::new(),
                    op_kind: OpKind::Rows,
                    after: None,
                    filter,
                    broken: Some(message),
                });
            };
            let (set_sql, matches) = if operation == Operation::Update {
                (
                    set.iter().map(|(c, v)| format!("{} = {v}", quote_ident(c))).collect::<Vec<_>>().join(", "),
                    set.iter()
                        .map(|(c, v)| format!("t.{} is not distinct from {v}", quote_ident(c)))
                        .collect::<Vec<_>>()
                        .join(" and "),
                )
            } else {
                (String::new(), "false".to_owned())
            };
            // Rows are found again by key: `$1` the keys before, `$2` the keys an allowed
            // update gives them (they differ when `set` changes a key column).
            let before = format!(
                "select count(*), count(*) filter (where {matches}), coalesce(array_agg({old_key}), '{{}}'), \
                 coalesce(array_agg({new_key}), '{{}}'), {fingerprint} from {qualified} t where {filter}"
            );
            // An updated row is found by its key (the new key when `set` changes it) and
            // counts as changed when the statement wrote it, never by the values sent.
            let changed = if has_xmin && operation == Operation::Update {
                WRITTEN_IN_CELL
            } else {
                matches.as_str()
            };
            let after = format!(
                "select count(*) filter (where {old_key} = any($1)), count(*) filter (where {old_key} = any($2) and {changed}), \
                 md5(coalesce(string_agg(t::text, ',' order by t::text) filter (where {old_key} = any($1)), '')) \
                 from {qualified} t where {old_key} = any($1) or {old_key} = any($2)"
            );
            let op = if operation == Operation::Update {
                format!("update {qualified} t set {set_sql} where {filter}")
            } else {
                format!("delete from {qualified} t where {filter}")
            };
            Ok(CellSql {
                before: Some(before),
                op,
                op_kind: OpKind::Rows,
                after: Some(after),
                filter,
                broken: None,
            })
        }
        Operation::Sql => unreachable!("sql cases are planned apart"),
    }
}

/// The cell as the JSON the batch function reads.
pub fn cell_json(index: usize, cell: &Cell) -> Value {
    let actor = &cell.actor;
    let (claims, legacy) = identity(actor, cell.now);
    let mut value = json!({
        "i": index,
        "role": actor.db_role,
        "claims": claims,
        "legacy": legacy,
        "may_bypass": actor.may_bypass_rls(),
        "kind": match (cell.op_kind, &cell.returns) {
            (_, Some(_)) => "json",
            (OpKind::Count, None) => "count",
            (OpKind::Rows, None) => "rows",
        },
        "op": cell.op,
    });
    if let Some(now) = cell.now {
        value["now"] = Value::String(now.sql_text());
    }
    if !cell.probe_actors.is_empty() {
        value["probes"] = probes_json(cell);
        // A step's probes run after other steps set their clocks: each names its own, and
        // its case's ("" is the real time).
        if cell.scenario.is_some() {
            let text =
                |now: Option<crate::clock::Frozen>| now.map(|n| n.sql_text()).unwrap_or_default();
            let mut nows = vec![text(cell.now)];
            if cell.base_now != cell.now {
                nows.push(text(cell.base_now));
            }
            value["probe_nows"] = json!(nows);
        }
    }
    if let Some(before) = &cell.before {
        value["before"] = Value::String(before.clone());
    }
    if !cell.then.is_empty() {
        value["then"] = json!(cell.then);
    }
    if let Some(after) = &cell.after {
        value["after"] = Value::String(after.clone());
        // Update and delete read the rows back by the keys captured before.
        value["keys"] = Value::Bool(matches!(
            cell.operation,
            Operation::Update | Operation::Delete
        ));
    }
    value
}

/// An actor's claims (as JSON text) and legacy per-claim settings. Under a frozen clock the
/// token was issued at that instant and expires an hour later, as GoTrue's default does: a
/// policy comparing `exp` with `now()` sees a live token.
fn identity(
    actor: &Actor,
    now: Option<crate::clock::Frozen>,
) -> (String, serde_json::Map<String, Value>) {
    let mut legacy: serde_json::Map<String, Value> = actor
        .legacy_claims()
        .into_iter()
        .map(|(key, text)| (key, Value::String(text)))
        .collect();
    let mut claims = actor.claims.clone();
    if let Some(now) = now {
        for (key, value) in [("iat", now.epoch()), ("exp", now.epoch() + 3600)] {
            if let Some(object) = claims.as_object_mut() {
                if object.contains_key(key) {
                    object.insert(key.to_owned(), json!(value));
                    legacy.insert(key.to_owned(), Value::String(value.to_string()));
                }
            }
        }
    }
    (claims.to_string(), legacy)
}

/// The identities a probed cell's statement runs again as: admin (the session's role, RLS
/// bypassed) with no claims and with the actor's, then every actor of the file. Each sets
/// every legacy claim any of them has, blank where it has none, so no claim of the acting
/// actor lingers.
fn probes_json(cell: &Cell) -> Value {
    let identities: Vec<(String, String, String, serde_json::Map<String, Value>)> = {
        let (claims, legacy) = identity(&cell.actor, cell.now);
        let mut all = vec![
            (
                "admin".to_owned(),
                "none".to_owned(),
                String::new(),
                serde_json::Map::new(),
            ),
            (
                format!("admin with {}'s claims", cell.actor.name),
                "none".to_owned(),
                claims,
                legacy,
            ),
        ];
        for actor in &cell.probe_actors {
            let (claims, legacy) = identity(actor, cell.now);
            all.push((actor.name.clone(), actor.db_role.clone(), claims, legacy));
        }
        all
    };
    let keys: std::collections::BTreeSet<String> = identities
        .iter()
        .flat_map(|(_, _, _, legacy)| legacy.keys().cloned())
        .collect();
    Value::Array(
        identities
            .into_iter()
            .map(|(who, role, claims, own)| {
                let mut legacy: serde_json::Map<String, Value> = keys
                    .iter()
                    .map(|k| (k.clone(), Value::String(String::new())))
                    .collect();
                legacy.extend(own);
                json!({ "who": who, "role": role, "claims": claims, "legacy": legacy })
            })
            .collect(),
    )
}

/// The input errors of `file`'s cases that need no catalog (unknown actors, malformed cases),
/// so a bad matrix is exit 2 before anything boots.
pub fn check(file: &PolicyFile) -> Vec<(Pos, String)> {
    plan(file, Catalog::NotRead, false).errors
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::actors::Actors;
    use crate::policy_tests::PolicyFileSpec;

    /// A matrix file `m.yaml` read from `text`.
    fn file_of(text: String) -> PolicyFile {
        let spec: PolicyFileSpec = crate::yaml::parse_yaml(&text, Path::new("m.yaml")).unwrap();
        let actors = Actors::resolve(&spec.actors).unwrap();
        PolicyFile {
            rel: "m.yaml".to_owned(),
            path: PathBuf::from("m.yaml"),
            text,
            spec,
            actors,
            setup_line: 1,
            shared: Vec::new(),
        }
    }

    /// The input errors `check` finds in a matrix with actors alice and anon.
    fn errors(cases: &str) -> Vec<(Pos, String)> {
        check(&file_of(format!(
            "actors:\n  anon: anon\n  alice: {{ user: alice@example.com }}\ncases:\n{cases}"
        )))
    }

    #[test]
    fn new_keys_are_refused_where_they_mean_nothing() {
        for (case, line, says) in [
            (
                "  - name: x\n    sql: select 1\n    sqlstate: P0001\n    deny_sqlstate: [P0001]\n    deny: others\n",
                5,
                "not both",
            ),
            (
                "  - name: x\n    table: t\n    update: { set: { a: 1 }, deny: others, deny_on: error }\n",
                5,
                "`deny_on: error` for update with nobody allowed",
            ),
            (
                "  - name: x\n    table: t\n    then: select true\n    delete: { allow: others }\n",
                7,
                "goes under the operation",
            ),
            (
                "  - name: x\n    table: t\n    select: { allow: others, then: select true }\n",
                7,
                "a select changes nothing",
            ),
            (
                "  - name: x\n    table: t\n    select: { allow: others, ordered: true }\n",
                7,
                "come in no order",
            ),
            (
                "  - name: x\n    table: t\n    select: { allow: others, returns: 3 }\n",
                7,
                "`returns:` of a select is the target rows",
            ),
            (
                "  - name: x\n    table: t\n    returns: [{ a: 1 }]\n    select: { allow: others }\n",
                5,
                "goes under `select:`",
            ),
            (
                "  - name: x\n    sql: select 1\n    returns: [1, 2]\n    allow: others\n",
                7,
                "each an object",
            ),
            (
                "  - name: x\n    sql: select 1\n    returns: 1\n    ordered: true\n    allow: others\n",
                5,
                "`ordered: true` compares `returns:` rows in order",
            ),
            (
                "  - name: x\n    sql: select 1\n    then: select '{{bob.id}}'\n    allow: others\n",
                7,
                "then: `{{bob.id}}` names no actor",
            ),
        ] {
            let found = errors(case);
            assert!(
                found.iter().any(|(p, m)| p.line == line && m.contains(says)),
                "{case}: {found:?}"
            );
        }
        // steps: each step names an actor of the file; someone must be allowed.
        for (case, says) in [
            (
                "  - name: x\n    steps:\n      - { as: bob, sql: select 1, expect: allow }\n",
                "step 1: `bob` is not an actor of this file",
            ),
            (
                "  - name: x\n    steps:\n      - { as: alice, sql: select 1, expect: deny }\n",
                "every step expects deny",
            ),
            (
                "  - name: x\n    allow: [alice]\n    steps:\n      - { as: alice, sql: select 1, expect: allow }\n",
                "expectations on each step",
            ),
            ("  - name: x\n    steps: []\n", "checks nothing"),
        ] {
            let found = errors(case);
            assert!(found.iter().any(|(_, m)| m.contains(says)), "{case}: {found:?}");
        }
        let found =
            errors("  - name: x\n    steps:\n      - { as: bob, sql: select 1, expect: allow }\n");
        assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:15", "{found:?}");
        // Errors about a value point at it: file:line:col.
        let found =
            errors("  - name: x\n    table: t\n    select: { allow: others, ordered: true }\n");
        assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:39", "{found:?}");
        let found = errors(
            "  - name: x\n    sql: select 1\n    then: select '{{bob.id}}'\n    allow: others\n",
        );
        assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:11", "{found:?}");
        // The forms that mean something are accepted.
        let fine = "  - name: x\n    sql: select 1\n    deny_sqlstate: [P0001]\n    then: [select true]\n    returns: [{ a: 1 }]\n    ordered: true\n    allow: [alice]\n    deny: others\n  - name: y\n    table: t\n    deny_on: error\n    select: { allow: [alice], deny: others, returns: [{ id: '{{me.id}}' }] }\n    update: { set: { a: 1 }, allow: [alice], deny: others, then: \"select '{{me.email}}' <> ''\" }\n";
        assert_eq!(errors(fine), Vec::new());
        let text = format!(
            "actors:\n  anon: anon\n  alice: {{ user: alice@example.com }}\ncases:\n{}",
            "  - name: s\n    deny_sqlstate: [P0001]\n    steps:\n      - { as: alice, sql: select 1, expect: allow, then: select true }\n      - { as: anon, sql: select 2, expect: deny }\n"
        );
        let spec: PolicyFileSpec = crate::yaml::parse_yaml(&text, Path::new("m.yaml")).unwrap();
        let actors = Actors::resolve(&spec.actors).unwrap();
        let file = PolicyFile {
            rel: "m.yaml".to_owned(),
            path: PathBuf::from("m.yaml"),
            text,
            spec,
            actors,
            setup_line: 1,
            shared: Vec::new(),
        };
        let plan = plan(&file, Catalog::NotRead, false);
        assert_eq!(plan.errors, Vec::new());
        let steps: Vec<(&str, &str, Option<usize>, &[String])> = plan
            .cells
            .iter()
            .map(|c| {
                (
                    c.case.as_str(),
                    c.actor.name.as_str(),
                    c.scenario,
                    c.deny_sqlstates.as_slice(),
                )
            })
            .collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].0, "s / step 1");
        assert_eq!(steps[1].1, "anon");
        assert_eq!(steps[0].2, Some(5));
        assert_eq!(steps[1].2, Some(5), "one scenario");
        assert_eq!(steps[1].3, ["P0001".to_owned()]);
        assert_eq!(plan.cells[0].then, vec!["select true".to_owned()]);
    }

    #[test]
    fn input_errors_are_found_without_the_catalog_and_the_catalog_adds_only_its_own() {
        // `update:` without `set:` on a table with no key is an input error, whatever key
        // the catalog would have given.
        let found = errors(
            "  - name: u\n    table: t\n    update: { set: {}, allow: [alice], deny: others }\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("`update:` needs `set:`"), "{found:?}");
        // A case with no target, two targets, or an object without a bucket.
        for (case, says) in [
            (
                "  - name: n\n    select: { allow: others }\n",
                "exactly one of",
            ),
            (
                "  - name: n\n    table: t\n    sql: select 1\n    allow: others\n",
                "exactly one of",
            ),
            (
                "  - name: n\n    table: t\n    object: a.png\n    select: { allow: others }\n",
                "`object:` needs `bucket:`",
            ),
        ] {
            let found = errors(case);
            assert_eq!(found.len(), 1, "{case}: {found:?}");
            assert!(found[0].1.contains(says), "{case}: {found:?}");
        }
        // A well-formed table case: no error before boot; against a catalog where its table
        // is missing, that is the one error, and where it exists, none.
        let file = file_of(
            "actors:\n  anon: anon\n  alice: { user: alice@example.com }\ncases:\n  - name: t\n    table: app.Notes\n    update: { set: { a: 1 }, allow: [alice], deny: others }\n".to_owned(),
        );
        assert_eq!(plan(&file, Catalog::NotRead, false).errors, Vec::new());
        let mut targets = BTreeMap::new();
        let missing = plan(&file, Catalog::Read(&targets), false).errors;
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].1.contains("app.notes does not exist"),
            "{missing:?}"
        );
        targets.insert(
            ("app".to_owned(), "notes".to_owned()),
            TargetInfo {
                exists: true,
                key: vec!["id".to_owned()],
                has_xmin: true,
                ..TargetInfo::default()
            },
        );
        let planned = plan(&file, Catalog::Read(&targets), false);
        assert_eq!(planned.errors, Vec::new());
        assert_eq!(planned.cells.len(), 2);
        assert!(planned.cells.iter().all(|c| c.broken.is_none()));
    }

    #[test]
    fn recording_turns_holes_into_cells_without_an_expectation() {
        let text = "actors:\n  anon: anon\n  alice: { user: alice@example.com }\n  bob: { user: bob@example.com }\ncases:\n  - name: r\n    sql: select 1\n    allow: [alice]\n    unreviewed: [alice]\n".to_owned();
        let file = file_of(text);
        let checked = plan(&file, Catalog::NotRead, false);
        assert_eq!(checked.cells.len(), 1);
        assert_eq!(checked.holes.len(), 2, "anon and bob have no expectation");
        let recording = plan(&file, Catalog::NotRead, true);
        assert!(recording.holes.is_empty());
        let cells: Vec<(&str, Option<Expect>, bool)> = recording
            .cells
            .iter()
            .map(|c| (c.actor.name.as_str(), c.expect, c.unreviewed))
            .collect();
        assert_eq!(
            cells,
            [
                ("alice", Some(Expect::Allow), true),
                ("anon", None, false),
                ("bob", None, false)
            ]
        );
        assert!(recording.cells.iter().all(|c| c.case_index == 0));
    }
}
