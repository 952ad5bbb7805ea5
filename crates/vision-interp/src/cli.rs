//! The flags every chapter shares, and the session they set up.
use std::path::{Path, PathBuf};

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
}

impl Session {
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
        Ok(Self { device, out, rng: crate::rng::seeded(args.seed), quick: args.quick, written: Vec::new() })
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

    /// Prints how many files were written.
    pub fn finish(self) {
        println!("{} figure(s) written to {}", self.written.len(), self.out.display());
    }
}
