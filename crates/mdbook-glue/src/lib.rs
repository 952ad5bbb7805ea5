//! Numbers glued into the book's pages from the runs that made them, as Jupyter Book's `glue`,
//! knitr's inline code and Quarto's inline expressions do.
//!
//! A chapter's run records the numbers its page quotes (`Session::record`) in
//! `book/figures/<chapter>/numbers.json`; `ci/bench NAME` writes `book/bench/NAME.json`. A page
//! names a number as `{{n:KEY}}` (a key of its own chapter's `numbers.json`) or
//! `{{n:SOURCE:KEY}}` (another chapter's, or `bench/NAME`, whose nested fields are joined with
//! dots: `ratios.lite0_forward_input_gradient`), optionally followed by `|FORMAT`:
//!
//! | format | 0.2317 | 1234.5 | meaning |
//! |---|---|---|---|
//! | (none) | `0.232` | `1234.5` | whole numbers as they are, others to three significant digits |
//! | `.N` | `.2` → `0.23` | `.0` → `1235` | N decimals (never `-0.00`) |
//! | `+.N` | `+0.23` | `+1234.5` | N decimals with the sign |
//! | `abs.N` | `0.23` | | the magnitude, N decimals (for "a loss that fell by …") |
//! | `%.N` | `23.2 %` | | a share, as a percentage with N decimals |
//! | `,` | | `1,235` | rounded to a whole number, thousands separated |
//! | `time` | | `21 min` | seconds as `12 s`, `7.6 min` or `1.2 h` |
//!
//! A word (a class name, the machine's processor) takes no format. An unknown key, source or
//! format is an error that names the page, and fails the book's build.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Every glued value, by source (`chapter-03-actmax`, `bench/accent`) and then by key.
#[derive(Default, Debug)]
pub struct Numbers {
    pub sources: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Numbers {
    /// Reads `<book>/figures/*/numbers.json` and `<book>/bench/*.json`.
    pub fn load(book: &Path) -> Result<Self> {
        let mut numbers = Numbers::default();
        let figures = book.join("figures");
        if let Ok(dirs) = std::fs::read_dir(&figures) {
            for dir in dirs.flatten() {
                let file = dir.path().join("numbers.json");
                if file.is_file() {
                    let name = dir.file_name().to_string_lossy().into_owned();
                    numbers.add(name, &file)?;
                }
            }
        }
        if let Ok(files) = std::fs::read_dir(book.join("bench")) {
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "json") {
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                    numbers.add(format!("bench/{stem}"), &path)?;
                }
            }
        }
        Ok(numbers)
    }

    fn add(&mut self, source: String, file: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
        let mut flat = BTreeMap::new();
        flatten("", &value, &mut flat);
        self.sources.insert(source, flat);
        Ok(())
    }
}

/// Nested objects become dotted keys; arrays are not glued.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Array(_) => {}
        _ => {
            out.insert(prefix.to_string(), value.clone());
        }
    }
}

/// Formats one value as the page asks (the module's table).
pub fn format(value: &Value, spec: &str) -> Result<String> {
    let x = match value {
        Value::String(s) if spec.is_empty() => return Ok(s.clone()),
        Value::Bool(b) if spec.is_empty() => return Ok(b.to_string()),
        Value::Number(n) => n.as_f64().context("not a number")?,
        _ => bail!("{value} takes no format '{spec}'"),
    };
    let decimals = |digits: &str| -> Result<usize> {
        digits.parse::<usize>().ok().filter(|d| *d <= 6).with_context(|| format!("unknown format '{spec}'"))
    };
    Ok(match spec {
        "" => {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                fixed(x, 0)
            } else {
                significant(x, 3)
            }
        }
        "," => thousands(x.round()),
        "time" => duration(x),
        _ => {
            if let Some(d) = spec.strip_prefix("+.") {
                let s = fixed(x, decimals(d)?);
                if s.starts_with('-') || s.trim_start_matches(['0', '.']).is_empty() {
                    s
                } else {
                    format!("+{s}")
                }
            } else if let Some(d) = spec.strip_prefix("abs.") {
                fixed(x.abs(), decimals(d)?)
            } else if let Some(d) = spec.strip_prefix("%.") {
                format!("{} %", fixed(100.0 * x, decimals(d)?))
            } else if let Some(d) = spec.strip_prefix('.') {
                fixed(x, decimals(d)?)
            } else {
                bail!("unknown format '{spec}' (.N, +.N, abs.N, %.N, ',' or time)")
            }
        }
    })
}

