//! The Supabase CLI's `supabase/config.toml`, the parts db-ci reads: where seeds live, the
//! server's major version, and the schemas the API serves.

use std::path::Path;

use serde::Deserialize;

use super::SupabaseSettings;
use crate::error::{Error, Result};

/// The parts of the Supabase CLI's `supabase/config.toml` that say where SQL lives.
#[derive(Debug, Deserialize, Default)]
pub(super) struct SupabaseCliConfig {
    #[serde(default)]
    db: SupabaseDb,
    #[serde(default)]
    api: SupabaseApi,
}

/// `[api]`: what PostgREST serves. `extra_search_path` schemas go on the request
/// search_path but get no endpoints, so they are not exposed.
#[derive(Debug, Deserialize)]
struct SupabaseApi {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_api_schemas")]
    schemas: Vec<String>,
}

impl Default for SupabaseApi {
    fn default() -> Self {
        SupabaseApi {
            enabled: true,
            schemas: default_api_schemas(),
        }
    }
}

fn default_api_schemas() -> Vec<String> {
    vec!["public".to_owned(), "graphql_public".to_owned()]
}

#[derive(Debug, Deserialize, Default)]
struct SupabaseDb {
    major_version: Option<u32>,
    #[serde(default)]
    seed: SupabaseSeed,
}

#[derive(Debug, Deserialize)]
struct SupabaseSeed {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_sql_paths")]
    sql_paths: Vec<String>,
}

impl Default for SupabaseSeed {
    fn default() -> Self {
        SupabaseSeed {
            enabled: true,
            sql_paths: default_sql_paths(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_sql_paths() -> Vec<String> {
    vec!["./seed.sql".to_owned()]
}

impl SupabaseCliConfig {
    pub(super) fn load(root: &Path) -> Result<Option<SupabaseCliConfig>> {
        let path = root.join("supabase/config.toml");
        match crate::files::file_if_present(&path) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(what) => {
                return Err(Error::input(format!(
                    "read supabase/config.toml: {what}, where the Supabase CLI's config is expected"
                )))
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("read supabase/config.toml: {e}")))?;
        let parsed: SupabaseCliConfig = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!(":{line}")
                })
                .unwrap_or_default();
            Error::input(format!("supabase/config.toml{at}: {}", e.message()))
        })?;
        Ok(Some(parsed))
    }

    pub(super) fn settings(&self) -> SupabaseSettings {
        SupabaseSettings {
            cli_layout: true,
            major_version: self.db.major_version,
            api_schemas: Some(if !self.api.enabled {
                Vec::new()
            } else if self.api.schemas.is_empty() {
                // `schemas = []` is what CLI templates before 2023 wrote, under "public and
                // storage are always included": the CLI of that time served public, storage
                // and graphql_public for it. Read as nothing, it would hide every table.
                ["public", "storage", "graphql_public"]
                    .map(str::to_owned)
                    .to_vec()
            } else {
                self.api.schemas.clone()
            }),
        }
    }

    /// Seed globs relative to the project root (the CLI resolves them against `supabase/`).
    pub(super) fn seed_patterns(&self) -> Vec<String> {
        if !self.db.seed.enabled {
            return Vec::new();
        }
        self.db
            .seed
            .sql_paths
            .iter()
            .map(|p| format!("supabase/{}", p.trim_start_matches("./")))
            .collect()
    }
}
