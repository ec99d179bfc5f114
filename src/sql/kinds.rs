//! pg_catalog's one-letter codes (`relkind`, `contype`, `polcmd`, `prokind`, `typtype`,
//! `tgenabled`, `provolatile`) as enums, each with the word db-ci prints for it, so that
//! callers match on variants instead of comparing strings.

use std::fmt;

/// Writes the enum as the word [`as_str`](Self::as_str) gives, so `format!` prints what the
/// strings printed before these enums existed.
macro_rules! display_as_str {
    ($($kind:ty),*) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(
    RelationKind,
    TableKind,
    ConstraintKind,
    PolicyCommand,
    RoutineKind,
    TypeKind,
    TriggerState,
    Volatility
);

/// The first character of a code read as text (`relkind::text`); `'\0'` for an empty one.
fn first(code: &str) -> char {
    code.chars().next().unwrap_or('\0')
}

/// `pg_class.relkind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationKind {
    Table,
    PartitionedTable,
    ForeignTable,
    View,
    MaterializedView,
    Index,
    PartitionedIndex,
    Sequence,
    Toast,
    CompositeType,
    /// A code this build does not know (a later server's).
    Other(char),
}

impl RelationKind {
    pub fn from_code(code: &str) -> RelationKind {
        match first(code) {
            'r' => RelationKind::Table,
            'p' => RelationKind::PartitionedTable,
            'f' => RelationKind::ForeignTable,
            'v' => RelationKind::View,
            'm' => RelationKind::MaterializedView,
            'i' => RelationKind::Index,
            'I' => RelationKind::PartitionedIndex,
            'S' => RelationKind::Sequence,
            't' => RelationKind::Toast,
            'c' => RelationKind::CompositeType,
            other => RelationKind::Other(other),
        }
    }

    /// A view or materialized view: no RLS of its own, it reads other relations.
    pub fn is_view(self) -> bool {
        matches!(self, RelationKind::View | RelationKind::MaterializedView)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::PartitionedTable => "partitioned table",
            RelationKind::ForeignTable => "foreign table",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized view",
            RelationKind::Index => "index",
            RelationKind::PartitionedIndex => "partitioned index",
            RelationKind::Sequence => "sequence",
            RelationKind::Toast => "toast table",
            RelationKind::CompositeType => "composite type",
            RelationKind::Other(_) => "relation",
        }
    }
}

/// The relations the snapshot lists as tables (`relkind` `r`, `p`, `f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Table,
    Partitioned,
    Foreign,
}

impl TableKind {
    /// Any code but `p` and `f` reads as a plain table: the reader selects only these three.
    pub fn from_code(code: &str) -> TableKind {
        match RelationKind::from_code(code) {
            RelationKind::PartitionedTable => TableKind::Partitioned,
            RelationKind::ForeignTable => TableKind::Foreign,
            _ => TableKind::Table,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Table => "table",
            TableKind::Partitioned => "partitioned table",
            TableKind::Foreign => "foreign table",
        }
    }
}

/// `pg_constraint.contype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstraintKind {
    Check,
    ForeignKey,
    /// PostgreSQL 18 records NOT NULL as constraints too.
    NotNull,
    PrimaryKey,
    Unique,
    /// A constraint trigger.
    Trigger,
    Exclusion,
    /// A code this build does not know (a later server's): still listed by its definition.
    Other(char),
}

impl ConstraintKind {
    pub fn from_code(code: &str) -> ConstraintKind {
        match first(code) {
            'c' => ConstraintKind::Check,
            'f' => ConstraintKind::ForeignKey,
            'n' => ConstraintKind::NotNull,
            'p' => ConstraintKind::PrimaryKey,
            'u' => ConstraintKind::Unique,
            't' => ConstraintKind::Trigger,
            'x' => ConstraintKind::Exclusion,
            other => ConstraintKind::Other(other),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintKind::Check => "check",
            ConstraintKind::ForeignKey => "foreign key",
            ConstraintKind::NotNull => "not null",
            ConstraintKind::PrimaryKey => "primary key",
            ConstraintKind::Unique => "unique",
            ConstraintKind::Trigger => "constraint trigger",
            ConstraintKind::Exclusion => "exclusion",
            ConstraintKind::Other(_) => "constraint",
        }
    }
}

