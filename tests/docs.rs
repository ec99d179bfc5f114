//! The documentation held to the code: every `db-ci <command>` and `--flag` that README.md and
//! docs/*.md show exists in the CLI (read from clap's command tree, not from `--help` text), and
//! every relative link in them leads to a file and, with `#anchor`, to a heading there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use regex::Regex;

/// Other tools whose flags the pages quote: a flag after one of these words, in the same code
/// span or line, is that tool's.
const OTHER_TOOLS: &[&str] = &[
    "cargo", "pg_prove", "psql", "supabase", "xmllint", "apt-get", "git", "docker", "gh", "initdb",
];

/// Flags of other tools quoted without the tool's name (pg_prove's and psql's as
/// `supabase test db` starts them).
const OTHER_TOOLS_FLAGS: &[&str] = &[
    "--ext",
    "--no-psqlrc",
    "--no-align",
    "--quiet",
    "--pset",
    "--set",
];

/// A command or flag a page shows that the CLI does not have, or a link that leads nowhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    file: String,
    line: usize,
    what: String,
}

/// The CLI as clap builds it: each subcommand's long flags (`help` included), and the root's.
struct Cli {
    commands: BTreeMap<String, BTreeSet<String>>,
    root: BTreeSet<String>,
}

impl Cli {
    fn from_clap() -> Cli {
        let root = db_ci::cli::Cli::command();
        let longs = |cmd: &clap::Command| -> BTreeSet<String> {
            let mut flags: BTreeSet<String> = cmd
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(str::to_owned)
                .collect();
            // clap adds these when it builds the parser, after `get_arguments` is read.
            flags.insert("help".to_owned());
            flags
        };
        let mut root_flags = longs(&root);
        root_flags.insert("version".to_owned());
        let commands = root
            .get_subcommands()
            .map(|sub| (sub.get_name().to_owned(), longs(sub)))
            .collect();
        Cli {
            commands,
            root: root_flags,
        }
    }

    fn any_command_has(&self, flag: &str) -> bool {
        self.root.contains(flag) || self.commands.values().any(|flags| flags.contains(flag))
    }
}

/// Pieces of a page that are code: each fenced block's lines one by one, and each inline code
/// span (which may run over a line break), with the line it starts on.
fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    let mut prose = String::new();
    let mut prose_start = 1;
    let mut fenced = false;
    let flush = |prose: &mut String, start: usize, spans: &mut Vec<(usize, String)>| {
        let mut line = start;
        let mut rest = prose.as_str();
        while let Some(open) = rest.find('`') {
            line += rest[..open].matches('\n').count();
            let ticks = rest[open..].chars().take_while(|c| *c == '`').count();
            let after = &rest[open + ticks..];
            let fence = "`".repeat(ticks);
            let Some(close) = after.find(&fence) else {
                break;
            };
            spans.push((line, after[..close].to_owned()));
            line += after[..close].matches('\n').count();
            rest = &after[close + ticks..];
        }
        prose.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim_start().starts_with("```") {
            if !fenced {
                flush(&mut prose, prose_start, &mut spans);
            }
            fenced = !fenced;
            prose_start = number + 1;
            continue;
        }
        if fenced {
            spans.push((number, line.to_owned()));
        } else {
            if prose.is_empty() {
                prose_start = number;
            }
            prose.push_str(line);
            prose.push('\n');
        }
    }
    flush(&mut prose, prose_start, &mut spans);
    spans
}

/// Every `db-ci <command>` and `--flag` in the page's code that the CLI lacks. A flag belongs to
/// the nearest command before it in its span (`db-ci rls --record`); with none before it, to
/// any command; after another tool's name, to that tool, and is not checked. Short flags are not
/// checked.
fn cli_problems(file: &str, text: &str, cli: &Cli, seen: &mut BTreeSet<String>) -> Vec<Problem> {
    let token = Regex::new(r"\bdb-ci +([a-z][a-z0-9-]*)\b|(?:^|[\s`(\[|,])(--[a-z][a-z0-9-]*)|([A-Za-z_][A-Za-z0-9_-]*)").unwrap();
    let mut problems = Vec::new();
    for (line, span) in code_spans(text) {
        // None: no owner yet; Some(None): another tool; Some(Some(cmd)): a db-ci command.
        let mut owner: Option<Option<String>> = None;
        for caps in token.captures_iter(&span) {
            if let Some(command) = caps.get(1) {
                let command = command.as_str();
                seen.insert(format!("db-ci {command}"));
                if !cli.commands.contains_key(command) {
                    problems.push(Problem {
                        file: file.to_owned(),
                        line,
                        what: format!("`db-ci {command}`: no such command"),
                    });
                }
                owner = Some(Some(command.to_owned()));
            } else if let Some(flag) = caps.get(2) {
                let flag = flag.as_str();
                let name = &flag[2..];
                if owner != Some(None) {
                    seen.insert(flag.to_owned());
                }
                let known = match &owner {
                    Some(None) => true,
                    Some(Some(command)) => cli
                        .commands
                        .get(command)
                        .is_none_or(|flags| flags.contains(name)),
                    None => cli.any_command_has(name) || OTHER_TOOLS_FLAGS.contains(&flag),
                };
                if !known {
                    let of = match &owner {
                        Some(Some(command)) => format!("`db-ci {command}`"),
                        _ => "any db-ci command".to_owned(),
                    };
                    problems.push(Problem {
                        file: file.to_owned(),
                        line,
                        what: format!("`{flag}`: not a flag of {of}"),
                    });
                }
            } else if let Some(word) = caps.get(3) {
                if OTHER_TOOLS.contains(&word.as_str()) {
                    owner = Some(None);
                }
            }
        }
    }
    problems
}

