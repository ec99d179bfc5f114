//! Many copies of one database (a `cargo test` test's own database, see
//! `db_ci::testing::Shared`): made over one maintenance session, with the template's owner
//! and settings read once rather than per copy.

use tokio_postgres::Client;

use super::{apply_database_settings, database_owner, database_settings, DatabaseSetting, Server};
use crate::error::Result;
use crate::sql::quote_ident;

/// Copies `template` as [`Server::create_database`] would, faster.
pub struct Copier {
    admin: Client,
    template: String,
    owner: String,
    settings: Vec<DatabaseSetting>,
    strategy: &'static str,
}

impl Server {
    /// A copier of `template`, a database of this server.
    pub async fn copier(&self, template: &str) -> Result<Copier> {
        let admin = self.admin().await?;
        let owner = database_owner(&admin, template).await?;
        let settings = database_settings(&admin, template).await?;
        // FILE_COPY (15 and later) copies the template's files; the default (WAL_LOG) writes
        // every page through shared buffers and the WAL: about twice the server's work per
        // copy, and dropping the copy then evicts its pages one by one.
        let strategy = if self.major >= 15 {
            " strategy file_copy"
        } else {
            ""
        };
        Ok(Copier {
            admin,
            template: template.to_owned(),
            owner,
            settings,
            strategy,
        })
    }
}

impl Copier {
    /// Creates `name` as a copy of the template, with its owner and settings.
    pub async fn copy(&self, server: &Server, name: &str) -> Result<()> {
        let sql = format!(
            "create database {} template {} owner {}{}",
            quote_ident(name),
            quote_ident(&self.template),
            quote_ident(&self.owner),
            self.strategy
        );
        server.run_create(&self.admin, &sql, name).await?;
        apply_database_settings(&self.admin, &self.settings, name).await
    }

    /// Drops a copy (any database `server` created), forcing off its sessions.
    pub async fn drop(&self, server: &Server, name: &str) -> Result<()> {
        server.drop_database_on(&self.admin, name).await
    }
}
