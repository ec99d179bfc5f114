//! Catalog descriptions the matrix's unit tests generate rows for.

use super::super::model::{Column, ForeignKey, Relation, RelationKind};

pub(super) fn column(name: &str, ty: &str) -> Column {
    Column {
        name: name.to_owned(),
        data_type: ty.to_owned(),
        not_null: true,
        has_default: false,
        always_generated: false,
        labels: Vec::new(),
        owner: false,
        rules: Default::default(),
    }
}

pub(super) fn table(name: &str, columns: Vec<Column>, fks: Vec<ForeignKey>) -> Relation {
    Relation {
        schema: "public".to_owned(),
        name: name.to_owned(),
        kind: RelationKind::Table,
        columns,
        primary_key: vec!["id".to_owned()],
        unique: vec![vec!["id".to_owned()]],
        foreign_keys: fks,
    }
}

pub(super) fn fk(column: &str, references: &str) -> ForeignKey {
    ForeignKey {
        columns: vec![column.to_owned()],
        references: crate::catalog::QualifiedName::lenient(references, "public"),
        referenced_columns: vec!["id".to_owned()],
    }
}
