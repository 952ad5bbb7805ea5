//! The flags every chapter shares, and the session they set up.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use rand::rngs::StdRng;

use crate::device::{describe, select_device, DeviceChoice};

/// The flags of every chapter run (flatten them into the chapter's own `Args` as `run`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Folder for the figures [default: out/<chapter>/ in the workspace, which git ignores;
    /// the book's own figures are written by `ci/figures --update`]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Small sizes and step counts, for CI and a first try
    #[arg(long)]
    pub quick: bool,
    /// Where to compute
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Seed of every random choice
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The model flags, for chapters that study a model of the zoo (flatten them as `model`).
/// The accepted names, their aliases and help come from [`crate::models::MODELS`].
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model of the zoo
    #[arg(long = "model", value_name = "MODEL", default_value = crate::models::zoo::DEFAULT_MODEL,
          value_parser = crate::models::zoo::model_value_parser())]
    pub name: String,
    /// Weights file (safetensors, or a PyTorch .pth) instead of the default search, or
    /// hub:OWNER/REPO[/FILE]
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

impl ModelArgs {
    /// The model's entry in the zoo.
    pub fn entry(&self) -> Result<&'static crate::models::ModelEntry> {
        crate::models::entry(&self.name)
    }

    /// Loads the model with its weights (see [`crate::weights::resolve`]).
    pub fn load(&self, device: &Device) -> Result<Box<dyn crate::models::Model>> {
        self.entry()?.load(self.weights.as_deref(), device)
    }
}

/// What a chapter run works with: device, output folder, random generator.
pub struct Session {
    pub device: Device,
    pub out: PathBuf,
    pub rng: StdRng,
    pub quick: bool,
    written: Vec<PathBuf>,
    numbers: BTreeMap<String, serde_json::Value>,
    started: Instant,
}

/// A value a run records for its page: numbers are kept at the precision they were computed
/// in (an `f32` is written with its own shortest decimals, `0.23` rather than
/// `0.23000000417232513`), words as they are.
pub trait Glue {
    fn to_json(&self) -> serde_json::Value;
}

impl Glue for f32 {
    fn to_json(&self) -> serde_json::Value {
        // The shortest decimal that reads back as this f32, as an f64.
        format!("{self}").parse::<f64>().map(serde_json::Value::from).unwrap_or(serde_json::Value::Null)
    }
}

macro_rules! glue_via_from {
    ($($t:ty),*) => {$(
        impl Glue for $t {
            fn to_json(&self) -> serde_json::Value {
                serde_json::Value::from(self.clone())
            }
        }
    )*};
}
glue_via_from!(f64, usize, u64, u32, i64, i32, String, bool);

impl Glue for &str {
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::from(*self)
    }
}

/// The name of the running binary (`chapter-03-actmax`, `hires`, …).
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// The processor's model name, as the kernel reports it (or the architecture).
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

impl Session {
    /// A size or count: the one given on the command line, else `quick` under `--quick` and
    /// `full` otherwise (`s.budget(args.steps, 24, 128)`).
    pub fn budget<T>(&self, given: Option<T>, quick: T, full: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }

    /// Opens the device, creates the output folder, seeds the generator and says so. `chapter`
    /// is the crate's name: call it with `env!("CARGO_PKG_NAME")`.
    pub fn start(args: &RunArgs, chapter: &str) -> Result<Self> {
        crate::keep_freed_memory();
        let device = select_device(args.device)?;
        if !matches!(device, Device::Cpu) {
            device.set_seed(args.seed)?;
        }
        let out = args.out.clone().unwrap_or_else(|| crate::workspace_root().join("out").join(chapter));
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        println!(
            "{chapter}: device {}, seed {}, {} mode, figures to {}",
            describe(&device),
            args.seed,
            if args.quick { "quick" } else { "full" },
            out.display()
        );
        Ok(Self {
            device,
            out,
            rng: crate::rng::seeded(args.seed),
            quick: args.quick,
            written: Vec::new(),
            numbers: BTreeMap::new(),
            started: Instant::now(),
        })
    }

    /// Path of a figure in the output folder, named by [`crate::figure::figure_path`].
    pub fn figure(&self, model: &str, subject: &str, kind: &str) -> PathBuf {
        crate::figure::figure_path(&self.out, model, subject, kind)
    }

    /// Saves a figure (PNG or JPEG, by the path's extension) and remembers it for the summary.
    pub fn save(&mut self, img: &image::RgbImage, path: &Path) -> Result<()> {
        crate::imageio::save_figure(img, path)?;
        println!("wrote {}", path.display());
        self.written.push(path.to_path_buf());
        Ok(())
    }

