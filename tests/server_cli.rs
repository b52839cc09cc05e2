//! The `klein` command line: a bad flag or configuration gets one clear line and exit code 2,
//! never a panic or a usage dump; `--help` and `--version` work.

mod common;

use std::io::Write as _;

use common::klein;

/// Runs `klein` with `args`; returns (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let output = klein().args(args).output().expect("run klein");
    (output.status.code().expect("exit code"), String::from_utf8(output.stderr).unwrap())
}

fn assert_one_line_error(args: &[&str], expected: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut full = vec!["server", "--listen", "127.0.0.1:0", "--data-dir"];
    let data_dir_text = data_dir.path().to_str().unwrap().to_owned();
    full.push(&data_dir_text);
    full.extend_from_slice(args);
    let (code, stderr) = run(&full);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.starts_with("klein: "), "{stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr:?} lacks {expected:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flag_values_exit_2_with_one_line_naming_the_flag() {
    assert_one_line_error(&["--cores", "abc"], "--cores");
    assert_one_line_error(&["--cores", "0"], "--cores");
    assert_one_line_error(&["--cores", "100000"], "--cores");
    assert_one_line_error(&["--listen", "nowhere"], "--listen");
    assert_one_line_error(&["--node-id", "0"], "--node-id");
    assert_one_line_error(&["--peer-listen", "1.2.3.4"], "--peer-listen");
    assert_one_line_error(
        &["--initial-cluster", "1=127.0.0.1:7101,1=127.0.0.1:7102"],
        "--initial-cluster",
    );
    assert_one_line_error(
        &["--node-id", "4", "--initial-cluster", "1=127.0.0.1:7101"],
        "node id 4",
    );
    assert_one_line_error(&["--log-level", "loud"], "--log-level");
}

#[test]
fn unknown_flags_and_subcommands_exit_2_with_one_line() {
    assert_one_line_error(&["--no-such-flag"], "--no-such-flag");
    let (code, stderr) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, stderr) = run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_config_file_names_the_file_line_and_key() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "listen = \"127.0.0.1:0\"\ncors = 3").unwrap();
    let path = file.path().to_str().unwrap();
    assert_one_line_error(&["--config", path], "line 2");
    assert_one_line_error(&["--config", path], "cors");

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "log_level = \"loud\"").unwrap();
    let path = file.path().to_str().unwrap();
    assert_one_line_error(&["--config", path], "invalid `log_level` in");

    assert_one_line_error(&["--config", "/nonexistent/klein.toml"], "cannot read");
}

#[test]
fn a_flag_overrides_a_bad_file_value() {
    // The file's bad log level is overridden, so the file's bad cores value is what fails,
    // reported against the file (not a flag).
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "log_level = \"loud\"\ncores = 0").unwrap();
    let path = file.path().to_str().unwrap();
    assert_one_line_error(&["--config", path, "--log-level", "warn"], "invalid `cores` in");
}

#[test]
fn help_and_version_exit_0() {
    let output = klein().args(["server", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in ["--config", "--listen", "--data-dir", "--cores", "--node-id", "--peer-listen"] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
    assert!(help.contains("--initial-cluster") && help.contains("--log-level"));
    let output = klein().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("klein "));
}
