//! The autograder: runs each assignment's graded tests, scores them with the points of
//! `assignments.toml`, prints a table and writes Gradescope's `results.json`.
//!
//! ```text
//! cargo run --release -p grading                          # in a student workspace
//! cargo run --release -p grading -- --only chapter_01 --results out.json
//! ```
//!
//! It is one file with no dependency on the book, so that a student workspace holds it as
//! `grading/src/main.rs`; in the book's repository it grades the solutions themselves
//! (`cargo run -p assignments --bin autograde`).
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Manifest {
    assignment: Vec<Assignment>,
}

#[derive(Deserialize)]
struct Assignment {
    chapter: String,
    title: String,
    tests: String,
    points: BTreeMap<String, u32>,
}

/// One test in Gradescope's format.
#[derive(Serialize)]
struct TestResult {
    name: String,
    score: f64,
    max_score: f64,
    status: &'static str,
    output: String,
    visibility: &'static str,
}

/// Gradescope's `results.json`.
#[derive(Serialize)]
struct Results {
    score: f64,
    max_score: f64,
    execution_time: f64,
    output: String,
    tests: Vec<TestResult>,
}

struct Args {
    manifest: PathBuf,
    results: PathBuf,
    only: Vec<String>,
    timeout: Duration,
}

fn args() -> Result<Args> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        manifest: here.join("assignments.toml"),
        results: PathBuf::from("results.json"),
        only: Vec::new(),
        timeout: Duration::from_secs(1200),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--manifest" => a.manifest = PathBuf::from(value()?),
            "--results" => a.results = PathBuf::from(value()?),
            "--only" => a.only.extend(value()?.split(',').map(str::to_string)),
            "--timeout" => a.timeout = Duration::from_secs(value()?.parse().context("--timeout: seconds")?),
            "--help" | "-h" => {
                println!(
                    "autograde [--only chapter_01,chapter_02] [--results results.json] [--manifest assignments.toml] [--timeout 1200]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown flag {other}; see --help"),
        }
    }
    Ok(a)
}

/// Runs `cargo test` on one test file of this package: its combined output, and whether it
/// finished within `timeout`.
fn run_tests(file: &str, timeout: Duration) -> Result<(String, bool)> {
    let log = std::env::temp_dir().join(format!("autograde-{}-{file}.log", std::process::id()));
    let out = std::fs::File::create(&log)?;
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "test",
            "--release",
            "-p",
            env!("CARGO_PKG_NAME"),
            "--test",
            file,
            "--",
            "--test-threads=1",
            "--color=never",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("cannot run cargo")?;
    let start = Instant::now();
    let finished = loop {
        if child.try_wait()?.is_some() {
            break true;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    std::fs::File::open(&log)?.read_to_string(&mut text)?;
    let _ = std::fs::remove_file(&log);
    Ok((text, finished))
}

/// libtest's verdict for each test (`test NAME ... ok`), and each failure's message.
fn parse(output: &str) -> (BTreeMap<String, bool>, BTreeMap<String, String>) {
    let mut verdicts = BTreeMap::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
                match verdict.trim() {
                    "ok" => verdicts.insert(name.to_string(), true),
                    "FAILED" => verdicts.insert(name.to_string(), false),
                    _ => None,
                };
            }
        }
    }
    // Blocks `---- NAME stdout ----`, up to the next such line or the list of failures.
    let mut messages = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in output.lines() {
        let header = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----"));
        if header.is_some() || line.trim() == "failures:" {
            if let Some((name, body)) = current.take() {
                messages.insert(name, summarise(&body));
            }
        }
        match (header, &mut current) {
            (Some(name), _) => current = Some((name.to_string(), Vec::new())),
            (None, Some((_, body))) => body.push(line),
            _ => {}
        }
    }
    (verdicts, messages)
}

/// The panic message of a failed test, without the backtrace.
fn summarise(body: &[&str]) -> String {
    let start = body.iter().position(|l| l.contains("panicked at")).map_or(0, |i| i + 1);
    body[start..]
        .iter()
        .take_while(|l| !l.starts_with("note:") && !l.starts_with("stack backtrace") && !l.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first compiler errors of a run that did not build.
fn build_errors(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    match lines.iter().position(|l| l.starts_with("error")) {
        Some(i) => lines[i..].iter().take(12).copied().collect::<Vec<_>>().join("\n"),
        None => lines.iter().rev().take(12).rev().copied().collect::<Vec<_>>().join("\n"),
    }
}

fn main() -> Result<()> {
    let args = args()?;
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let manifest: Manifest = toml::from_str(&text).context("the assignments' manifest")?;
    let start = Instant::now();
    let (mut tests, mut score, mut max) = (Vec::new(), 0.0, 0.0);
    let mut table = String::new();
    for a in manifest.assignment.iter().filter(|a| args.only.is_empty() || args.only.contains(&a.tests)) {
        let (output, finished) = run_tests(&a.tests, args.timeout)?;
        let (verdicts, messages) = parse(&output);
        let (mut got, mut of) = (0.0, 0.0);
        let mut rows = String::new();
        for (name, &points) in &a.points {
            let points = f64::from(points);
            let (passed, message) = match verdicts.get(name) {
                Some(true) => (true, String::new()),
                Some(false) => (false, messages.get(name).cloned().unwrap_or_else(|| "failed".into())),
                None if !finished => {
                    (false, format!("the tests did not finish within {} s", args.timeout.as_secs()))
                }
                None if verdicts.is_empty() => {
                    (false, format!("the tests did not build:\n{}", build_errors(&output)))
                }
                None => (false, "the test did not run".into()),
            };
            let earned = if passed { points } else { 0.0 };
            let first = message.lines().next().unwrap_or_default();
            rows.push_str(&format!(
                "  {:<7} {name:<64} {earned:>4} / {points:<4} {first}\n",
                if passed { "ok" } else { "FAILED" }
            ));
            tests.push(TestResult {
                name: format!("{}: {name}", a.chapter),
                score: earned,
                max_score: points,
                status: if passed { "passed" } else { "failed" },
                output: message,
                visibility: "visible",
            });
            (got, of) = (got + earned, of + points);
        }
        table.push_str(&format!("{}: {} — {got} / {of}\n{rows}", a.chapter, a.title));
        (score, max) = (score + got, max + of);
    }
    let summary = format!("total: {score} / {max} points");
    print!("{table}");
    println!("{summary}");
    let results = Results {
        score,
        max_score: max,
        execution_time: start.elapsed().as_secs_f64(),
        output: table,
        tests,
    };
    write(&args.results, &serde_json::to_string_pretty(&results)?)?;
    println!("results written to {}", args.results.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