    /// Saves `frames` as a looping GIF `<model>-<subject>-<kind>.gif`, `delay_ms` apart.
    pub fn save_animation(
        &mut self,
        frames: &[image::RgbImage],
        delay_ms: u32,
        name: (&str, &str, &str),
    ) -> Result<()> {
        let path = self.figure(name.0, name.1, name.2).with_extension("gif");
        crate::imageio::save_gif(frames, delay_ms, &path)?;
        println!("wrote {}", path.display());
        self.written.push(path);
        Ok(())
    }

    /// Draws a grid of panels and saves it as `<model>-<subject>-<kind>.png` (`.jpg` for a
    /// photographic grid, see [`crate::figure::GridSpec::photo`]).
    pub fn save_grid(
        &mut self,
        rows: &[Vec<crate::figure::Panel>],
        spec: &crate::figure::GridSpec,
        name: (&str, &str, &str),
    ) -> Result<()> {
        let path = crate::figure::figure_path_as(&self.out, name.0, name.1, name.2, spec.encoding);
        self.save(&crate::figure::grid(rows, spec)?, &path)
    }

    /// Records a number the chapter's page quotes, under `key`: [`Session::finish`] writes
    /// them to `numbers.json` in the output folder, and the book's pages glue them in by key
    /// (`CONTRIBUTING.md`). Keys under `run.` are measurements of this machine (times, rates),
    /// which `ci/figures` does not compare; every other key must come out the same on every
    /// x86-64 machine, like the figures.
    pub fn record(&mut self, key: &str, value: impl Glue) {
        self.numbers.insert(key.to_string(), value.to_json());
    }

    /// Records a rate or a time measured on this machine, under `run.<key>`.
    pub fn record_timing(&mut self, key: &str, value: impl Glue) {
        self.record(&format!("run.{key}"), value);
    }

    /// Writes `numbers.json` (what [`Session::record`] kept, the run's wall time and the
    /// machine; merged into the file another binary of the chapter wrote into the same
    /// folder) and prints how many files were written.
    pub fn finish(mut self) -> Result<()> {
        let bin = binary_name();
        let prefix = if bin.starts_with("chapter-") { "run".to_string() } else { format!("run.{bin}") };
        let wall = (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        self.numbers.insert(format!("{prefix}.wall_s"), wall.into());
        self.numbers.insert("run.cpu".into(), cpu_name().into());
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        self.numbers.insert("run.threads".into(), threads.into());
        let path = self.out.join("numbers.json");
        let mut all: BTreeMap<String, serde_json::Value> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a JSON object of numbers", path.display()))?,
            Err(_) => BTreeMap::new(),
        };
        all.append(&mut self.numbers);
        let mut text = serde_json::to_string_pretty(&all)?;
        text.push('\n');
        crate::atomic::write_with(&path, |tmp| Ok(std::fs::write(tmp.path(), &text)?))?;
        println!("{} figure(s) written to {}", self.written.len(), self.out.display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(out: &Path) -> Session {
        let args = RunArgs { out: Some(out.to_path_buf()), quick: true, device: DeviceChoice::Cpu, seed: 0 };
        Session::start(&args, "chapter-99-test").unwrap()
    }

    #[test]
    fn recorded_numbers_are_written_with_their_own_precision_and_merged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("numbers.json"), r#"{"kept": 1, "p": 9.0}"#).unwrap();
        let mut s = session(dir.path());
        s.record("p", 0.23f32);
        s.record("steps", 128usize);
        s.record("class", "tiger cat");
        s.record_timing("steps_per_s", 4.5f64);
        s.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("numbers.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(text.contains("\"p\": 0.23,"), "{text}");
        assert_eq!(v["kept"], 1);
        assert_eq!(v["steps"], 128);
        assert_eq!(v["class"], "tiger cat");
        assert_eq!(v["run.steps_per_s"], 4.5);
        assert!(v["run.threads"].as_u64().unwrap() >= 1);
        assert!(v["run.cpu"].is_string());
        // The test binary is not a chapter: its wall time is named after it.
        assert!(
            v.as_object().unwrap().keys().any(|k| k.starts_with("run.") && k.ends_with(".wall_s")),
            "{text}"
        );
    }

    #[test]
    fn a_damaged_numbers_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("numbers.json"), "{ not json").unwrap();
        let mut s = session(dir.path());
        s.record("p", 1.0f64);
        let err = s.finish().unwrap_err();
        assert!(format!("{err:#}").contains("is not a JSON object of numbers"), "{err:#}");
    }
}
