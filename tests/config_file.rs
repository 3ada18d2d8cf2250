//! The shipped example config parses to the documented defaults, and `check-config` (the real
//! binary) accepts it and rejects broken files with the file, the key and the reason.

use std::path::Path;
use std::process::Command;

use bar_ingest::config::{Config, Settings};

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/bar-ingest.example.toml"
    ))
}

#[test]
fn example_config_documents_exactly_the_defaults() {
    let text = std::fs::read_to_string(example()).unwrap();
    let parsed: Config = toml::from_str(&text).expect("example config parses");
    // Debug output covers every field: the example and the code defaults must agree.
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    let settings = Settings::load(example(), None).expect("example config validates");
    assert_eq!(settings.database.contact_points, vec!["127.0.0.1:9042"]);
    assert_eq!(settings.timezone, chrono_tz::America::New_York);
    assert!(settings.metrics_listen.ip().is_loopback());
}

/// Exit codes of `check-config`, as the README's command table gives them.
const EXIT_VALID: i32 = 0;
const EXIT_INVALID: i32 = 2;

/// Runs `bar-ingest check-config ARGS...`: (exit code, stdout, stderr).
fn check_config_with(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .arg("check-config")
        .args(args)
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .env_remove("BAR_INGEST_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_config(file: &Path) -> (Option<i32>, String, String) {
    check_config_with(&[file.as_os_str()])
}

#[test]
fn check_config_accepts_the_example() {
    let (code, stdout, stderr) = check_config(example());
    assert_eq!(code, Some(EXIT_VALID), "stderr: {stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
}

#[test]
fn check_config_names_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.toml",
            "[database]\ncontact_pointz = [\"x\"]\n",
            "unknown field `contact_pointz`",
        ),
        (
            "badpoint.toml",
            "[database]\ncontact_points = [\"10.0.0.1:99999\"]\n",
            "database.contact_points",
        ),
        (
            "tz.toml",
            "[input]\ntimezone = \"US/Nowhere\"\n",
            "input.timezone",
        ),
        ("syntax.toml", "[database\n", "TOML parse error"),
        (
            "mode.toml",
            "[watch]\nmode = \"nfs\"\n",
            "unknown variant `nfs`, expected `notify` or `poll`",
        ),
    ];
    for (name, text, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = check_config(&path);
        assert_eq!(
            code,
            Some(EXIT_INVALID),
            "{name} should fail with 2: {stderr}"
        );
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name} must name the file: {stderr}"
        );
    }
    let missing = dir.path().join("missing.toml");
    let (code, _, stderr) = check_config(&missing);
    assert_eq!(code, Some(EXIT_INVALID), "{stderr}");
    assert!(
        stderr.contains("cannot read the config file") && stderr.contains("missing.toml"),
        "{stderr}"
    );
}

#[test]
fn check_config_without_a_file_exits_with_2() {
    let (code, stdout, stderr) = check_config_with(&[]);
    assert_eq!(
        code,
        Some(EXIT_INVALID),
        "stdout: {stdout}, stderr: {stderr}"
    );
    assert!(stderr.contains("check-config needs a file"), "{stderr}");
}

/// A TOML error names the file, line, column and key, never the text of a line that may hold a
/// secret (issue 11): an unterminated password, a misspelled key, an unquoted number.
#[test]
fn toml_errors_never_show_a_secret() {
    const SECRET: &str = "hunter2xyz";
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unterminated.toml",
            format!("[database]\nusername = \"u\"\npassword = \"{SECRET}\n"),
        ),
        (
            "misspelled.toml",
            format!("[database]\nusername = \"u\"\npasword = \"{SECRET}\"\n"),
        ),
        (
            "number.toml",
            "[database]\nusername = \"u\"\npassword = 123456789\n".to_owned(),
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (code, stdout, stderr) = check_config(&path);
        assert_eq!(code, Some(EXIT_INVALID), "{name}: {stderr}");
        for secret in [SECRET, "123456789"] {
            assert!(
                !stderr.contains(secret) && !stdout.contains(secret),
                "{name} shows the secret: {stderr}"
            );
        }
        assert!(
            stderr.contains("line 3"),
            "{name}: no line number: {stderr}"
        );
    }
}