/// A heading's anchor as GitHub makes it: lowercase, punctuation but `-` and `_` dropped,
/// spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside code blocks), repeated ones numbered as GitHub
/// numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if fenced {
            continue;
        }
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Every relative link of the page at `path` (outside code) that leads to no file, or to no
/// heading of that file.
fn link_problems(root: &Path, path: &Path, text: &str) -> Vec<Problem> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let mut problems = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let line_text = code.replace_all(line, "");
        for caps in link.captures_iter(&line_text) {
            let target = &caps[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target, None),
            };
            let dest = path.parent().unwrap().join(file);
            let problem = if !file.is_empty() && !dest.exists() {
                Some(format!("link `{target}`: no file {}", dest.display()))
            } else if let Some(anchor) = anchor {
                let page = if file.is_empty() {
                    text.to_owned()
                } else {
                    std::fs::read_to_string(&dest).unwrap_or_default()
                };
                (!anchors(&page).contains(anchor))
                    .then(|| format!("link `{target}`: no heading with that anchor"))
            } else {
                None
            };
            problems.extend(problem.map(|what| Problem {
                file: rel.clone(),
                line: i + 1,
                what,
            }));
        }
    }
    problems
}

/// README.md and every page of docs/.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn report(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}:{}: {}", p.file, p.line, p.what))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_command_and_flag_the_docs_show_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli = Cli::from_clap();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for page in pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        let rel = page.strip_prefix(root).unwrap().display().to_string();
        problems.extend(cli_problems(&rel, &text, &cli, &mut seen));
    }
    assert!(problems.is_empty(), "{}", report(&problems));
    // And the other way round, so that the check above cannot pass by finding nothing: every
    // command and every long flag the CLI has is shown somewhere.
    let missing: Vec<String> = cli
        .commands
        .iter()
        .flat_map(|(command, flags)| {
            let flags = flags
                .iter()
                .filter(|f| *f != "help")
                .map(|f| format!("--{f}"));
            std::iter::once(format!("db-ci {command}")).chain(flags)
        })
        .filter(|mention| !seen.contains(mention))
        .collect();
    assert!(missing.is_empty(), "not documented: {missing:?}");
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for page in pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        problems.extend(link_problems(root, &page, &text));
    }
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn the_cli_tree_is_read() {
    let cli = Cli::from_clap();
    assert!(cli.commands["run"].contains("backend"));
    assert!(cli.commands["rls"].contains("record"));
    assert!(!cli.commands["run"].contains("record"));
    assert!(cli.commands["gate"].contains("against"));
    assert!(cli.root.contains("version"));
}

#[test]
fn a_made_up_command_or_flag_is_caught() {
    let cli = Cli::from_clap();
    let text = "Run `db-ci run --frobnicate` or `db-ci frob`.\n\n```\ndb-ci rls --record\n  --also-made-up   text\ndb-ci run --record\n```\n";
    let found: Vec<String> = cli_problems("x.md", text, &cli, &mut BTreeSet::new())
        .into_iter()
        .map(|p| format!("{}: {}", p.line, p.what))
        .collect();
    assert_eq!(
        found,
        [
            "1: `--frobnicate`: not a flag of `db-ci run`",
            "1: `db-ci frob`: no such command",
            "5: `--also-made-up`: not a flag of any db-ci command",
            "6: `--record`: not a flag of `db-ci run`",
        ]
    );
}

#[test]
fn other_tools_flags_and_words_after_db_ci_are_not_commands() {
    let cli = Cli::from_clap();
    let text = "`pg_prove --ext .sql -r t`, `cargo test --all-features`, `supabase db push\n--include-seed`, db-ci.yaml, `db-ci.yaml`, `db-ci's`, `org/db-ci@v1`, `db-ci <command>`,\n`--min-coverage 80` and `--record --accept`.\n";
    assert_eq!(
        cli_problems("x.md", text, &cli, &mut BTreeSet::new()),
        Vec::new()
    );
}

#[test]
fn a_span_over_a_line_break_keeps_its_line() {
    let spans = code_spans("a\n`b\nc` d `e`\n```sh\nf\n```\n`g`\n");
    assert_eq!(
        spans,
        [
            (2, "b\nc".to_owned()),
            (3, "e".to_owned()),
            (5, "f".to_owned()),
            (7, "g".to_owned())
        ]
    );
}

#[test]
fn anchors_follow_github() {
    let page = "# A `b` (c/d)\n## The JSON report (`--json PATH`)\n## x\n## x\n```\n# not a heading\n```\n#nope\n";
    assert_eq!(
        anchors(page),
        BTreeSet::from(["a-b-cd", "the-json-report---json-path", "x", "x-1"].map(str::to_owned))
    );
}

#[test]
fn a_broken_link_or_anchor_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.md"), "# Here\n").unwrap();
    let page = dir.path().join("a.md");
    let text = "[ok](b.md#here) [file](c.md) [anchor](b.md#there) [self](#top) [web](https://x.y/z#q)\n`[code](none.md)`\n# Top\n";
    let found: Vec<String> = link_problems(dir.path(), &page, text)
        .into_iter()
        .map(|p| p.what)
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("link `c.md`: no file"), "{found:?}");
    assert_eq!(found[1], "link `b.md#there`: no heading with that anchor");
}
