//! The command line as a user runs it: `keys create|list|revoke` against PostgreSQL, a key
//! printed for the config file and used by a running server, `import` of a bad file, and
//! settings from the environment refused with the key they name.

use std::process::{Command, Output};

use serde_json::json;

use crate::database::TestDatabase;
use crate::helpers::repo_path;
use crate::process::ServerProcess;

fn bullpen(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bullpen"));
    command
        .current_dir(repo_path(""))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("BULLPEN_ENV");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("bullpen runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_in_postgres() {
    let database = TestDatabase::new().await;
    let url = database.url();
    let env = [("BULLPEN__DATABASE__URL", url.as_str())];
    let created = bullpen(
        &[
            "keys",
            "create",
            "--name",
            "desk",
            "--scope",
            "predict,features:read",
            "--rate",
            "120/min",
        ],
        &env,
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    assert!(key.starts_with("bp_"), "the key is printed once: {key}");
    assert!(text(&created.stderr).contains("shown only this once"));

    let twice = bullpen(
        &["keys", "create", "--name", "desk", "--scope", "predict"],
        &env,
    );
    assert!(!twice.status.success(), "one active key per name");
    assert!(
        text(&twice.stderr).contains("already in use"),
        "{}",
        text(&twice.stderr)
    );

    let listed = text(&bullpen(&["keys", "list"], &env).stdout);
    let row = listed
        .lines()
        .find(|l| l.contains("\tdesk\t"))
        .expect("listed");
    assert!(
        row.contains("predict,features:read") && row.contains("\t120\t"),
        "{row}"
    );
    assert!(
        !listed.contains(&key[3..]),
        "the key itself is never listed"
    );
    assert!(row.ends_with("\t-"), "active: {row}");

    let revoked = bullpen(&["keys", "revoke", "--name", "desk"], &env);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let listed = text(&bullpen(&["keys", "list"], &env).stdout);
    let row = listed
        .lines()
        .find(|l| l.contains("\tdesk\t"))
        .expect("listed");
    assert!(!row.ends_with("\t-"), "revoked: {row}");
    let again = bullpen(&["keys", "revoke", "--name", "desk"], &env);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("no active key is named `desk`"));

    let bad_scope = bullpen(
        &["keys", "create", "--name", "x", "--scope", "everything"],
        &env,
    );
    assert!(!bad_scope.status.success());
    assert!(
        text(&bad_scope.stderr).contains("everything"),
        "{}",
        text(&bad_scope.stderr)
    );
    database.drop_now().await;
}

/// `--print-config` writes an entry that a server started on that file accepts.
#[tokio::test]
async fn a_printed_config_key_is_accepted_by_a_server_started_with_it() {
    let printed = bullpen(
        &[
            "keys",
            "create",
            "--name",
            "desk",
            "--scope",
            "predict",
            "--print-config",
        ],
        &[],
    );
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let entry = text(&printed.stdout);
    let key = entry
        .lines()
        .find_map(|l| l.strip_prefix("# The key (shown once; give it to its user): "))
        .expect("the key line")
        .to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("default.toml"),
        format!("[auth]\nenabled = true\n\n{entry}"),
    )
    .expect("config");
    let server = ServerProcess::start(&[("BULLPEN_CONFIG_DIR", dir.path().display().to_string())]);
    let client = reqwest::Client::new();
    let predict = |bearer: Option<String>| {
        let mut request = client
            .post(format!("{}/api/v1/predict", server.address))
            .json(&json!({ "game_id": "KCA202404100" }));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(predict(Some(key)).await.expect("sent").status(), 200);
    assert_eq!(predict(None).await.expect("sent").status(), 401);
}

/// A malformed row names its file and line, and the import leaves nothing of that file.
#[tokio::test]
async fn importing_a_bad_file_names_the_line_and_writes_nothing() {
    let database = TestDatabase::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let good = flate2::read::GzDecoder::new(
        std::fs::File::open(repo_path("data/retrosheet/teams-2024.csv.gz")).expect("data"),
    );
    let mut lines: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(good))
        .take(20)
        .map(|line| line.expect("line"))
        .collect();
    lines[7] = lines[7].replacen(",2024-", ",2024-13-", 1);
    std::fs::write(dir.path().join("teams-2024.csv"), lines.join("\n")).expect("write");
    let url = database.url();
    let output = bullpen(
        &["import", "--dir", dir.path().to_str().expect("path")],
        &[("BULLPEN__DATABASE__URL", url.as_str())],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("teams-2024.csv:8:"),
        "file and line: {stderr}"
    );
    assert_eq!(
        database.count("games").await,
        0,
        "nothing of the file is kept"
    );
    database.drop_now().await;
}

