//! The `properties:` format of policy-test files (issue 4 builds it).

use serde::Deserialize;

/// One counter property.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    pub name: String,
}