/// The command a policy applies to (`pg_policy.polcmd`; `cmd` of `pg_policies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyCommand {
    Select,
    Insert,
    Update,
    Delete,
    All,
}

impl PolicyCommand {
    /// The four commands a policy can name one by one, in the order db-ci lists them.
    pub const EACH: [PolicyCommand; 4] = [
        PolicyCommand::Select,
        PolicyCommand::Insert,
        PolicyCommand::Update,
        PolicyCommand::Delete,
    ];

    /// From `polcmd`; `*` (and anything else) is `ALL`, as `pg_policies` reads it.
    pub fn from_code(code: &str) -> PolicyCommand {
        match first(code) {
            'r' => PolicyCommand::Select,
            'a' => PolicyCommand::Insert,
            'w' => PolicyCommand::Update,
            'd' => PolicyCommand::Delete,
            _ => PolicyCommand::All,
        }
    }

    /// From a command word in any case (`pg_policies.cmd` prints `SELECT`, `ALL`…).
    pub fn from_word(word: &str) -> Option<PolicyCommand> {
        [PolicyCommand::All]
            .into_iter()
            .chain(PolicyCommand::EACH)
            .find(|c| c.as_str().eq_ignore_ascii_case(word))
    }

    /// Lowercase, as the snapshot and the lints print it.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyCommand::Select => "select",
            PolicyCommand::Insert => "insert",
            PolicyCommand::Update => "update",
            PolicyCommand::Delete => "delete",
            PolicyCommand::All => "all",
        }
    }

    /// Uppercase, as `CREATE POLICY … FOR` and `pg_policies` write it.
    pub fn keyword(self) -> &'static str {
        match self {
            PolicyCommand::Select => "SELECT",
            PolicyCommand::Insert => "INSERT",
            PolicyCommand::Update => "UPDATE",
            PolicyCommand::Delete => "DELETE",
            PolicyCommand::All => "ALL",
        }
    }

    /// Whether the policy takes part in deciding `command` (one of [`Self::EACH`]).
    pub fn covers(self, command: PolicyCommand) -> bool {
        self == PolicyCommand::All || self == command
    }

    /// INSERT, UPDATE, DELETE or ALL: the policy lets rows be written.
    pub fn writes(self) -> bool {
        self != PolicyCommand::Select
    }
}

/// `pg_proc.prokind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutineKind {
    Function,
    Procedure,
    Aggregate,
    Window,
}

impl RoutineKind {
    /// Any code but `p`, `a` and `w` is a plain function (`f`).
    pub fn from_code(code: &str) -> RoutineKind {
        match first(code) {
            'p' => RoutineKind::Procedure,
            'a' => RoutineKind::Aggregate,
            'w' => RoutineKind::Window,
            _ => RoutineKind::Function,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoutineKind::Function => "function",
            RoutineKind::Procedure => "procedure",
            RoutineKind::Aggregate => "aggregate",
            RoutineKind::Window => "window",
        }
    }
}

/// `pg_type.typtype` of the types the snapshot lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    Enum,
    Domain,
    Composite,
    Range,
}

impl TypeKind {
    /// Any code but `e`, `d` and `c` reads as a range: the reader selects only these four.
    pub fn from_code(code: &str) -> TypeKind {
        match first(code) {
            'e' => TypeKind::Enum,
            'd' => TypeKind::Domain,
            'c' => TypeKind::Composite,
            _ => TypeKind::Range,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TypeKind::Enum => "enum",
            TypeKind::Domain => "domain",
            TypeKind::Composite => "composite",
            TypeKind::Range => "range",
        }
    }
}

