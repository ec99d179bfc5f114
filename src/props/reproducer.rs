//! The reproducer: a shrunk sequence as a SQL script anyone can paste into psql on a database
//! with the project applied, ending with the invariant query that returns the violating rows.

use crate::actors::Actor;
use crate::props::engine::{end_impersonation_sql, Step, StepOutcome};

/// Everything the script is made of, already rendered (actor templates filled).
pub struct Script<'a> {
    pub property: &'a str,
    /// `policy-tests/x.yaml:12`
    pub at: &'a str,
    pub seed: u64,
    pub replay_command: &'a str,
    pub create_users: &'a str,
    pub file_setup: Option<&'a str>,
    pub property_setup: Option<&'a str>,
    pub actors: &'a [Actor],
    pub steps: &'a [(Step, StepOutcome)],
    pub invariant: &'a str,
}

impl Script<'_> {
    /// The script, in one transaction rolled back at the end so it leaves nothing behind.
    pub fn render(&self) -> String {
        let mut sql = format!(
            "-- db-ci property \"{}\" ({}), seed {}: {} step(s)\n\
             -- replay: {}\n\
             -- run on a database with the project's migrations and seeds applied\n\
             begin;\n",
            self.property,
            self.at,
            self.seed,
            self.steps.len(),
            self.replay_command
        );
        if !self.create_users.trim().is_empty() {
            sql.push_str("-- the actors' users, created as db-ci creates them\n");
            push_block(&mut sql, self.create_users);
        }
        if let Some(setup) = self.file_setup {
            sql.push_str("-- the file's setup\n");
            push_block(&mut sql, setup);
        }
        if let Some(setup) = self.property_setup {
            sql.push_str("-- the property's setup\n");
            push_block(&mut sql, setup);
        }
        for (index, (step, outcome)) in self.steps.iter().enumerate() {
            let actor = step.actor.and_then(|a| self.actors.get(a));
            let who = actor.map_or(String::new(), |a| format!(" as {}", a.name));
            if let StepOutcome::Rejected { sqlstate } = outcome {
                // A rejected step changed nothing; left in, it would abort the transaction.
                sql.push_str(&format!(
                    "-- step {}{who}: rejected with SQLSTATE {sqlstate}, changes nothing:\n--   {}\n",
                    index + 1,
                    step.sql.replace('\n', "\n--   ")
                ));
                continue;
            }
            sql.push_str(&format!("-- step {}{who}\n", index + 1));
            if let Some(actor) = actor {
                push_block(&mut sql, &actor.impersonation_sql());
            }
            push_block(&mut sql, &step.sql);
            if let Some(actor) = actor {
                push_block(&mut sql, &end_impersonation_sql(actor));
            }
        }
        sql.push_str("-- the invariant: every row it returns violates the property\n");
        push_block(&mut sql, self.invariant);
        sql.push_str("rollback;\n");
        sql
    }
}

/// Appends `block` as statements: trimmed, ending with `;` and a newline.
fn push_block(sql: &mut String, block: &str) {
    let block = block.trim();
    sql.push_str(block);
    if !block.ends_with(';') {
        // A trailing `-- comment` would swallow the semicolon: end the statement below it.
        let last_line = block.lines().last().unwrap_or_default();
        if last_line.contains("--") {
            sql.push('\n');
        }
        sql.push(';');
    }
    sql.push('\n');
}