/// `x` with `d` decimals; a value that rounds to zero is written without a sign.
fn fixed(x: f64, d: usize) -> String {
    let s = format!("{x:.d$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `x` to `n` significant digits, without trailing zeros after the point.
fn significant(x: f64, n: i32) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let d = (n - 1 - magnitude).max(0) as usize;
    let s = fixed(x, d);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn thousands(x: f64) -> String {
    let digits = format!("{}", x.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{} s", seconds.round())
    } else if seconds < 5400.0 {
        let minutes = seconds / 60.0;
        if minutes < 10.0 {
            format!("{minutes:.1} min")
        } else {
            format!("{} min", minutes.round())
        }
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// Replaces every `{{n:…}}` in `text`, a page whose own numbers are `page_source`'s; records
/// each key used in `used`, and each reference it cannot resolve in `errors`.
pub fn substitute(
    text: &str,
    page_source: &str,
    numbers: &Numbers,
    used: &mut BTreeSet<(String, String)>,
    errors: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{n:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let Some(end) = after.find("}}") else {
            errors.push(format!("unclosed reference '{}'", &rest[start..rest.len().min(start + 40)]));
            out.push_str(&rest[start..]);
            return out;
        };
        let reference = after[..end].trim();
        let (name, spec) = reference.split_once('|').unwrap_or((reference, ""));
        let (source, key) = name.trim().rsplit_once(':').unwrap_or((page_source, name.trim()));
        match numbers.sources.get(source).map(|keys| keys.get(key)) {
            None => errors.push(format!("{{{{n:{reference}}}}}: no numbers from '{source}'")),
            Some(None) => errors.push(format!("{{{{n:{reference}}}}}: '{source}' recorded no '{key}'")),
            Some(Some(value)) => match format(value, spec.trim()) {
                Ok(s) => {
                    used.insert((source.to_string(), key.to_string()));
                    out.push_str(&s);
                    rest = &after[end + 2..];
                    continue;
                }
                Err(e) => errors.push(format!("{{{{n:{reference}}}}}: {e}")),
            },
        }
        // What cannot be resolved stays as written, so that a preview shows it.
        out.push_str(&rest[start..start + 4 + end + 2]);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs over the book mdBook hands a preprocessor (every chapter's `content`, whatever the
/// nesting), substituting in place. Returns the errors, each naming its page.
pub fn glue_book(book: &mut Value, numbers: &Numbers, used: &mut BTreeSet<(String, String)>) -> Vec<String> {
    let mut errors = Vec::new();
    walk(book, numbers, used, &mut errors);
    errors
}

fn walk(
    value: &mut Value,
    numbers: &Numbers,
    used: &mut BTreeSet<(String, String)>,
    errors: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            let path = map.get("path").and_then(Value::as_str).map(str::to_string);
            if let (Some(path), Some(Value::String(content))) = (path, map.get_mut("content")) {
                let source = Path::new(&path).file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let mut page_errors = Vec::new();
                *content = substitute(content, &source, numbers, used, &mut page_errors);
                errors.extend(page_errors.into_iter().map(|e| format!("{path}: {e}")));
            }
            for v in map.values_mut() {
                walk(v, numbers, used, errors);
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, numbers, used, errors);
            }
        }
        _ => {}
    }
}

/// The keys that no page used, `source:key`, but the machine's description (`run.cpu`,
/// `run.threads`), which every run records whether or not its page quotes it.
pub fn unused(numbers: &Numbers, used: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (source, keys) in &numbers.sources {
        for key in keys.keys() {
            let machine = key == "run.cpu" || key == "run.threads";
            let bench_meta = source.starts_with("bench/") && !(key == "ratio" || key.starts_with("ratios."));
            if !machine && !bench_meta && !used.contains(&(source.clone(), key.clone())) {
                out.push(format!("{source}:{key}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn numbers() -> Numbers {
        let mut n = Numbers::default();
        let mut flat = BTreeMap::new();
        flatten(
            "",
            &json!({"p": 0.2317, "loss": -85.444, "zero": -0.0001, "steps": 128, "class": "tiger cat",
                              "run": {"wall_s": 456.0}}),
            &mut flat,
        );
        n.sources.insert("chapter-99-test".into(), flat);
        let mut bench = BTreeMap::new();
        flatten("", &json!({"ratio": 0.54, "ratios": {"lite0": 1.05}, "date": "2026-12-07"}), &mut bench);
        n.sources.insert("bench/render".into(), bench);
        n
    }

    #[test]
    fn formats_as_the_page_asks() {
        let f = |v: Value, s: &str| format(&v, s).unwrap();
        assert_eq!(f(json!(0.2317), ""), "0.232");
        assert_eq!(f(json!(0.2317), ".2"), "0.23");
        assert_eq!(f(json!(0.2317), "%.1"), "23.2 %");
        assert_eq!(f(json!(0.2317), "+.2"), "+0.23");
        assert_eq!(f(json!(-33.44), "+.1"), "-33.4");
        assert_eq!(f(json!(-33.44), "abs.1"), "33.4");
        assert_eq!(f(json!(-0.0001), ".3"), "0.000");
        assert_eq!(f(json!(-0.0001), "+.3"), "0.000");
        assert_eq!(f(json!(128), ""), "128");
        assert_eq!(f(json!(2123.4), ","), "2,123");
        assert_eq!(f(json!(1234567), ","), "1,234,567");
        assert_eq!(f(json!(26.4), "time"), "26 s");
        assert_eq!(f(json!(456.0), "time"), "7.6 min");
        assert_eq!(f(json!(987.0), "time"), "16 min");
        assert_eq!(f(json!(7200.0), "time"), "2.0 h");
        assert_eq!(f(json!(1234.5678), ""), "1235");
        assert_eq!(f(json!(0.000123456), ""), "0.000123");
        assert_eq!(f(json!("tiger cat"), ""), "tiger cat");
        assert!(format(&json!("tiger cat"), ".2").is_err());
        assert!(format(&json!(1.0), "%").is_err());
        assert!(format(&json!(1.0), ".x").is_err());
    }

    #[test]
    fn substitutes_own_and_other_sources_and_names_what_is_missing() {
        let n = numbers();
        let mut used = BTreeSet::new();
        let mut errors = Vec::new();
        let text =
            "p = {{n:p|.2}}, {{n:steps}} steps in {{n:run.wall_s|time}}; ratio {{n:bench/render:ratio|.2}} \
                    ({{n:bench/render:ratios.lite0|.2}}), {{n:class}}.";
        let out = substitute(text, "chapter-99-test", &n, &mut used, &mut errors);
        assert_eq!(out, "p = 0.23, 128 steps in 7.6 min; ratio 0.54 (1.05), tiger cat.");
        assert!(errors.is_empty(), "{errors:?}");
        let out = substitute(
            "{{n:nope}} {{n:bench/x:ratio}} {{n:p|%}} {{n:p",
            "chapter-99-test",
            &n,
            &mut used,
            &mut errors,
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(out.starts_with("{{n:nope}} {{n:bench/x:ratio}} {{n:p|%}} "), "{out}");
        assert!(errors[0].contains("recorded no 'nope'"));
        assert!(errors[1].contains("no numbers from 'bench/x'"));
        assert!(errors[3].contains("unclosed"));
        assert!(out.ends_with("{{n:p"));
        let left = unused(&n, &used);
        assert_eq!(left, vec!["chapter-99-test:loss".to_string(), "chapter-99-test:zero".to_string()]);
    }

    #[test]
    fn walks_the_book_mdbook_hands_over() {
        let n = numbers();
        let mut book = json!({"items": [
            {"Chapter": {"name": "Test", "path": "chapter-99-test.md", "content": "{{n:steps}} steps",
                         "sub_items": [{"Chapter": {"name": "Sub", "path": "sub/page.md",
                                        "content": "{{n:chapter-99-test:p|.1}} and {{n:steps}}", "sub_items": []}}]}},
            "Separator"
        ]});
        let mut used = BTreeSet::new();
        let errors = glue_book(&mut book, &n, &mut used);
        assert_eq!(book["items"][0]["Chapter"]["content"], "128 steps");
        // The sub-page has no numbers of its own: its bare reference is an error.
        assert_eq!(book["items"][0]["Chapter"]["sub_items"][0]["Chapter"]["content"], "0.2 and {{n:steps}}");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("sub/page.md: "), "{errors:?}");
    }
}