/// `pg_trigger.tgenabled`: when the trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerState {
    /// `O`: fires in origin sessions, the normal state.
    Enabled,
    Disabled,
    /// `R`: fires only in replica sessions.
    Replica,
    /// `A`: fires in every session.
    Always,
}

impl TriggerState {
    pub fn from_code(code: &str) -> TriggerState {
        match first(code) {
            'O' => TriggerState::Enabled,
            'D' => TriggerState::Disabled,
            'R' => TriggerState::Replica,
            _ => TriggerState::Always,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Enabled => "enabled",
            TriggerState::Disabled => "disabled",
            TriggerState::Replica => "enabled replica",
            TriggerState::Always => "enabled always",
        }
    }
}

/// `pg_proc.provolatile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    pub fn from_code(code: &str) -> Volatility {
        match first(code) {
            'i' => Volatility::Immutable,
            's' => Volatility::Stable,
            _ => Volatility::Volatile,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Volatility::Immutable => "immutable",
            Volatility::Stable => "stable",
            Volatility::Volatile => "volatile",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_the_words_the_snapshot_printed() {
        // The SQL `case` expressions these enums replace, row by row.
        for (code, word) in [("r", "table"), ("p", "partitioned table")] {
            assert_eq!(TableKind::from_code(code).as_str(), word);
        }
        assert_eq!(TableKind::from_code("f").to_string(), "foreign table");
        for (code, word) in [
            ("r", "select"),
            ("a", "insert"),
            ("w", "update"),
            ("d", "delete"),
            ("*", "all"),
        ] {
            assert_eq!(PolicyCommand::from_code(code).as_str(), word);
        }
        for (code, word) in [
            ("p", "procedure"),
            ("a", "aggregate"),
            ("w", "window"),
            ("f", "function"),
        ] {
            assert_eq!(RoutineKind::from_code(code).as_str(), word);
        }
        for (code, word) in [
            ("e", "enum"),
            ("d", "domain"),
            ("c", "composite"),
            ("r", "range"),
        ] {
            assert_eq!(TypeKind::from_code(code).as_str(), word);
        }
        for (code, word) in [("i", "immutable"), ("s", "stable"), ("v", "volatile")] {
            assert_eq!(Volatility::from_code(code).as_str(), word);
        }
        assert_eq!(TriggerState::from_code("O"), TriggerState::Enabled);
        assert_eq!(TriggerState::from_code("D"), TriggerState::Disabled);
        assert_eq!(TriggerState::from_code("R"), TriggerState::Replica);
        assert_eq!(TriggerState::from_code("A"), TriggerState::Always);
    }

    #[test]
    fn constraint_and_relation_codes_keep_unknown_ones() {
        assert_eq!(ConstraintKind::from_code("p"), ConstraintKind::PrimaryKey);
        assert_eq!(ConstraintKind::from_code("f"), ConstraintKind::ForeignKey);
        assert_eq!(ConstraintKind::from_code("n"), ConstraintKind::NotNull);
        assert_eq!(ConstraintKind::from_code("z"), ConstraintKind::Other('z'));
        assert!(RelationKind::from_code("v").is_view());
        assert!(RelationKind::from_code("m").is_view());
        assert!(!RelationKind::from_code("r").is_view());
        assert_eq!(RelationKind::from_code(""), RelationKind::Other('\0'));
    }

    #[test]
    fn policy_commands_read_from_pg_policies_words() {
        assert_eq!(PolicyCommand::from_word("ALL"), Some(PolicyCommand::All));
        assert_eq!(
            PolicyCommand::from_word("Select"),
            Some(PolicyCommand::Select)
        );
        assert_eq!(PolicyCommand::from_word("truncate"), None);
        for command in PolicyCommand::EACH {
            assert_eq!(PolicyCommand::from_word(command.keyword()), Some(command));
            assert!(PolicyCommand::All.covers(command));
            assert!(command.covers(command));
        }
        assert!(!PolicyCommand::Select.covers(PolicyCommand::Insert));
        assert!(PolicyCommand::All.writes() && !PolicyCommand::Select.writes());
    }
}
