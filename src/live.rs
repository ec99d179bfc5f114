//! Sessions on a live (production) database: TLS the way libpq does it (`sslmode`,
//! `sslrootcert`), then a session that is read-only by construction and bounded by a statement
//! timeout. `drift` and `gate` reach production only through here; the password is never shown.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::Client;

use crate::backend::url::redact_url;
use crate::error::{Error, Result};
use crate::sql::{db_error_text, quote_literal};

/// libpq's `sslmode`, with its meaning: which modes encrypt, which verify what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only if the server refuses plain.
    Allow,
    /// TLS if the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or nothing; the certificate is not checked (unless a root certificate is given,
    /// then as `verify-ca`, like libpq).
    Require,
    /// TLS, and the server's chain must lead to the root certificate.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=/path/ca.crt`).
    File(PathBuf),
    /// The operating system's store (`sslrootcert=system`, as in PostgreSQL 16's libpq).
    System,
}

/// How certificates are checked, once `sslmode` and `sslrootcert` are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Encrypted, but anyone can pose as the server.
    None,
    /// The chain leads to a trusted root; any host name.
    Chain,
    /// The chain, and the certificate names the host.
    ChainAndHost,
}

/// A parsed `--against` target: the connection settings without the TLS options
/// tokio-postgres does not know, and those options apart.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<RootCert>,
    /// The URL with its password replaced: what messages show.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Parses a `postgres://` URL (or a `key=value` string); `sslmode`/`sslrootcert` come from
    /// it, else from `PGSSLMODE`/`PGSSLROOTCERT` through `env`; the default is `prefer`.
    pub fn parse(url: &str, flag: &str, env: impl Fn(&str) -> Option<String>) -> Result<Target> {
        let shown = if url.contains("://") {
            redact_url(url)
        } else {
            crate::redact::mask_key_values(url)
        };
        let expanded = crate::pgservice::expand(url, &env)?;
        let (rest, ssl) = take_ssl_options(&expanded);
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::input(format!("parse {flag} {shown}: {e}")))?;
        if let Some(password) = crate::pgpass::password_for(&config, &env) {
            config.password(password);
        }
        let mode_text = ssl
            .mode
            .or_else(|| env("PGSSLMODE").filter(|v| !v.is_empty()));
        let ssl_mode = match mode_text {
            None => SslMode::Prefer,
            Some(text) => SslMode::parse(&text).ok_or_else(|| {
                Error::input(format!(
                    "parse {flag} {shown}: sslmode `{text}` is not one of disable, allow, \
                     prefer, require, verify-ca, verify-full"
                ))
            })?,
        };
        let root_cert = ssl
            .root_cert
            .or_else(|| env("PGSSLROOTCERT").filter(|v| !v.is_empty()))
            .map(|text| {
                if text == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(text))
                }
            });
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(Error::input(format!(
                "use sslmode={} for {shown}: it needs the CA to trust, as sslrootcert=PATH in the \
                 URL (or PGSSLROOTCERT), or sslrootcert=system for the system's store",
                ssl_mode.as_str()
            )));
        }
        Ok(Target {
            config,
            ssl_mode,
            root_cert,
            shown,
        })
    }

    /// What the certificate check is, libpq's way: `require` with a root certificate
    /// behaves as `verify-ca`.
    pub fn verification(&self) -> Verification {
        match self.ssl_mode {
            SslMode::VerifyFull => Verification::ChainAndHost,
            SslMode::VerifyCa => Verification::Chain,
            SslMode::Require if self.root_cert.is_some() => Verification::Chain,
            _ => Verification::None,
        }
    }

    /// Connects as `sslmode` says. The connection task runs in the background.
    pub async fn connect(&self) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name("db-ci");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(15));
        }
        let fail = |e: tokio_postgres::Error| {
            Error::environment(format!(
                "connect to {} (sslmode={}): {}",
                self.shown,
                self.ssl_mode.as_str(),
                db_error_text(&e)
            ))
        };
        // A unix socket never carries TLS (libpq ignores sslmode there too).
        // (A `?host=/dir` query parameter makes the socket one of the hosts.)
        let socket = config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        if socket {
            config.ssl_mode(WireSslMode::Disable);
            return spawn(config.connect(tokio_postgres::NoTls).await.map_err(fail)?);
        }
        match self.ssl_mode {
            SslMode::Disable => {
                config.ssl_mode(WireSslMode::Disable);
                spawn(config.connect(tokio_postgres::NoTls).await.map_err(fail)?)
            }
            SslMode::Allow => {
                config.ssl_mode(WireSslMode::Disable);
                match config.connect(tokio_postgres::NoTls).await {
                    Ok(pair) => spawn(pair),
                    Err(_) => {
                        config.ssl_mode(WireSslMode::Require);
                        let tls = self.tls()?;
                        spawn(config.connect(tls).await.map_err(fail)?)
                    }
                }
            }
            SslMode::Prefer => {
                config.ssl_mode(WireSslMode::Prefer);
                let tls = self.tls()?;
                spawn(config.connect(tls).await.map_err(fail)?)
            }
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                config.ssl_mode(WireSslMode::Require);
                let tls = self.tls()?;
                spawn(config.connect(tls).await.map_err(fail)?)
            }
        }
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.verification() {
            Verification::None => Arc::new(NoCheck(provider.clone())),
            check => {
                let roots = self.roots()?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::input(format!(
                                "use the root certificates for {}: {e}",
                                self.shown
                            ))
                        })?;
                if check == Verification::Chain {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::environment(format!("set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(RootCert::File(path)) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        Error::input(format!(
                            "read sslrootcert {}: {e} (a PEM file of CA certificates)",
                            path.display()
                        ))
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(Error::input(format!(
                        "read sslrootcert {}: no usable certificate in it",
                        path.display()
                    )));
                }
            }
            Some(RootCert::System) | None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(Error::environment(
                        "load the system's root certificates (sslrootcert=system): none found",
                    ));
                }
            }
        }
        Ok(roots)
    }
}

