//! Course assignments built from the book's chapters.
//!
//! Chapter and library code marks **solution regions**:
//!
//! ```text
//! // ANCHOR: solution-<id> <hint for the student>
//! …the code a student writes…
//! // ANCHOR_END: solution-<id>
//! ```
//!
//! They are mdBook anchors, so the rendered book never shows the markers (mdBook drops every
//! anchor line from an included listing). `assignments.toml` groups regions into one
//! assignment per chapter, with the test file that grades it and the points of each test.
//! [`generate`] writes a **student workspace**: the library and the chapters asked for, every
//! region of their assignments replaced by `todo!("<hint>")`, a `grading` crate with the
//! visible tests and the autograder (`src/bin/autograde.rs` of this crate), a handout, a
//! GitHub Classroom workflow and Gradescope's scripts.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// `assignments.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub assignment: Vec<Assignment>,
}

/// One chapter's assignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    /// The chapter crate, `chapter-NN-slug`.
    pub chapter: String,
    pub title: String,
    pub summary: String,
    /// The solution regions a student writes.
    pub regions: Vec<String>,
    /// The test file that grades it: `tests/<tests>.rs`.
    pub tests: String,
    /// Points of each test of that file.
    pub points: BTreeMap<String, u32>,
}

impl Assignment {
    pub fn max_points(&self) -> u32 {
        self.points.values().sum()
    }
}

/// A solution region found in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    /// Path relative to the workspace root.
    pub file: PathBuf,
    /// Lines (0-based) of the two markers.
    pub start: usize,
    pub end: usize,
    pub indent: String,
    pub hint: String,
}

/// What the generator does with the regions of the assignments asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each region's code replaced by `todo!("<hint>")`: what students get.
    Stubs,
    /// The solutions as they are: an instructor's answer key.
    Solutions,
    /// The solutions, each region preceded by `if ASSIGNMENT_STUB == "<id>" { todo!() }`, so
    /// that one build can check that every region has a test that notices its removal.
    Switches,
}

pub const START: &str = "// ANCHOR: solution-";
pub const END: &str = "// ANCHOR_END: solution-";

/// This crate's folder.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The book's workspace root.
pub fn workspace_root() -> PathBuf {
    crate_dir().join("../..").canonicalize().unwrap_or_else(|_| crate_dir().join("../.."))
}

pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let m: Manifest =
        toml::from_str(&text).with_context(|| format!("{} is not a valid manifest", path.display()))?;
    Ok(m)
}

/// The solution regions of one file's text.
pub fn regions_in(file: &Path, text: &str) -> Result<Vec<Region>> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let at = || format!("{}:{}", file.display(), i + 1);
        if let Some(rest) = t.strip_prefix(START) {
            ensure!(open.is_none(), "{}: a solution region starts inside another", at());
            let (id, hint) = rest.split_once(' ').unwrap_or((rest, ""));
            ensure!(!hint.trim().is_empty(), "{}: solution region `{id}` carries no hint", at());
            let indent = line[..line.len() - t.len()].to_string();
            open = Some((id.to_string(), i, indent, hint.trim().to_string()));
        } else if let Some(rest) = t.strip_prefix(END) {
            let (id, start, indent, hint) =
                open.take().with_context(|| format!("{}: an end without a start", at()))?;
            ensure!(rest.trim() == id, "{}: region `{id}` ends as `{}`", at(), rest.trim());
            ensure!(i > start + 1, "{}: region `{id}` is empty", at());
            out.push(Region { id, file: file.to_path_buf(), start, end: i, indent, hint });
        }
    }
    if let Some((id, start, ..)) = open {
        bail!("{}:{}: region `{id}` is never closed", file.display(), start + 1);
    }
    Ok(out)
}

/// The files of the workspace that git tracks (what a clone has), relative to `root`.
pub fn tracked_files(root: &Path) -> Result<Vec<PathBuf>> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .context("cannot run git: the generator lists the files of a git checkout")?;
    ensure!(out.status.success(), "git ls-files failed in {}", root.display());
    Ok(out
        .stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .collect())
}

