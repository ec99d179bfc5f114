//! The container backend's seed: an image's first start keeps nothing, its second builds the
//! seed (and removes its builder), later starts come from it with every verdict unchanged,
//! and a damaged seed costs the speed, never the verdict.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A fixture that exercises the shim (grants, auth, a stub extension), replay, rls, lint.
const FIXTURE: &str = "fail-rls-insert-for-another-user";

struct Run {
    code: Option<i32>,
    text: String,
    verdicts: Vec<(String, String)>,
}

fn run(backend: &common::Backend, cache: &Path) -> Run {
    let json_dir = tempfile::tempdir().unwrap();
    let report = json_dir.path().join("report.json");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(FIXTURE);
    let mut args = vec!["run".to_owned(), fixture.display().to_string()];
    args.extend(backend.args());
    args.extend(["--json".to_owned(), report.display().to_string()]);
    let (code, text) = common::db_ci_text(
        &args,
        &[("CI", "true"), ("DB_CI_CACHE_DIR", cache.to_str().unwrap())],
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let verdicts = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].to_string(), s["verdict"].to_string()))
        .collect();
    Run {
        code,
        text,
        verdicts,
    }
}

/// Containers any db-ci run started that are still there.
fn db_ci_containers() -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let docker = bollard::Docker::connect_with_defaults().unwrap();
        let filters = std::collections::HashMap::from([(
            "label".to_owned(),
            vec![db_ci::backend::container::LABEL.to_owned()],
        )]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        docker.list_containers(Some(options)).await.unwrap().len()
    })
}

fn entries(cache: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_second_start_keeps_a_seed_and_later_starts_use_it_with_the_same_verdicts() {
    let Some(backend) = common::Backend::container() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();

    let first = run(&backend, cache.path());
    assert_eq!(first.code, Some(1), "{}", first.text);
    assert!(!first.text.contains("from its seed"), "{}", first.text);
    assert!(
        entries(cache.path(), "container-seed-").is_empty(),
        "the first start keeps no seed"
    );
    let seen = entries(cache.path(), "container-seen-");
    assert_eq!(seen.len(), 1);

    // Another run building this image's seed now (its staging folder, owned by a live
    // process): this start builds none beside it, and its verdicts are the same.
    let key = seen[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("container-seen-")
        .to_owned();
    let elsewhere = cache.path().join(format!("staging-seed-{key}-elsewhere"));
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(
        elsewhere.join(db_ci::backend::sweep::OWNER_FILE),
        db_ci::backend::owner::Owner::current().unwrap().render(),
    )
    .unwrap();
    let beside = run(&backend, cache.path());
    assert_eq!(beside.code, Some(1), "{}", beside.text);
    assert_eq!(beside.verdicts, first.verdicts, "{}", beside.text);
    assert!(
        entries(cache.path(), "container-seed-").is_empty(),
        "no seed is built beside another run building it"
    );
    std::fs::remove_dir_all(&elsewhere).unwrap();

    let second = run(&backend, cache.path());
    assert_eq!(second.code, Some(1), "{}", second.text);
    assert_eq!(second.verdicts, first.verdicts, "{}", second.text);
    let seeds = entries(cache.path(), "container-seed-");
    assert_eq!(seeds.len(), 1, "the second start keeps a seed");
    let archive = seeds[0].join("cluster.tar");
    assert!(
        std::fs::metadata(&archive).unwrap().len() > 1_000_000,
        "the seed holds a cluster"
    );
    for private in ["password", "cluster.tar"] {
        let metadata = std::fs::metadata(seeds[0].join(private)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777,
            0o600,
            "{private}"
        );
    }
    assert!(
        entries(cache.path(), "staging-").is_empty(),
        "nothing half-built is left"
    );
    assert_eq!(
        db_ci_containers(),
        0,
        "the builder is removed with the run's container"
    );

    // The cache's upkeep: an entry no run used for the whole period goes at the next start's
    // sweep; the seed, last used within it, stays and is marked used again.
    let day = std::time::Duration::from_secs(24 * 3600);
    let now = std::time::SystemTime::now();
    let stale = cache.path().join("pg-0000000000000000");
    std::fs::create_dir_all(stale.join("data")).unwrap();
    std::fs::write(stale.join("ready"), "15").unwrap();
    let set_used = |path: &Path, at: std::time::SystemTime| {
        std::fs::File::open(path).unwrap().set_modified(at).unwrap();
    };
    set_used(&stale, now - db_ci::backend::cache::UNUSED_FOR - day);
    set_used(&seeds[0], now - db_ci::backend::cache::UNUSED_FOR + day);

    let third = run(&backend, cache.path());
    assert_eq!(third.code, Some(1), "{}", third.text);
    assert!(third.text.contains("from its seed"), "{}", third.text);
    assert!(
        !stale.exists(),
        "an entry unused for the whole period is removed"
    );
    let used = std::fs::metadata(&seeds[0]).unwrap().modified().unwrap();
    assert!(used > now - day, "the seed is marked used");
    assert_eq!(third.verdicts, first.verdicts, "{}", third.text);
    assert!(!third
        .text
        .contains(&std::fs::read_to_string(seeds[0].join("password")).unwrap()));

    // A damaged seed: the container's cluster is made by its entrypoint as without one.
    std::fs::write(&archive, b"not an archive").unwrap();
    let fourth = run(&backend, cache.path());
    assert_eq!(fourth.code, Some(1), "{}", fourth.text);
    assert!(!fourth.text.contains("from its seed"), "{}", fourth.text);
    assert_eq!(fourth.verdicts, first.verdicts, "{}", fourth.text);
}