fn spawn<S, T>(pair: (Client, tokio_postgres::Connection<S, T>)) -> Result<Client>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    let (client, connection) = pair;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The TLS options tokio-postgres does not take, removed from the connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct SslOptions {
    mode: Option<String>,
    root_cert: Option<String>,
}

fn take_ssl_options(url: &str) -> (String, SslOptions) {
    let mut ssl = SslOptions::default();
    let mut keep = |key: &str, value: String| -> bool {
        match key {
            "sslmode" => ssl.mode = Some(value),
            "sslrootcert" => ssl.root_cert = Some(value),
            // Client certificates are not supported; tokio-postgres would reject them anyway.
            _ => return true,
        }
        false
    };
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), ssl);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = ::url::form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                keep(key, value)
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, ssl)
    } else {
        // Quoted values may hold spaces: read the settings as libpq does, and write the kept
        // ones back quoted. A string that does not parse is left to tokio-postgres to refuse.
        let Some(settings) = crate::redact::key_values(url) else {
            return (url.to_owned(), ssl);
        };
        let kept: Vec<crate::redact::Setting> = settings
            .into_iter()
            .filter(|s| keep(&s.key, s.value.clone()))
            .collect();
        (crate::redact::join_key_values(&kept), ssl)
    }
}

/// `require`/`prefer`/`allow` without a root certificate: encrypted, identity unchecked
/// (libpq's behaviour). Handshake signatures are still verified.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full web-PKI check, except that the certificate need not name the host.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A production session: one `REPEATABLE READ READ ONLY` transaction, on a session whose
/// default is read-only too, proven so before the caller gets it. Dropping it ends the
/// session (nothing to commit: it cannot have written).
pub struct ReadOnly {
    client: Client,
    pub shown: String,
    pub statement_timeout: Duration,
}

