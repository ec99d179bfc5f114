//! A throwaway stage (never kept): counts the public tables, fails below `--demo-minimum`.

use clap::{Arg, ArgMatches, Command};
use serde::Serialize;

use crate::error::Result;
use crate::events::Reporter;
use crate::report::detail::{Console, Detail, StageDetail, SummaryParts};
use crate::report::{Failure, StageReport, StageVerdict};
use crate::stage::{StageCli, StageCommand, StageContext, StageOptions};
use crate::stage_id::StageId;

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    pub minimum: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoDetail {
    pub public_tables: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<usize>,
}

impl StageDetail for DemoDetail {
    fn console(&self, _stage: &StageReport, console: &Console) -> String {
        format!(
            "\n{}demo: {} public table(s)",
            console.indent, self.public_tables
        )
    }

    fn summary(&self, _stage: &StageReport, summary: &mut SummaryParts) {
        summary.sections.push((
            "the demo section",
            format!("### Demo\n\n{} public table(s)\n\n", self.public_tables),
        ));
    }
}

inventory::submit!(crate::stage::Registration {
    id: StageId::Demo,
    load: |_| Ok(Box::new(stage)),
    on_rehearsal: false,
    cli: StageCli {
        flags: |command: Command| {
            command.arg(
                Arg::new("demo_minimum")
                    .long("demo-minimum")
                    .value_name("N")
                    .value_parser(clap::value_parser!(usize))
                    .help("Fail the demo stage below this many public tables"),
            )
        },
        options: |matches: &ArgMatches, options: &mut StageOptions| {
            let minimum = matches
                .try_get_one::<usize>("demo_minimum")
                .ok()
                .flatten()
                .copied();
            options.set(DemoOptions { minimum });
        },
        command: Some(StageCommand::plain(
            "demo",
            "Replay once, then count the public tables"
        )),
    },
});

pub async fn stage(ctx: &StageContext<'_>, _reporter: &mut dyn Reporter) -> Result<StageReport> {
    let client = ctx.server.connect(ctx.database).await?;
    let row = client
        .query_one(
            "select count(*)::int8 from pg_tables where schemaname = 'public'",
            &[],
        )
        .await
        .map_err(|e| crate::error::Error::environment(format!("count the tables: {e}")))?;
    let public_tables = row.get::<_, i64>(0) as usize;
    let minimum = ctx.options.stages.get::<DemoOptions>().minimum;
    let mut report = StageReport::new(StageId::Demo, StageVerdict::Pass);
    report.checks = 1;
    if minimum.is_some_and(|m| public_tables < m) {
        report.verdict = StageVerdict::Fail;
        report.failures.push(Failure {
            file: "db-ci.yaml".to_owned(),
            line: 0,
            column: None,
            message: format!(
                "{public_tables} public table(s), fewer than {}",
                minimum.unwrap_or(0)
            ),
            notes: Vec::new(),
            statement: None,
        });
    }
    report.detail = Detail::new(DemoDetail {
        public_tables,
        minimum,
    });
    Ok(report)
}