/// Settings from the environment are checked like files: a value that cannot work stops
/// the start with a message naming its key.
#[test]
fn environment_settings_that_cannot_work_are_refused_by_name() {
    for (key, value, named) in [
        ("BULLPEN__SERVER__MAX_BATCH", "0", "server.max_batch"),
        ("BULLPEN__SERVER__PORT", "eighty", "port"),
        ("BULLPEN__SERVER__HOST", "example.com", "server.host"),
        (
            "BULLPEN__REDIS__CLUSTER_NODES",
            "10.0.0.1",
            "redis.cluster_nodes",
        ),
        ("BULLPEN__FEATURES__VERSION", "v9", "features.version"),
        // Empty is a mistake (an unset secret), never "no database".
        ("BULLPEN__DATABASE__URL", "", "database.url"),
    ] {
        let output = bullpen(&["features", "spec"], &[(key, value)]);
        assert!(!output.status.success(), "{key}={value} was accepted");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(named), "{key}={value}: {stderr}");
    }
    let fine = bullpen(
        &["features", "spec"],
        &[("BULLPEN__SERVER__MAX_BATCH", "10")],
    );
    assert!(fine.status.success(), "{}", text(&fine.stderr));
}

/// A private key given where the public key belongs is refused at start, named, and never
/// printed.
#[test]
fn a_private_key_as_the_rs256_public_key_stops_the_start() {
    let output = bullpen(
        &["serve"],
        &[
            ("BULLPEN__SERVER__PORT", "0"),
            ("BULLPEN__SERVER__GRPC_PORT", "0"),
            ("BULLPEN__AUTH__ENABLED", "true"),
            (
                "BULLPEN__AUTH__JWT__RS256_PUBLIC_KEY",
                "tests/fixtures/jwt-rs256-private.pem",
            ),
        ],
    );
    assert!(!output.status.success(), "a private key was accepted");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("auth.jwt.rs256_public_key") && stderr.contains("private key"),
        "{stderr}"
    );
    let pem = std::fs::read_to_string(repo_path("tests/fixtures/jwt-rs256-private.pem"))
        .expect("the test key");
    let body = pem.lines().nth(1).expect("a line of key material");
    assert!(!stderr.contains(body), "the key reached the log");
}

/// An HTTP server on a free port answering 200 to any GET, for `bullpen probe`. It reads the
/// whole request head before answering: closing a socket with unread bytes resets the
/// connection, and the client may then never read the answer.
fn answering_port() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The layers in order: the environment over `config/{BULLPEN_ENV}.toml` over
/// `config/default.toml` over the defaults compiled in. `bullpen probe` GETs `server.port`,
/// so which layer won is which port it reached.
#[test]
fn configuration_layers_override_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (open, closed) = (answering_port(), closed_port());
    let config = dir.path().display().to_string();
    let write = |file: &str, port: Option<u16>| {
        let path = dir.path().join(file);
        match port {
            Some(port) => std::fs::write(path, format!("[server]\nport = {port}\n")),
            None => std::fs::remove_file(path).or(Ok(())),
        }
        .expect("write config");
    };
    let probe = |env_port: Option<u16>| {
        let port = env_port.map(|p| p.to_string());
        let mut env = vec![("BULLPEN_ENV", "staging")];
        if let Some(port) = &port {
            env.push(("BULLPEN__SERVER__PORT", port));
        }
        let output = bullpen(
            &["--config-dir", &config, "probe", "--path", "/ready"],
            &env,
        );
        output.status.code()
    };
    // Each layer wins over the ones below it, and loses to the one above.
    write("default.toml", Some(closed));
    write("staging.toml", Some(closed));
    assert_eq!(probe(Some(open)), Some(0), "the environment wins");
    write("staging.toml", Some(open));
    assert_eq!(
        probe(None),
        Some(0),
        "{{BULLPEN_ENV}}.toml over default.toml"
    );
    assert_eq!(
        probe(Some(closed)),
        Some(1),
        "the environment over the files"
    );
    write("staging.toml", None);
    write("default.toml", Some(open));
    assert_eq!(probe(None), Some(0), "default.toml over the defaults");
    write("staging.toml", Some(closed));
    assert_eq!(
        probe(None),
        Some(1),
        "{{BULLPEN_ENV}}.toml over default.toml"
    );
}

/// `bullpen probe` (the image's HEALTHCHECK) against a real server: 0 when `/ready` says
/// ready, 1 for a path that is not 2xx.
#[test]
fn probe_passes_on_a_ready_server_and_fails_on_a_missing_path() {
    let server = ServerProcess::start(&[]);
    let port = server
        .address
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    let env = [("BULLPEN__SERVER__PORT", port.as_str())];
    let ready = bullpen(&["probe", "--path", "/ready"], &env);
    assert_eq!(ready.status.code(), Some(0), "{}", text(&ready.stderr));
    let missing = bullpen(&["probe", "--path", "/nope"], &env);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing.stderr));
}
