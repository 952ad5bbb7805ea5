//! What one benchmark run measured, as `book/bench/NAME.json` (NAME: the subcommand), the file
//! the book's pages glue their speed numbers from (`{{n:bench/NAME:ratios.ROW|.2}}`).
//!
//! Every row of every printed table is a row of the report, named `TABLE` for this book's row
//! and `TABLE_WHAT` for the others (`TABLE_peer`, `TABLE_candle`, …), so that a name does not
//! change when a package's version does:
//!
//! - `ratio`: the headline, this book's time over the peer's, measured in the same run;
//! - `ratios`: every row's time over its table's reference row (the peer's, or Candle's own
//!   kernel for `bench gan`'s layers); below 1, this book is faster;
//! - `seconds`: every row's seconds per operation (per view for `bench scan`), and `ms` the
//!   same in milliseconds (a page's format cannot scale a value);
//! - `rates`: the throughput column as printed (`rate_units` says per what);
//! - `extra`: what else the tables print (relative errors, iterations, views, peak memory);
//! - `peer`: the packages of the peer, as it reports them; `cpu`, `threads`, `date` (UTC) and
//!   `args`, the flags that repeat the run (`ci/bench ARGS`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::Timing;

#[derive(Serialize, Default, Debug)]
pub struct Report {
    /// The headline ratio (None until a peer is measured)
    pub ratio: Option<f64>,
    pub ratios: BTreeMap<String, f64>,
    pub seconds: BTreeMap<String, f64>,
    pub ms: BTreeMap<String, f64>,
    pub rates: BTreeMap<String, f64>,
    pub rate_units: BTreeMap<String, String>,
    pub extra: BTreeMap<String, f64>,
    pub peer: BTreeMap<String, String>,
    pub cpu: String,
    pub threads: usize,
    pub date: String,
    pub args: String,
    /// The row whose ratio is the headline (the first ratio recorded, unless set)
    #[serde(skip)]
    headline: Option<String>,
}

impl Report {
    pub fn new(threads: usize, args: &[String]) -> Self {
        Report {
            cpu: cpu_model(),
            threads,
            date: utc_date(now_s()),
            args: args.join(" "),
            ..Default::default()
        }
    }

    /// Records one printed table: `rows[0]` is this book's (named `table`), `rows[1]` the
    /// reference the ratios divide by; every other row is `table_<its key>`.
    pub fn table(&mut self, table: &str, unit: &str, per_op: f64, rows: &[Timing]) {
        let reference = rows.get(1).map(|r| r.seconds);
        for (i, r) in rows.iter().enumerate() {
            let name = row_name(table, r.key);
            self.seconds.insert(name.clone(), r.seconds);
            self.rates.insert(name.clone(), per_op / r.seconds);
            self.rate_units.insert(name.clone(), unit.to_string());
            if let (Some(p), true) = (reference, i != 1) {
                self.ratio_of(&name, r.seconds / p);
            }
        }
    }

    /// Records a ratio of times (this row's over its reference's).
    pub fn ratio_of(&mut self, row: &str, ratio: f64) {
        self.ratios.insert(row.to_string(), ratio);
        if self.headline.is_none() {
            self.headline = Some(row.to_string());
        }
    }

    /// Makes `row`'s ratio the headline.
    pub fn headline(&mut self, row: &str) {
        self.headline = Some(row.to_string());
    }

    /// The packages a peer reports under `versions` (`peers/versions.py`).
    pub fn peer_versions(&mut self, peer: &serde_json::Value) {
        if let Some(v) = peer["versions"].as_object() {
            for (package, version) in v {
                self.peer.insert(package.clone(), version.as_str().unwrap_or("?").to_string());
            }
        }
    }

    /// Writes the report to `dir/NAME.json` through a temporary file and a rename, so that a
    /// run that fails leaves the last report whole.
    pub fn write(mut self, dir: &Path, name: &str) -> Result<PathBuf> {
        self.ratio = self.headline.as_ref().and_then(|h| self.ratios.get(h)).copied();
        self.ms = self.seconds.iter().map(|(k, s)| (k.clone(), 1e3 * s)).collect();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{name}.json"));
        let tmp = dir.join(format!(".{name}.json.tmp"));
        let text = serde_json::to_string_pretty(&self)? + "\n";
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// A row's name: the table's for this book's row, `table_key` for the others.
pub fn row_name(table: &str, key: &str) -> String {
    if key.is_empty() {
        snake(table)
    } else {
        snake(&format!("{table}_{key}"))
    }
}

/// Lower-case letters and digits, every other run of characters one underscore
/// (`efficientnet-lite0: Forward + gradient` → `efficientnet_lite0_forward_gradient`).
pub fn snake(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// A model's name in a row: `efficientnet-lite0` → `lite0`, `mobilenet-v2` → `mobilenet_v2`.
pub fn short_model(name: &str) -> String {
    snake(name.strip_prefix("efficientnet-").unwrap_or(name))
}

/// The processor's model name (Linux), or the architecture.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by Howard Hinnant's `civil_from_days`.
pub fn utc_date(unix_s: i64) -> String {
    let z = unix_s.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &'static str, seconds: f64) -> Timing {
        Timing { name: format!("row {key}"), key, seconds }
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(snake("efficientnet-lite0: Forward + gradient"), "efficientnet_lite0_forward_gradient");
        assert_eq!(snake("  a--b  "), "a_b");
        assert_eq!(short_model("efficientnet-lite0"), "lite0");
        assert_eq!(short_model("mobilenet-v2"), "mobilenet_v2");
        assert_eq!(row_name("lite0_forward_input_gradient", ""), "lite0_forward_input_gradient");
        assert_eq!(row_name("step_32px", "peer"), "step_32px_peer");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31");
        assert_eq!(utc_date(1_798_761_600), "2027-01-01");
    }

    #[test]
    fn report_has_the_book_fields() {
        let mut r = Report::new(2, &["render".into(), "--steps".into(), "32".into()]);
        r.table("batch_1", "units/min", 60.0, &[t("", 2.0), t("peer", 4.0)]);
        r.table("batch_4", "units/min", 240.0, &[t("", 6.0), t("peer", 8.0), t("lean", 2.0)]);
        r.peer_versions(&serde_json::json!({"versions": {"torch": "2.15.0"}}));
        let dir = tempfile::tempdir().unwrap();
        let path = r.write(dir.path(), "render").unwrap();
        assert_eq!(path, dir.path().join("render.json"));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["ratio", "ratios", "seconds", "rates", "extra", "peer", "cpu", "threads", "date", "args"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        // The headline is the first table's ratio; the reference rows have no ratio.
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["ratios"], serde_json::json!({"batch_1": 0.5, "batch_4": 0.75, "batch_4_lean": 0.25}));
        assert_eq!(v["seconds"]["batch_4_peer"], 8.0);
        assert_eq!(v["ms"]["batch_4_peer"], 8000.0);
        assert_eq!(v["rates"]["batch_1"], 30.0);
        assert_eq!(v["peer"]["torch"], "2.15.0");
        assert_eq!(v["threads"], 2);
        assert_eq!(v["args"], "render --steps 32");
        assert_eq!(v["date"].as_str().unwrap().len(), 10);
        assert!(!dir.path().join(".render.json.tmp").exists());
    }
}