impl ReadOnly {
    /// Connects to `target` and makes the session read-only, or refuses.
    pub async fn open(target: &Target, statement_timeout: Duration) -> Result<ReadOnly> {
        let client = target.connect().await?;
        let refuse = |why: String| {
            Error::environment(format!(
                "make the session on {} read-only ({why}): refusing to read it",
                target.shown
            ))
        };
        let timeout = quote_literal(&format!("{}ms", statement_timeout.as_millis()));
        client
            .batch_execute(&format!(
                "set default_transaction_read_only = on; \
                 set statement_timeout = {timeout}; \
                 set lock_timeout = {timeout}; \
                 set idle_in_transaction_session_timeout = '10min'; \
                 begin isolation level repeatable read read only"
            ))
            .await
            .map_err(|e| refuse(db_error_text(&e)))?;
        let row = client
            .query_one(
                "select current_setting('transaction_read_only'), \
                 current_setting('default_transaction_read_only')",
                &[],
            )
            .await
            .map_err(|e| refuse(db_error_text(&e)))?;
        let (now, default): (String, String) = (row.get(0), row.get(1));
        if now != "on" || default != "on" {
            let _ = client.batch_execute("rollback").await;
            return Err(refuse(format!(
                "transaction_read_only is {now}, default_transaction_read_only is {default}"
            )));
        }
        Ok(ReadOnly {
            client,
            shown: target.shown.clone(),
            statement_timeout,
        })
    }

    /// The client, inside the read-only transaction.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `sql` under a savepoint, so that a timeout (or any error) leaves the transaction
    /// usable. `Ok(None)` when it ran past the statement timeout.
    pub async fn bounded_query(
        &self,
        sql: &str,
    ) -> std::result::Result<Option<Vec<tokio_postgres::Row>>, crate::sql::error::DbError> {
        self.client.batch_execute("savepoint db_ci_bounded").await?;
        let result = self.client.query(sql, &[]).await;
        let _ = self
            .client
            .batch_execute("rollback to savepoint db_ci_bounded")
            .await;
        match result {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends the transaction and the session.
    pub async fn close(self) {
        let _ = self.client.batch_execute("rollback").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, env: &[(&str, &str)]) -> Result<Target> {
        Target::parse(url, "--against", |key| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn ssl_options_are_taken_out_of_the_url() {
        let (rest, ssl) = take_ssl_options(
            "postgres://u:p@h:5432/db?sslmode=verify-full&sslrootcert=%2Fca.crt&application_name=x",
        );
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(ssl.mode.as_deref(), Some("verify-full"));
        assert_eq!(ssl.root_cert.as_deref(), Some("/ca.crt"));
        let (rest, ssl) = take_ssl_options("host=h user=u sslmode=require");
        assert_eq!(rest, "host=h user=u");
        assert_eq!(ssl.mode.as_deref(), Some("require"));
    }

    #[test]
    fn libpq_semantics_of_each_mode() {
        let t = parse("postgres://u@h/db", &[]).unwrap();
        assert_eq!(t.ssl_mode, SslMode::Prefer);
        assert_eq!(t.verification(), Verification::None);
        let t = parse("postgres://u@h/db?sslmode=require", &[]).unwrap();
        assert_eq!(t.verification(), Verification::None);
        let t = parse("postgres://u@h/db?sslmode=require&sslrootcert=/ca", &[]).unwrap();
        assert_eq!(t.verification(), Verification::Chain);
        let t = parse("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/ca", &[]).unwrap();
        assert_eq!(t.verification(), Verification::Chain);
        let t = parse(
            "postgres://u@h/db?sslrootcert=system&sslmode=verify-full",
            &[],
        )
        .unwrap();
        assert_eq!(t.verification(), Verification::ChainAndHost);
        assert_eq!(t.root_cert, Some(RootCert::System));
    }

    #[test]
    fn environment_fills_what_the_url_does_not_say() {
        let env = [
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
        ];
        let t = parse("postgres://u@h/db", &env).unwrap();
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        let t = parse("postgres://u@h/db?sslmode=disable", &env).unwrap();
        assert_eq!(t.ssl_mode, SslMode::Disable);
    }

    #[test]
    fn bad_input_is_exit_2_without_the_password() {
        let err = parse("postgres://u:s3cret@h/db?sslmode=verify", &[]).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("verify-full"), "{err}");
        let err = parse("postgres://u:s3cret@h/db?sslmode=verify-full", &[]).unwrap_err();
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = parse("host=h password=s3cret sslmode=nope", &[]).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
