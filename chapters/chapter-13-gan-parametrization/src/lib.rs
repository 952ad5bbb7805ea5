//! Chapter 13: generators as image parametrisations. An image is what a generator makes of a
//! code, and the code is what the optimiser changes (Nguyen et al., 2016).
//!
//! - [`upconv`]: Lucent's `upconvGAN`, the DeePSiM generators (weights from Lucent's address);
//! - [`dcgan`]: the book's own generator, trained offline on Fashion-MNIST by chapter 13;
//! - [`Generator`]: what both are to the render loop, through [`GanParam`].
use anyhow::Result;
use candle_core::Tensor;

pub mod dcgan;
mod param;
pub mod upconv;

pub use dcgan::DcGenerator;
pub use param::GanParam;
pub use upconv::{UpconvArch, UpconvGan};

/// A generator of images from codes.
pub trait Generator {
    /// Short name for captions and file names.
    fn name(&self) -> String;
    /// The shape of one code.
    fn code_shape(&self) -> Vec<usize>;
    /// The side of its (square) images in pixels.
    fn image_size(&self) -> usize;
    /// RGB images `(B, 3, H, W)` in [0, 1] from codes `(B, …code_shape)`.
    fn images(&self, code: &Tensor) -> Result<Tensor>;
}

impl Generator for UpconvGan {
    fn name(&self) -> String {
        format!("deepsim-{}", self.arch().name())
    }
    fn code_shape(&self) -> Vec<usize> {
        self.arch().code_shape()
    }
    fn image_size(&self) -> usize {
        256
    }
    fn images(&self, code: &Tensor) -> Result<Tensor> {
        self.visualize(code)
    }
}

impl Generator for DcGenerator {
    fn name(&self) -> String {
        "fashion-dcgan".into()
    }
    fn code_shape(&self) -> Vec<usize> {
        vec![self.shape.code]
    }
    fn image_size(&self) -> usize {
        dcgan::SIZE
    }
    /// The generator's grey images, repeated to three channels; the running BatchNorm
    /// statistics (evaluation mode).
    fn images(&self, code: &Tensor) -> Result<Tensor> {
        let x = self.forward_t(code, false)?;
        Ok(if x.dim(1)? == 1 { x.repeat((1, 3, 1, 1))? } else { x })
    }
}

/// Which generator a chapter uses.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorChoice {
    /// The book's DCGAN, trained on Fashion-MNIST (`assets/models/fashion-dcgan.safetensors`)
    Fashion,
    /// Lucent's DeePSiM fc6 generator (4096-d code, 256 px)
    Fc6,
    /// DeePSiM fc7 (4096-d code)
    Fc7,
    /// DeePSiM fc8 (1000-d code)
    Fc8,
    /// DeePSiM pool5 ((256, 6, 6) code)
    Pool5,
}

/// The generator flags (flatten them into a chapter's `Args` as `generator`).
#[derive(clap::Args, Debug, Clone)]
pub struct GeneratorArgs {
    /// The generator whose codes are optimised
    #[arg(long = "generator", value_enum, default_value = "fashion")]
    pub choice: GeneratorChoice,
    /// Its weights: a safetensors file of the book's generator, or Lucent's
    /// `upconvGAN_<name>.pt` [default: assets/models/fashion-dcgan.safetensors; for DeePSiM,
    /// the cache, Torch's checkpoint folder, then Lucent's address]
    #[arg(long)]
    pub generator_weights: Option<std::path::PathBuf>,
}

/// The command that makes the book's generator.
pub const TRAIN_COMMAND: &str = "cargo run --release -p chapter-13-gan-parametrization --bin train-generator -- --save assets/models/fashion-dcgan.safetensors";

impl GeneratorArgs {
    /// Loads the generator these flags name.
    pub fn load(&self, device: &candle_core::Device) -> Result<Box<dyn Generator>> {
        let arch = match self.choice {
            GeneratorChoice::Fashion => {
                let path = match &self.generator_weights {
                    Some(p) => p.clone(),
                    None => vision_interp::asset("models/fashion-dcgan.safetensors"),
                };
                anyhow::ensure!(
                    path.is_file(),
                    "no weights for the book's generator at {}: `{TRAIN_COMMAND}` trains it (about 10 minutes)",
                    path.display()
                );
                return Ok(Box::new(DcGenerator::load(&path, device)?));
            }
            GeneratorChoice::Fc6 => UpconvArch::Fc6,
            GeneratorChoice::Fc7 => UpconvArch::Fc7,
            GeneratorChoice::Fc8 => UpconvArch::Fc8,
            GeneratorChoice::Pool5 => UpconvArch::Pool5,
        };
        Ok(Box::new(UpconvGan::load(arch, self.generator_weights.as_deref(), device)?))
    }
}
