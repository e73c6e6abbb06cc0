//! TLS to PostgreSQL: a server with its own CA; `sslmode=require` with that CA connects (and
//! migrates, ingests, reads over TLS); with another CA the connection is refused.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn openssl(dir: &Path, args: &[&str]) {
    let what = format!("openssl {args:?}");
    run_ok(Command::new("openssl").current_dir(dir).args(args), &what);
}

/// A CA (`<name>.crt`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A server certificate for localhost signed by the CA `ca`: server.crt, server.key.
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );
}

#[tokio::test]
async fn sslmode_require_connects_with_the_right_ca_and_refuses_another() {
    let cluster = PgCluster::start_new(&[]);
    let certs = cluster.root.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_ca(&certs, "ca");
    make_ca(&certs, "other-ca");
    make_server_cert(&certs, "ca");
    give_to_postgres(&certs, 0o755);
    give_to_postgres(&certs.join("server.crt"), 0o644);
    give_to_postgres(&certs.join("server.key"), 0o600);
    let admin = cluster.admin();
    for setting in [
        format!("ssl_cert_file = '{}/server.crt'", certs.display()),
        format!("ssl_key_file = '{}/server.key'", certs.display()),
        "ssl = on".to_owned(),
    ] {
        admin.psql("postgres", &format!("ALTER SYSTEM SET {setting}"));
    }
    admin.psql("postgres", "SELECT pg_reload_conf()");
    admin.psql("postgres", "CREATE DATABASE tls");
    let db = TestDb {
        admin: admin.clone(),
        name: "tls".into(),
    };

    // The right CA: migrations, ingest and reads all go over TLS.
    let url = format!(
        "postgresql://postgres:{ADMIN_PASSWORD}@localhost:{}/tls?sslmode=require",
        cluster.port
    );
    let mut config = test_config(&db);
    config.database.url = database_url(&url);
    config.database.read_url = None;
    config.database.ssl_root_cert = Some(certs.join("ca.crt"));
    let app = spawn_app_on(db, config.clone()).await;
    assert_eq!(app.get(&app.ingest, "/readyz").await.status(), 200);
    let run = sample_run(2, "success");
    assert_eq!(app.post_run(&run).await.status(), 201);
    assert_eq!(app.get_run(&run_id_of(&run)).await.status(), 200);
    let encrypted = app.db.psql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'agenttracer-%'",
    );
    let (tls, plain) = encrypted.split_once('|').unwrap();
    assert!(
        tls.parse::<i64>().unwrap() >= 2 && plain == "0",
        "tls|plain connections: {encrypted}"
    );

    // Another CA: refused, and said so without credentials.
    let pool = agenttracer::db::build_pool(
        &config.database.url,
        &agenttracer::config::DatabaseConfig {
            ssl_root_cert: Some(certs.join("other-ca.crt")),
            ..config.database.clone()
        },
        agenttracer::db::Access::Write,
    )
    .unwrap();
    let err = agenttracer::db::ping(&pool, std::time::Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!err.contains(ADMIN_PASSWORD), "{err}");

    // Without a root certificate the built-in public roots do not know this CA either.
    let err = agenttracer::db::migrate::run(
        &config.database.url,
        &agenttracer::config::DatabaseConfig::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let read: Value = app.get_run(&run_id_of(&run)).await.json().await.unwrap();
    assert_eq!(read["run_id"], run["run_id"]);
}