/// Every solution region of the workspace's Rust sources.
pub fn all_regions(root: &Path, files: &[PathBuf]) -> Result<Vec<Region>> {
    let mut regions = Vec::new();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let text =
            std::fs::read_to_string(root.join(f)).with_context(|| format!("cannot read {}", f.display()))?;
        if text.contains(START) {
            regions.extend(regions_in(f, &text)?);
        }
    }
    let mut seen = BTreeSet::new();
    for r in &regions {
        ensure!(seen.insert(&r.id), "solution region `{}` is marked twice", r.id);
    }
    Ok(regions)
}

/// Checks the manifest against the sources and the tests: every region it names exists and
/// belongs to one assignment, every marked region is in an assignment, every test it scores
/// exists in its test file and every test of the file is scored.
pub fn validate(manifest: &Manifest, regions: &[Region], tests_dir: &Path) -> Result<()> {
    let ids: BTreeSet<&str> = regions.iter().map(|r| r.id.as_str()).collect();
    let mut claimed = BTreeSet::new();
    for a in &manifest.assignment {
        for r in &a.regions {
            ensure!(
                ids.contains(r.as_str()),
                "{}: no solution region `{r}` is marked in the code",
                a.chapter
            );
            ensure!(claimed.insert(r.as_str()), "region `{r}` belongs to two assignments");
        }
        let file = tests_dir.join(format!("{}.rs", a.tests));
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("{}: no test file {}", a.chapter, file.display()))?;
        let found = test_names(&text);
        for t in a.points.keys() {
            ensure!(
                found.contains(t),
                "{}: the manifest scores `{t}`, which {} does not define",
                a.chapter,
                file.display()
            );
        }
        for t in &found {
            ensure!(
                a.points.contains_key(t),
                "{}: test `{t}` of {} has no points",
                a.chapter,
                file.display()
            );
        }
    }
    if let Some(r) = ids.iter().find(|id| !claimed.contains(*id)) {
        bail!("solution region `{r}` belongs to no assignment of the manifest");
    }
    Ok(())
}

/// The `#[test]` functions of a test file.
pub fn test_names(text: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut names = BTreeSet::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() == "#[test]" {
            if let Some(next) = lines.get(i + 1) {
                if let Some(rest) = next.trim().strip_prefix("fn ") {
                    names.insert(rest.split('(').next().unwrap_or_default().to_string());
                }
            }
        }
    }
    names
}

/// `text` of a file with its `regions` (of the assignments asked for) rewritten for `mode`.
pub fn rewrite(text: &str, regions: &[&Region], mode: Mode) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        match regions.iter().find(|r| r.start == i) {
            Some(r) if mode != Mode::Solutions => {
                out.push(lines[i].to_string());
                let hint =
                    r.hint.replace('\\', "\\\\").replace('"', "\\\"").replace('{', "{{").replace('}', "}}");
                match mode {
                    Mode::Stubs => {
                        out.push(format!("{}::std::todo!(\"{hint}\");", r.indent));
                        i = r.end;
                        continue;
                    }
                    _ => out.push(format!(
                        "{}if ::std::env::var(\"ASSIGNMENT_STUB\").as_deref() == Ok(\"{}\") {{ ::std::todo!(\"{hint}\") }}",
                        r.indent, r.id
                    )),
                }
            }
            _ => out.push(lines[i].to_string()),
        }
        i += 1;
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// The library's root with the warnings that unwritten regions cause turned off: code after a
/// `todo!` is unreachable and the values it would have used are unused until the student writes
/// it.
fn quiet_stubs(lib_rs: &str) -> String {
    let docs = lib_rs.lines().take_while(|l| l.starts_with("//!")).count();
    let mut lines: Vec<&str> = lib_rs.lines().collect();
    let allow = "\n// The assignments' todo!s leave code unreachable and values unused until they are written.\n#![allow(unreachable_code, unused_variables, unused_mut, unused_assignments, unused_imports, dead_code)]";
    lines.insert(docs, allow);
    lines.join("\n") + "\n"
}

