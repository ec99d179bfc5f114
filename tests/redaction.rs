//! No password in any output: every form of connection string libpq accepts, with a password,
//! checked against the console, stderr, the `::error` annotations, the job summary, the JSON
//! and the JUnit report — for a server that refuses, a string that does not parse, and a
//! server that answers.

mod common;

use std::path::Path;

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};

/// Every output of one run, concatenated.
fn outputs(args: &[String]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let summary = dir.path().join("summary.md");
    let mut all_args = args.to_vec();
    // drift writes no report files.
    let reports = if args[0] == "drift" { 0 } else { 4 };
    all_args.extend(
        [
            "--json".to_owned(),
            json.display().to_string(),
            "--junit".to_owned(),
            junit.display().to_string(),
        ]
        .into_iter()
        .take(reports),
    );
    let output = common::db_ci_with_env(
        &all_args,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", &summary.display().to_string()),
            ("CI", "true"),
        ],
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}\n--- json\n{}\n--- junit\n{}\n--- summary\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        read(&json),
        read(&junit),
        read(&summary)
    );
    (output.status.code(), text)
}

/// Connection strings with the password `secret` in every form libpq accepts; `host` and
/// `port` as given (`%2F…` for a socket directory in URLs, the path in key=value).
fn forms(url_host: &str, kv_host: &str, port: u16, secret: &str) -> Vec<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![
        format!("postgres://postgres:{encoded}@{url_host}:{port}/postgres"),
        format!("postgresql://postgres:{encoded}@{url_host}:{port}/postgres"),
        format!("postgres://postgres@{url_host}:{port}/postgres?password={encoded}"),
        format!("postgres://{url_host}:{port}/postgres?user=postgres&password={encoded}"),
        format!(
            "postgresql://{url_host}:{port}/postgres?password={encoded}&user=postgres&sslmode=disable"
        ),
        format!("postgres://postgres:{encoded}@{url_host}:{port}/postgres?password={encoded}"),
        format!("host={kv_host} port={port} user=postgres password={secret} dbname=postgres"),
        format!(
            "host={kv_host} port={port} user=postgres password='{}' dbname=postgres",
            secret.replace('\'', "\\'")
        ),
        format!("host={kv_host} port={port} password = {secret} user=postgres"),
        format!("password={secret} host={kv_host} port={port} user=postgres"),
    ]
}

fn assert_no_secret(text: &str, secret: &str, context: &str) {
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for form in [secret, encoded.as_str()] {
        assert!(!text.contains(form), "{context}: password printed:\n{text}");
    }
}

#[test]
fn no_fragment_of_a_quoted_password_with_spaces_is_printed() {
    // libpq reads `password='two words Pw9'` as one value: every word of it is the secret.
    let secret = "two wOrds Pw9x";
    for command in ["gate", "drift"] {
        for url in [
            format!("host=127.0.0.1 port=1 user=x password='{secret}' dbname=y"),
            format!("host=127.0.0.1 port=1 password = '{secret}' user=x"),
        ] {
            let (code, text) = outputs(&[
                command.into(),
                fixture("pass-minimal"),
                "--against".into(),
                url.clone(),
            ]);
            assert_eq!(code, Some(3), "{command} {url}: {text}");
            for fragment in secret.split(' ') {
                assert!(
                    !text.contains(fragment),
                    "{command} {url}: `{fragment}` printed:\n{text}"
                );
            }
            assert!(text.contains("password=***"), "{text}");
        }
    }
}

#[test]
fn no_password_in_any_output_when_the_server_refuses_or_the_string_is_bad() {
    let secret = "Xq7'vR@z/9";
    for url in forms("127.0.0.1", "127.0.0.1", 1, secret) {
        let (code, text) = outputs(&[
            "replay".into(),
            fixture("pass-minimal"),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            url.clone(),
        ]);
        assert_eq!(code, Some(3), "{url}: {text}");
        assert_no_secret(&text, secret, &url);
        assert!(text.contains("::error"), "{text}");
    }
    // Strings that do not parse, passwords in them all the same.
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for bad in [
        format!("postgres://postgres:{encoded}@[::1/postgres"),
        format!("host=h password='{secret} dbname=x"),
        format!("postgres://h:notaport/db?password={encoded}"),
    ] {
        let (code, text) = outputs(&[
            "replay".into(),
            fixture("pass-minimal"),
            "--database-url".into(),
            bad.clone(),
        ]);
        assert!(matches!(code, Some(2) | Some(3)), "{bad}: {text}");
        assert_no_secret(&text, secret, &bad);
    }
    // drift --against too.
    for url in forms("127.0.0.1", "127.0.0.1", 1, secret) {
        let (code, text) = outputs(&[
            "drift".into(),
            fixture("pass-minimal"),
            "--against".into(),
            url.clone(),
        ]);
        assert_eq!(code, Some(3), "{url}: {text}");
        assert_no_secret(&text, secret, &url);
    }
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_any_output_of_a_run_that_reaches_the_server() {
    if common::Backend::local().is_none() {
        return;
    }
    let mut server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .unwrap();
    // A server as users hand one over: its superuser is `postgres`.
    common::as_plain_postgres_server(&mut server).await;
    let Host::Socket(socket) = &server.connection.host else {
        panic!("local backend uses a socket")
    };
    let url_host = socket.display().to_string().replace('/', "%2F");
    let kv_host = socket.display().to_string();
    let secret = "Hb3$kz&P=w";
    let forms = forms(&url_host, &kv_host, server.connection.port, secret);
    let results = tokio::task::spawn_blocking(move || {
        common::parallel(forms, 2, |url| {
            // A failing fixture: failures, notes and the error paths all print.
            let (code, text) = outputs(&[
                "replay".into(),
                fixture("fail-nonidempotent-policy"),
                "--backend".into(),
                "url".into(),
                "--database-url".into(),
                url.clone(),
            ]);
            (url, code, text)
        })
    })
    .await
    .unwrap();
    for (url, code, text) in results {
        assert_eq!(code, Some(1), "{url}: {text}");
        assert_no_secret(&text, secret, &url);
    }
    server.shutdown().await;
}
