use std::process::Command;

use bullpen::features::{FEATURE_COUNT, FEATURE_SPEC, FEATURE_SPEC_V2};

use crate::helpers::{repo_path, store};

/// `bullpen features export --seasons 2024` on the shipped data into `dir`: the table's path.
pub fn export_2024(dir: &std::path::Path, version: &str) -> std::path::PathBuf {
    let table = dir.join(format!("2024-{version}.csv"));
    let status = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args([
            "features",
            "export",
            "--seasons",
            "2024",
            "--version",
            version,
        ])
        .arg("--output")
        .arg(&table)
        .status()
        .expect("bullpen runs");
    assert!(status.success());
    table
}

#[test]
fn export_2024_writes_every_regular_season_game_with_no_missing_value() {
    let out = tempfile::tempdir().expect("temp dir");
    let table = export_2024(out.path(), "v1");
    let mut reader = csv::Reader::from_path(&table).expect("table is CSV");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let mut expected = vec!["game_id", "date", "season"];
    expected.extend(FEATURE_SPEC.names);
    expected.push("home_win");
    assert_eq!(header, expected);

    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(
        rows.len(),
        2429,
        "MLB played 2,429 regular-season games in 2024"
    );
    for row in &rows {
        assert_eq!(&row[2], "2024");
        for value in row.iter().skip(3) {
            let parsed: f64 = value.parse().unwrap_or(f64::NAN);
            assert!(parsed.is_finite(), "game {} has value `{value}`", &row[0]);
        }
        assert!(matches!(&row[row.len() - 1], "0" | "1"));
    }
}

#[test]
fn export_refuses_a_season_that_is_not_in_the_data() {
    let output = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args(["features", "export", "--seasons", "1999"])
        .output()
        .expect("bullpen runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no regular-season games of [1999]"),
        "{stderr}"
    );
}

#[test]
fn export_v2_writes_the_teams_then_the_starters_as_the_store_computes_them() {
    let out = tempfile::tempdir().expect("temp dir");
    let table = out.path().join("2023.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args([
            "features",
            "export",
            "--seasons",
            "2023",
            "--version",
            "v2",
            "--output",
        ])
        .arg(&table)
        .status()
        .expect("bullpen runs");
    assert!(status.success());
    let mut reader = csv::Reader::from_path(&table).expect("table is CSV");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header[3..header.len() - 1], FEATURE_SPEC_V2.names[..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2430);

    // A game late in the season: both starters have starts behind them.
    let row = &rows[2000];
    let store = store();
    let index = store
        .games()
        .iter()
        .position(|game| game.id.as_str() == &row[0])
        .expect("the game is stored");
    let vector = store.vectors()[index];
    for (i, value) in vector.values()[FEATURE_COUNT..].iter().enumerate() {
        let written: f32 = row[3 + FEATURE_COUNT + i].parse().expect("a number");
        // Written as Rust prints an f32, so it reads back as the same bits.
        assert_eq!(
            written.to_bits(),
            value.to_bits(),
            "{}",
            FEATURE_SPEC_V2.names[FEATURE_COUNT + i]
        );
    }
    // Most starters of 2023 had started before (in the data since 2010).
    let starts = 3 + FEATURE_COUNT;
    assert_eq!(header[starts], "home_sp_starts");
    let veterans = rows.iter().filter(|row| &row[starts] != "0").count();
    assert!(
        veterans * 10 > rows.len() * 9,
        "{veterans} of {}",
        rows.len()
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_bullpen"))
        .current_dir(repo_path(""))
        .args(["features", "spec", "--version", "v9"])
        .output()
        .expect("bullpen runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("v1, v2"));
}