/// The fixtures a test file reads (`fixture("name.json")`).
fn fixtures_of(text: &str) -> Vec<String> {
    text.split("fixture(\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_string).collect()
}

/// A chapter page's `## Exercises` section.
fn exercises(root: &Path, chapter: &str) -> Option<String> {
    let page = std::fs::read_to_string(root.join("book").join(format!("{chapter}.md"))).ok()?;
    let start = page.find("## Exercises")?;
    let rest = &page[start + "## Exercises".len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    // The page's note on this very assignment is not an exercise of its own.
    let end = rest[..end].find("**Graded assignment**").unwrap_or(end);
    Some(rest[..end].trim().to_string())
}

/// What [`generate`] wrote.
pub struct Generated {
    pub assignments: Vec<Assignment>,
    pub regions: Vec<Region>,
}

/// Writes a student workspace for the assignments of `chapters` (every chapter when empty)
/// into `out`, whose previous contents are replaced (a `target/` folder in it is kept).
pub fn generate(
    root: &Path,
    manifest: &Manifest,
    chapters: &[String],
    mode: Mode,
    out: &Path,
) -> Result<Generated> {
    let files = tracked_files(root)?;
    let regions = all_regions(root, &files)?;
    let tests_dir = crate_dir().join("tests");
    validate(manifest, &regions, &tests_dir)?;
    let wanted: Vec<Assignment> = if chapters.is_empty() {
        manifest.assignment.clone()
    } else {
        let mut picked = Vec::new();
        for c in chapters {
            let a = manifest
                .assignment
                .iter()
                .find(|a| {
                    a.chapter == *c
                        || a.chapter.starts_with(&format!("chapter-{c:0>2}-"))
                        || a.chapter.starts_with(&format!("{c}-"))
                })
                .with_context(|| {
                    let names: Vec<&str> = manifest.assignment.iter().map(|a| a.chapter.as_str()).collect();
                    format!("no assignment for chapter `{c}`; there are: {}", names.join(", "))
                })?;
            picked.push(a.clone());
        }
        picked
    };
    let ids: BTreeSet<&str> = wanted.iter().flat_map(|a| a.regions.iter().map(String::as_str)).collect();
    let chosen: Vec<&Region> = regions.iter().filter(|r| ids.contains(r.id.as_str())).collect();

    // A fresh tree, keeping a build folder; only an empty folder or one this command wrote
    // (it has a handout) is emptied.
    if out.exists() {
        let mut entries = std::fs::read_dir(out)?.peekable();
        ensure!(
            entries.peek().is_none() || out.join("HANDOUT.md").is_file(),
            "{} is neither empty nor a workspace made by this command: choose another --out",
            out.display()
        );
        for entry in std::fs::read_dir(out)? {
            let p = entry?.path();
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
    }
    std::fs::create_dir_all(out)?;
    let mut chapters_kept: BTreeSet<String> = wanted.iter().map(|a| a.chapter.clone()).collect();
    // A chapter that uses another chapter's library (chapter 8 draws beside chapter 4's units)
    // brings that chapter along.
    let mut queue: Vec<String> = chapters_kept.iter().cloned().collect();
    while let Some(c) = queue.pop() {
        for dep in chapter_dependencies(root, &c)? {
            if chapters_kept.insert(dep.clone()) {
                queue.push(dep);
            }
        }
    }
    let keep = |f: &Path| -> bool {
        let s = f.to_string_lossy();
        if SHARED.iter().any(|c| {
            s.starts_with(&format!("crates/{c}/tests/")) || s.starts_with(&format!("crates/{c}/benches/"))
        }) {
            return false;
        }
        // The book's own tests stay behind (they read the library's fixtures and helpers); the
        // students' tests are the grading crate's.
        if let Some(rest) = s.strip_prefix("chapters/") {
            return chapters_kept
                .iter()
                .any(|c| rest.starts_with(&format!("{c}/")) && !rest.starts_with(&format!("{c}/tests/")));
        }
        SHARED.iter().any(|c| s.starts_with(&format!("crates/{c}/")))
            || s.starts_with("assets/")
            || s.starts_with("vendor/")
            || ["Cargo.lock", "rustfmt.toml"].contains(&s.as_ref())
    };
    for f in files.iter().filter(|f| keep(f)) {
        let dest = out.join(f);
        std::fs::create_dir_all(dest.parent().expect("a file has a folder"))?;
        let mine: Vec<&Region> = chosen.iter().copied().filter(|r| &r.file == f).collect();
        // A library with solution regions (the shared one, or a chapter's own) tolerates the
        // warnings that todo!s cause.
        let library = SHARED.iter().any(|c| f.as_path() == Path::new("crates").join(c).join("src/lib.rs"))
            || (f.starts_with("chapters") && f.ends_with("src/lib.rs") && {
                let folder = f.parent().expect("src");
                chosen.iter().any(|r| r.file.starts_with(folder))
            });
        if mode == Mode::Stubs && library {
            std::fs::write(&dest, quiet_stubs(&std::fs::read_to_string(root.join(f))?))?;
        } else if mine.is_empty() {
            copy_keeping_time(&root.join(f), &dest)
                .with_context(|| format!("cannot copy {}", f.display()))?;
        } else {
            let text = std::fs::read_to_string(root.join(f))?;
            std::fs::write(&dest, rewrite(&text, &mine, mode))?;
        }
    }
    write_manifest_files(root, out, &wanted, &chapters_kept)?;
    write_grading(root, out, &wanted, &chapters_kept)?;
    write_handout(root, out, &wanted, &chosen, mode)?;
    write_classroom(out, &wanted)?;
    Ok(Generated { assignments: wanted, regions: chosen.into_iter().cloned().collect() })
}

/// The shared crates, layer by layer, that every student workspace holds: the kernels, the zoo
/// and the engine.
const SHARED: [&str; 3] = ["vision-interp-kernels", "vision-interp-zoo", "vision-interp"];

/// The chapters whose libraries chapter `chapter` depends on (path dependencies in `chapters/`).
fn chapter_dependencies(root: &Path, chapter: &str) -> Result<Vec<String>> {
    let path = root.join("chapters").join(chapter).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let deps = doc.get("dependencies").and_then(|d| d.as_table()).into_iter().flatten();
    Ok(deps
        .filter_map(|(_, d)| d.get("path")?.as_str()?.strip_prefix("../").map(str::to_owned))
        .filter(|name| name.starts_with("chapter-"))
        .collect())
}

/// Copies a file and gives the copy the original's modification time, so that Cargo, which
/// judges a path dependency fresh by its files' times, sees an unchanged copy (the vendored
/// `gemm-common`) as the build it already has.
fn copy_keeping_time(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)?;
    let modified = std::fs::metadata(from)?.modified()?;
    std::fs::File::options().write(true).open(to)?.set_modified(modified)?;
    Ok(())
}

/// The workspace's `Cargo.toml`: the book's, with its members cut down to the library, the
/// chapters asked for and the grading crate.
fn write_manifest_files(
    root: &Path,
    out: &Path,
    wanted: &[Assignment],
    chapters: &BTreeSet<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let mut doc: toml::Table = toml::from_str(&text).context("the book's Cargo.toml")?;
    let ws = doc.get_mut("workspace").and_then(|w| w.as_table_mut()).context("no [workspace]")?;
    let mut members: Vec<toml::Value> =
        SHARED.iter().map(|c| toml::Value::from(format!("crates/{c}"))).collect();
    members.extend(chapters.iter().map(|c| toml::Value::from(format!("chapters/{c}"))));
    members.push("grading".into());
    ws.insert("members".into(), toml::Value::Array(members));
    // Students' code is built with its arithmetic and index checks on, even in release. (The
    // setting also gives these packages their own build hashes, so `assignments check` can
    // share the book's build folder for the dependencies without mixing up the two copies.)
    let mut checked = toml::Table::new();
    checked.insert("debug-assertions".into(), true.into());
    checked.insert("overflow-checks".into(), true.into());
    let own =
        SHARED.iter().map(|c| c.to_string()).chain(["grading".to_string()]).chain(chapters.iter().cloned());
    let packages: toml::Table = own.map(|p| (p, toml::Value::Table(checked.clone()))).collect();
    let release = doc
        .entry("profile")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .context("[profile] is not a table")?
        .entry("release")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .context("[profile.release] is not a table")?;
    release.insert("package".into(), toml::Value::Table(packages));
    let header = format!(
        "# A student workspace of the Vision Interpretability book ({} assignment(s)), made by\n# `cargo run -p assignments -- generate`. HANDOUT.md says what to do. Your code is built\n# with arithmetic and index checks on, in release too ([profile.release.package]).\n\n",
        wanted.len()
    );
    std::fs::write(out.join("Cargo.toml"), header + &toml::to_string(&doc)?)?;
    std::fs::write(out.join(".gitignore"), "/target\nresults.json\n")?;
    Ok(())
}

/// The `grading` crate: the graded tests, their fixtures, the manifest of the assignments
/// and the autograder.
fn write_grading(root: &Path, out: &Path, wanted: &[Assignment], chapters: &BTreeSet<String>) -> Result<()> {
    let g = out.join("grading");
    std::fs::create_dir_all(g.join("tests/common"))?;
    std::fs::create_dir_all(g.join("src"))?;
    std::fs::create_dir_all(g.join("fixtures"))?;
    // The tests reach a chapter's own code through its library.
    let libraries: String = chapters
        .iter()
        .filter(|c| root.join("chapters").join(c).join("src/lib.rs").is_file())
        .map(|c| format!("{c} = {{ path = \"../chapters/{c}\" }}\n"))
        .collect();
    std::fs::write(
        g.join("Cargo.toml"),
        "[package]\nname = \"grading\"\ndescription = \"The graded tests of the assignments, and the autograder\"\n\
         version.workspace = true\nedition.workspace = true\nlicense.workspace = true\npublish = false\n\n\
         [[bin]]\nname = \"autograde\"\npath = \"src/main.rs\"\n\n\
         [dependencies]\nanyhow.workspace = true\nserde.workspace = true\nserde_json.workspace = true\ntoml.workspace = true\n\n\
         [dev-dependencies]\nvision-interp.workspace = true\ncandle-core.workspace = true\n"
            .to_string()
            + &libraries,
    )?;
    let src = crate_dir();
    std::fs::copy(src.join("src/bin/autograde.rs"), g.join("src/main.rs"))?;
    std::fs::copy(src.join("tests/common/mod.rs"), g.join("tests/common/mod.rs"))?;
    let fixtures = src.join("../vision-interp/tests/fixtures");
    for a in wanted {
        let name = format!("{}.rs", a.tests);
        let text = std::fs::read_to_string(src.join("tests").join(&name))?;
        for f in fixtures_of(&text) {
            std::fs::copy(fixtures.join(&f), g.join("fixtures").join(&f))
                .with_context(|| format!("fixture {f}"))?;
        }
        std::fs::write(g.join("tests").join(&name), text)?;
    }
    let manifest = Manifest { assignment: wanted.to_vec() };
    std::fs::write(
        g.join("assignments.toml"),
        format!(
            "# The assignments of this workspace and the points of each test.\n\n{}",
            toml::to_string(&manifest)?
        ),
    )?;
    Ok(())
}

/// `HANDOUT.md` and `README.md`.
fn write_handout(
    root: &Path,
    out: &Path,
    wanted: &[Assignment],
    regions: &[&Region],
    mode: Mode,
) -> Result<()> {
    use std::fmt::Write;
    let total: u32 = wanted.iter().map(Assignment::max_points).sum();
    let mut h = String::new();
    let _ = writeln!(h, "# Handout: {} assignment(s), {total} points\n", wanted.len());
    let _ = writeln!(
        h,
        "Each assignment is a piece of a chapter's code that you write. The places are marked in the code by a\n\
         `// ANCHOR: solution-…` line and a `todo!(\"…\")` that says what to write; replace the `todo!` with your\n\
         code and keep the marker lines. Read the chapter's page in the book first: it explains the idea and\n\
         shows the rest of the code.\n\n\
         ```sh\n\
         cargo test --release -p grading                     # every visible test\n\
         cargo test --release -p grading --test chapter_01   # one assignment's tests\n\
         cargo run --release -p grading                      # your score, as the autograder computes it\n\
         cargo run --release -p chapter-01-cnn-basics -- --quick   # a chapter, once its pieces are written\n\
         ```\n\n\
         The first build takes a few minutes. The autograder runs the same tests, prints a table and writes\n\
         `results.json` (Gradescope's format)."
    );
    if mode != Mode::Stubs {
        let _ = writeln!(h, "\n**This copy holds the solutions** (an instructor's answer key).");
    }
    for a in wanted {
        let _ = writeln!(h, "\n## {}: {} ({} points)\n\n{}\n", a.chapter, a.title, a.max_points(), a.summary);
        let _ = writeln!(h, "What to write:\n");
        for id in &a.regions {
            if let Some(r) = regions.iter().find(|r| &r.id == id) {
                // The marker's line in the file as written (a region above it may have shrunk).
                let text = std::fs::read_to_string(out.join(&r.file)).unwrap_or_default();
                let marker = format!("{START}{}", r.id);
                let line = text.lines().position(|l| l.trim_start().starts_with(&marker)).unwrap_or(r.start);
                let _ = writeln!(
                    h,
                    "- `{}`, line {} (`solution-{}`): {}",
                    r.file.display(),
                    line + 1,
                    r.id,
                    r.hint
                );
            }
        }
        let _ = writeln!(h, "\nTests (`cargo test --release -p grading --test {}`):\n", a.tests);
        for (t, p) in &a.points {
            let _ = writeln!(h, "- `{t}`: {p} point(s)");
        }
        if let Some(ex) = exercises(root, &a.chapter) {
            let _ = writeln!(h, "\nFurther exercises from the chapter's page (not graded):\n\n{ex}");
        }
    }
    std::fs::write(out.join("HANDOUT.md"), h)?;
    let readme = format!(
        "# Vision Interpretability: assignments\n\n\
         A workspace of the book's library and chapters with pieces left for you to write.\n\
         `HANDOUT.md` says which, and how they are graded ({total} points in all).\n\n\
         Needs Rust 1.85 or later and a C compiler; everything runs offline on a CPU.\n"
    );
    std::fs::write(out.join("README.md"), readme)?;
    Ok(())
}

/// A GitHub Classroom autograding workflow (one graded step per test) and Gradescope's
/// `setup.sh` and `run_autograder`.
fn write_classroom(out: &Path, wanted: &[Assignment]) -> Result<()> {
    use std::fmt::Write;
    let mut steps = String::new();
    let mut runners = Vec::new();
    let mut env = String::new();
    for a in wanted {
        for (t, p) in &a.points {
            let id = format!("{}-{}", a.tests, t).replace('_', "-");
            let _ = write!(
                steps,
                "      - name: {t}\n        id: {id}\n        uses: classroom-resources/autograding-command-grader@v1\n        with:\n          test-name: {t}\n          setup-command: ''\n          command: cargo test --release -p grading --test {} -- --exact {t}\n          timeout: 30\n          max-score: {p}\n",
                a.tests
            );
            let _ = writeln!(
                env,
                "          {}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"",
                id.to_uppercase()
            );
            runners.push(id);
        }
    }
    let workflow = format!(
        "# GitHub Classroom's autograding: one graded step per test, then the report.\n\
         name: Autograding Tests\n\
         on: [push, repository_dispatch, workflow_dispatch]\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n    if: github.actor != 'github-classroom[bot]'\n    steps:\n\
         \x20     - uses: actions/checkout@v6\n\
         \x20     - name: Build the tests once\n        run: cargo test --release -p grading --no-run\n\
         {steps}\
         \x20     - name: Autograding Reporter\n        uses: classroom-resources/autograding-grading-reporter@v1\n        env:\n{env}\
         \x20       with:\n          runners: {}\n",
        runners.join(",")
    );
    std::fs::create_dir_all(out.join(".github/workflows"))?;
    std::fs::write(out.join(".github/workflows/classroom.yml"), workflow)?;
    std::fs::create_dir_all(out.join("gradescope"))?;
    std::fs::write(
        out.join("gradescope/setup.sh"),
        "#!/usr/bin/env bash\n# Gradescope's setup: a Rust toolchain and a first build of the tests.\nset -euo pipefail\n\
         apt-get update && apt-get install -y build-essential curl\n\
         curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal\n\
         cd /autograder/source && ~/.cargo/bin/cargo test --release -p grading --no-run\n",
    )?;
    std::fs::write(
        out.join("gradescope/run_autograder"),
        "#!/usr/bin/env bash\n# Gradescope's grading: the student's code over this workspace, then the autograder.\nset -euo pipefail\n\
         for d in crates chapters; do [ -d /autograder/submission/$d ] && cp -r /autograder/submission/$d /autograder/source/; done\n\
         cd /autograder/source\n\
         ~/.cargo/bin/cargo run --release -p grading -- --results /autograder/results/results.json\n",
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["setup.sh", "run_autograder"] {
            std::fs::set_permissions(out.join("gradescope").join(f), std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "fn f(x: usize) -> usize {\n    let y = x + 1;\n    // ANCHOR: solution-twice Return {y} \"doubled\"\n    y * 2\n    // ANCHOR_END: solution-twice\n}\n";

    #[test]
    fn a_region_is_found_with_its_indent_and_hint() {
        let r = regions_in(Path::new("f.rs"), CODE).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].id.as_str(), r[0].start, r[0].end, r[0].indent.as_str()), ("twice", 2, 4, "    "));
        assert_eq!(r[0].hint, "Return {y} \"doubled\"");
    }

    #[test]
    fn stubs_switches_and_solutions_rewrite_as_they_should() {
        let r = regions_in(Path::new("f.rs"), CODE).unwrap();
        let refs: Vec<&Region> = r.iter().collect();
        let stub = rewrite(CODE, &refs, Mode::Stubs);
        // Braces are doubled for the format string, quotes escaped; the markers stay.
        assert!(stub.contains("    ::std::todo!(\"Return {{y}} \\\"doubled\\\"\");\n"), "{stub}");
        assert!(!stub.contains("y * 2") && stub.contains("ANCHOR_END: solution-twice"), "{stub}");
        let switch = rewrite(CODE, &refs, Mode::Switches);
        assert!(
            switch.contains("Ok(\"twice\") { ::std::todo!(") && switch.contains("    y * 2\n"),
            "{switch}"
        );
        assert_eq!(rewrite(CODE, &refs, Mode::Solutions), CODE);
    }

    #[test]
    fn malformed_regions_are_refused() {
        let cases = [
            ("// ANCHOR: solution-a hint\nx\n", "never closed"),
            ("// ANCHOR: solution-a\nx\n// ANCHOR_END: solution-a\n", "carries no hint"),
            ("// ANCHOR: solution-a h\n// ANCHOR: solution-b h\n", "inside another"),
            ("// ANCHOR: solution-a h\nx\n// ANCHOR_END: solution-b\n", "ends as `b`"),
            ("// ANCHOR_END: solution-a\n", "an end without a start"),
            ("// ANCHOR: solution-a h\n// ANCHOR_END: solution-a\n", "is empty"),
        ];
        for (text, want) in cases {
            let e = regions_in(Path::new("g.rs"), text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_manifest_must_match_the_code_and_the_tests() {
        let dir = std::env::temp_dir().join(format!("assignments-validate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.rs"), "#[test]\nfn scored() {}\n\n#[test]\nfn unscored() {}\n").unwrap();
        let regions = regions_in(Path::new("f.rs"), CODE).unwrap();
        let assignment = |regions: &[&str], points: &[&str]| Manifest {
            assignment: vec![Assignment {
                chapter: "chapter-01-x".into(),
                title: "t".into(),
                summary: "s".into(),
                regions: regions.iter().map(|r| r.to_string()).collect(),
                tests: "t".into(),
                points: points.iter().map(|p| (p.to_string(), 1)).collect(),
            }],
        };
        let e = |m: Manifest| validate(&m, &regions, &dir).unwrap_err().to_string();
        assert!(e(assignment(&["twice"], &["scored"])).contains("test `unscored`"));
        assert!(e(assignment(&["twice"], &["scored", "unscored", "gone"])).contains("does not define"));
        assert!(e(assignment(&["thrice"], &["scored", "unscored"])).contains("no solution region `thrice`"));
        assert!(e(assignment(&[], &["scored", "unscored"])).contains("belongs to no assignment"));
        validate(&assignment(&["twice"], &["scored", "unscored"]), &regions, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
