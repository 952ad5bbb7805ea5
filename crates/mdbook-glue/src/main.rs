//! `mdbook-glue`: the book's preprocessor (see the library's documentation for the syntax).
//! mdBook asks `mdbook-glue supports RENDERER`, then hands `[context, book]` on standard input
//! and reads the book back on standard output. The book is walked as JSON, so the
//! preprocessor depends on mdBook's format and not on its crates.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mdbook_glue::{glue_book, unused, Numbers};
use serde_json::Value;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("supports") {
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mdbook-glue: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("cannot read mdBook's input")?;
    let mut pair: Vec<Value> =
        serde_json::from_str(&input).context("mdBook's input is not [context, book]")?;
    anyhow::ensure!(pair.len() == 2, "mdBook's input is not [context, book]");
    let mut book = pair.pop().unwrap_or_default();
    let context = &pair[0];
    let root = PathBuf::from(context["root"].as_str().unwrap_or("."));
    let src = context["config"]["book"]["src"].as_str().unwrap_or("src");
    let numbers = Numbers::load(&root.join(src))?;
    let mut used = BTreeSet::new();
    let errors = glue_book(&mut book, &numbers, &mut used);
    for e in &errors {
        eprintln!("mdbook-glue: error: {e}");
    }
    let left = unused(&numbers, &used);
    if !left.is_empty() {
        eprintln!("mdbook-glue: {} recorded number(s) no page uses: {}", left.len(), left.join(", "));
    }
    // A page in progress can be previewed with MDBOOK_GLUE_ALLOW_MISSING=1 (its unknown
    // references are shown as they are written); ci/book never sets it.
    if !errors.is_empty() && std::env::var_os("MDBOOK_GLUE_ALLOW_MISSING").is_none() {
        return Ok(false);
    }
    serde_json::to_writer(std::io::stdout().lock(), &book)?;
    Ok(true)
}
