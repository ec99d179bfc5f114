//! TLS to a live database, libpq's way: a PostgreSQL server this test starts with a
//! certificate from a CA generated here. `verify-full` passes with that CA and the right host
//! name; a wrong CA is refused by `verify-ca` and `verify-full`; a host the certificate does not
//! name is refused by `verify-full` only; `require` encrypts without checking; `disable` is
//! refused by a server that only accepts TLS. Every session is read-only.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use db_ci::live::{ReadOnly, Target};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A PostgreSQL server with `ssl = on` that accepts only TLS over TCP; stopped on drop.
struct TlsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn as_server_user(command: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn start(bindir: &Path, ca_params: CertificateParams, ca_key: KeyPair) -> TlsServer {
    // The server refuses to run as root: run it as `postgres` then.
    let owner = nix::unistd::geteuid().is_root().then(|| {
        let user = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        (user.uid.as_raw(), user.gid.as_raw())
    });
    let dir = tempfile::tempdir().unwrap();
    chown(dir.path(), owner);
    let data = dir.path().join("data");
    let out = as_server_user(&mut Command::new(bindir.join("initdb")), owner)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "--no-instructions",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&server_key, &issuer).unwrap();
    for (name, text) in [
        ("server.crt", cert.pem()),
        ("server.key", server_key.serialize_pem()),
    ] {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        chown(&path, owner);
    }
    // TLS only over TCP: a plain connection must be refused.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = as_server_user(&mut Command::new(bindir.join("postgres")), owner)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir.path())
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "ssl=on",
            "-c",
            "fsync=off",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer { child, port, dir };
    let started = std::time::Instant::now();
    while !server.dir.path().join(format!(".s.PGSQL.{port}")).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_behave_like_libpq() {
    if common::Backend::local().is_none() {
        return;
    }
    let bindir: PathBuf = db_ci::backend::local::find_install().unwrap().bindir;
    let (ca_params, ca_key, ca_pem) = ca("db-ci test CA");
    let (_, _, wrong_pem) = ca("someone else's CA");
    let server = start(&bindir, ca_params, ca_key);
    let certs = tempfile::tempdir().unwrap();
    let good = certs.path().join("ca.crt");
    let wrong = certs.path().join("wrong.crt");
    std::fs::write(&good, ca_pem).unwrap();
    std::fs::write(&wrong, wrong_pem).unwrap();

    let port = server.port;
    let url = |host: &str, query: String| {
        format!("postgres://postgres:Tls-Secret@{host}:{port}/postgres?{query}")
    };
    let open = |u: String| async move {
        let target = Target::parse(&u, "--against", |_| None)?;
        let session = ReadOnly::open(&target, Duration::from_secs(5)).await?;
        let row = session
            .client()
            .query_one(
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        let ssl: bool = row.get(0);
        let write = session
            .client()
            .batch_execute("create table written (id int)")
            .await;
        session.close().await;
        Ok::<(bool, bool), db_ci::error::Error>((ssl, write.is_err()))
    };

    let verify_full = url(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={}", good.display()),
    );
    let (ssl, refused_write) = open(verify_full).await.expect("verify-full with the CA");
    assert!(ssl, "verify-full session not encrypted");
    assert!(refused_write, "a gate session accepted a write");

    for mode in ["verify-full", "verify-ca"] {
        let error = open(url(
            "localhost",
            format!("sslmode={mode}&sslrootcert={}", wrong.display()),
        ))
        .await
        .expect_err("a wrong CA must be refused");
        let text = error.to_string();
        assert_eq!(error.exit_code(), 3, "{text}");
        assert!(text.contains("certificate"), "{text}");
        assert!(!text.contains("Tls-Secret"), "password printed: {text}");
    }

    // 127.0.0.1 is not a name on the certificate: verify-full refuses, verify-ca does not.
    let by_ip = |mode: &str| {
        url(
            "127.0.0.1",
            format!("sslmode={mode}&sslrootcert={}", good.display()),
        )
    };
    let text = open(by_ip("verify-full"))
        .await
        .expect_err("host mismatch")
        .to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(
        open(by_ip("verify-ca"))
            .await
            .expect("verify-ca ignores the host")
            .0
    );

    // require: encrypted, not checked (libpq without a root certificate).
    let (ssl, _) = open(url("127.0.0.1", "sslmode=require".into()))
        .await
        .expect("require");
    assert!(ssl);
    // prefer (the default) upgrades to TLS when the server offers it.
    let (ssl, _) = open(url("localhost", String::new())).await.expect("prefer");
    assert!(ssl);
    // disable: this server only takes TLS over TCP, so it refuses.
    let text = open(url("localhost", "sslmode=disable".into()))
        .await
        .expect_err("plain refused")
        .to_string();
    assert!(text.contains("sslmode=disable"), "{text}");
    // allow: plain first, then TLS.
    assert!(
        open(url("localhost", "sslmode=allow".into()))
            .await
            .expect("allow")
            .0
    );
}
