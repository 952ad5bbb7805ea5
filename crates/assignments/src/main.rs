//! Course assignments from the book's chapters.
//!
//! ```text
//! cargo run -p assignments -- list
//! cargo run -p assignments -- generate --chapters 1,2 --out ../course   # a student workspace
//! cargo run -p assignments -- generate --solutions --out ../answers    # the answer key
//! cargo run --release -p assignments -- check                         # the round trip (ci/assignments)
//! ```
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use assignments::{generate, read_manifest, Mode};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Course assignments built from the book's chapters")]
struct Cli {
    /// The manifest of the assignments
    #[arg(long, default_value_os_t = assignments::crate_dir().join("assignments.toml"))]
    manifest: PathBuf,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The assignments, their regions and points
    List,
    /// Writes a student workspace
    Generate {
        /// Chapters, by number or crate name [default: every chapter with an assignment]
        #[arg(long, value_delimiter = ',')]
        chapters: Vec<String>,
        /// The folder to write (replaced, but for a `target/` in it)
        #[arg(long)]
        out: PathBuf,
        /// Keep the solutions (an instructor's answer key)
        #[arg(long)]
        solutions: bool,
    },
    /// The round trip of every assignment: the student workspace compiles, its autograder gives
    /// 0 points on the stubs and full points on the solutions, and removing any one region
    /// fails a test
    Check {
        /// Where to build [default: target/assignments]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let manifest = read_manifest(&cli.manifest)?;
    let root = assignments::workspace_root();
    match cli.what {
        What::List => {
            for a in &manifest.assignment {
                println!(
                    "{} — {} ({} points): regions {}",
                    a.chapter,
                    a.title,
                    a.max_points(),
                    a.regions.join(", ")
                );
            }
            Ok(())
        }
        What::Generate { chapters, out, solutions } => {
            let mode = if solutions { Mode::Solutions } else { Mode::Stubs };
            let g = generate(&root, &manifest, &chapters, mode, &out)?;
            let points: u32 = g.assignments.iter().map(|a| a.max_points()).sum();
            println!(
                "wrote {} ({} assignment(s), {} region(s) {}, {points} points); HANDOUT.md says what to do",
                out.display(),
                g.assignments.len(),
                g.regions.len(),
                if solutions { "with their solutions" } else { "to write" }
            );
            Ok(())
        }
        What::Check { dir } => {
            check(&root, &manifest, &dir.unwrap_or_else(|| root.join("target/assignments")))
        }
    }
}

/// Where the check builds: `out` for the binaries, `build` for the intermediate artifacts.
struct Folders {
    out: PathBuf,
    build: PathBuf,
}

/// Runs a command in `dir` with the check's output folder; fails unless it succeeds. The
/// intermediate artifacts go to the book's own `target/` (Cargo's `build-dir`), so the
/// dependencies of the book's release build are reused rather than built a second time; the
/// binaries, which share names with the book's, go to `target.out` and never replace the book's.
/// (The students' own packages get their own hashes there: see `write_manifest_files`.)
fn run(dir: &Path, target: &Folders, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let status = Command::new("cargo")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target.out)
        .env("CARGO_BUILD_BUILD_DIR", &target.build)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    ensure!(status.success(), "`cargo {}` failed in {}", args.join(" "), dir.display());
    Ok(())
}

/// The autograder's `results.json`: (score, max, tests that passed, tests).
fn grade(
    dir: &Path,
    target: &Folders,
    name: &str,
    only: Option<&str>,
    stub: Option<&str>,
) -> Result<(f64, f64, usize, usize)> {
    let results = dir.join(format!("results-{name}.json"));
    let mut args = vec!["run", "--release", "--quiet", "-p", "grading", "--", "--results"];
    let path = results.to_string_lossy().into_owned();
    args.push(&path);
    if let Some(t) = only {
        args.extend(["--only", t]);
    }
    let env: Vec<(&str, &str)> = stub.map(|s| vec![("ASSIGNMENT_STUB", s)]).unwrap_or_default();
    run(dir, target, &args, &env)?;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&results)?)?;
    let tests = v["tests"].as_array().context("no tests in results.json")?;
    let passed = tests.iter().filter(|t| t["status"] == "passed").count();
    Ok((v["score"].as_f64().unwrap_or(-1.0), v["max_score"].as_f64().unwrap_or(-1.0), passed, tests.len()))
}

fn check(root: &Path, manifest: &assignments::Manifest, dir: &Path) -> Result<()> {
    // The book's own target folder, where its release build is (Cargo's rule: CARGO_TARGET_DIR,
    // else `target/` at the workspace root).
    let build = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(dir)?,
        None => root.join("target"),
    };
    let (ws, target) = (dir.join("workspace"), Folders { out: dir.join("target"), build });
    let started = std::time::Instant::now();
    // The students' workspace of every assignment: it builds, and every graded test fails.
    let g = generate(root, manifest, &[], Mode::Stubs, &ws)?;
    println!("== {} assignments, {} regions: the stubs", g.assignments.len(), g.regions.len());
    // Type-checked, every target (codegen comes with the graded runs, which build what they test).
    run(&ws, &target, &["check", "--release", "--quiet", "--workspace", "--all-targets"], &[])?;
    let (score, max, passed, n) = grade(&ws, &target, "stubs", None, None)?;
    println!("stubs: {score} / {max} points, {passed} of {n} tests passed");
    ensure!(
        score == 0.0 && passed == 0,
        "the stubs earn {score} points ({passed} tests pass): a test does not need its region"
    );
    // The solutions, each region behind a switch: full points, and each region's removal
    // alone fails at least one test of its assignment.
    generate(root, manifest, &[], Mode::Switches, &ws)?;
    let (score, max, passed, n) = grade(&ws, &target, "solutions", None, None)?;
    println!("solutions: {score} / {max} points, {passed} of {n} tests passed");
    ensure!(score == max && passed == n, "the solutions earn {score} of {max} points");
    let mut unnoticed = Vec::new();
    for a in &g.assignments {
        for r in &a.regions {
            let (score, max, passed, n) = grade(&ws, &target, r, Some(&a.tests), Some(r))?;
            println!("without `{r}`: {} scores {score} / {max} ({passed} of {n} tests pass)", a.chapter);
            if score == max {
                unnoticed.push(r.clone());
            }
        }
    }
    if !unnoticed.is_empty() {
        bail!("no test notices the removal of: {}", unnoticed.join(", "));
    }
    println!(
        "assignments: the round trip holds for all {} ({:.0} s)",
        g.assignments.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
