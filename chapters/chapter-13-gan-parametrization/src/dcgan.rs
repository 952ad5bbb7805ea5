//! The book's own generator: a small DCGAN (Radford et al., 2016) trained on the Fashion-MNIST
//! subset in `assets/`, because no package registry ships the DeePSiM weights Lucent uses.
//!
//! - Generator: a code `z ∈ ℝ^d` (drawn from N(0, I) in training) → linear → `(4w, 4, 4)` →
//!   BatchNorm, ReLU → transposed convolutions (4×4, stride 2) to `(2w, 8, 8)` and `(w, 16, 16)`,
//!   each with BatchNorm and ReLU → a last transposed convolution to `(1, 32, 32)` → sigmoid.
//! - Discriminator: convolutions (4×4, stride 2) `1 → w → 2w → 4w`, from 32 to 4 pixels, with
//!   LeakyReLU(0.2) and BatchNorm (not on the first) → linear → one logit.
//! - Training: the non-saturating GAN loss, Adam (learning rate 2·10⁻⁴, β₁ = 0.5), one
//!   discriminator step and one generator step per batch; a checkpoint after every epoch, from
//!   which a killed run resumes to the same weights.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{BatchNorm, ModuleT, VarBuilder, VarMap};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use vision_interp::checkpoint::{read_checkpoint, restore, save_checkpoint, Part};
use vision_interp::ops;
use vision_interp::optim::Adam;

/// The generator's and discriminator's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcganShape {
    /// Length of a code.
    pub code: usize,
    /// Channels of the widest generator layer are `4 · width`.
    pub width: usize,
    /// Image channels (1: grey).
    pub channels: usize,
}

/// The side of the generated images.
pub const SIZE: usize = 32;

impl DcganShape {
    /// Every tensor of the generator: `(name, shape)` (BatchNorm's four per layer included).
    pub fn generator_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let w = self.width;
        let mut t = vec![
            ("fc.weight".to_string(), vec![16 * 4 * w, self.code]),
            ("fc.bias".into(), vec![16 * 4 * w]),
        ];
        for (name, c) in [("bn0", 4 * w), ("bn1", 2 * w), ("bn2", w)] {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                t.push((format!("{name}.{p}"), vec![c]));
            }
        }
        t.push(("deconv1.weight".into(), vec![4 * w, 2 * w, 4, 4]));
        t.push(("deconv2.weight".into(), vec![2 * w, w, 4, 4]));
        t.push(("deconv3.weight".into(), vec![w, self.channels, 4, 4]));
        t.push(("deconv3.bias".into(), vec![self.channels]));
        t
    }

    /// Every tensor of the discriminator.
    fn discriminator_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let w = self.width;
        let mut t = vec![
            ("conv1.weight".to_string(), vec![w, self.channels, 4, 4]),
            ("conv1.bias".into(), vec![w]),
            ("conv2.weight".into(), vec![2 * w, w, 4, 4]),
            ("conv3.weight".into(), vec![4 * w, 2 * w, 4, 4]),
        ];
        for (name, c) in [("bn2", 2 * w), ("bn3", 4 * w)] {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                t.push((format!("{name}.{p}"), vec![c]));
            }
        }
        t.push(("fc.weight".into(), vec![1, 16 * 4 * w]));
        t.push(("fc.bias".into(), vec![1]));
        t
    }
}

/// Fills `varmap` with DCGAN's initialisation drawn from `rng`: convolution and linear weights
/// N(0, 0.02²), BatchNorm γ ~ N(1, 0.02²), biases and β zero, running statistics 0 and 1.
fn init(varmap: &VarMap, tensors: &[(String, Vec<usize>)], rng: &mut StdRng, device: &Device) -> Result<()> {
    let mut data = varmap.data().lock().expect("varmap lock");
    for (name, shape) in tensors {
        let t = if name.ends_with("running_var") {
            Tensor::ones(shape.as_slice(), DType::F32, device)?
        } else if name.ends_with("bias") || name.ends_with("running_mean") {
            Tensor::zeros(shape.as_slice(), DType::F32, device)?
        } else if name.starts_with("bn") {
            vision_interp::rng::randn(rng, shape.as_slice(), 1.0, 0.02, device)?
        } else {
            vision_interp::rng::randn(rng, shape.as_slice(), 0.0, 0.02, device)?
        };
        data.insert(name.clone(), Var::from_tensor(&t)?);
    }
    Ok(())
}

fn batch_norm(c: usize, vb: VarBuilder) -> candle_core::Result<BatchNorm> {
    candle_nn::batch_norm(
        c,
        candle_nn::BatchNormConfig { eps: 1e-5, momentum: 0.1, ..Default::default() },
        vb,
    )
}

/// The generator.
pub struct DcGenerator {
    pub shape: DcganShape,
    fc: candle_nn::Linear,
    bns: [BatchNorm; 3],
    deconvs: [Tensor; 3],
    bias3: Tensor,
}

impl DcGenerator {
    fn new(shape: DcganShape, vb: VarBuilder) -> Result<Self> {
        let w = shape.width;
        Ok(Self {
            shape,
            fc: candle_nn::linear(shape.code, 16 * 4 * w, vb.pp("fc"))?,
            bns: [
                batch_norm(4 * w, vb.pp("bn0"))?,
                batch_norm(2 * w, vb.pp("bn1"))?,
                batch_norm(w, vb.pp("bn2"))?,
            ],
            deconvs: [
                vb.get((4 * w, 2 * w, 4, 4), "deconv1.weight")?,
                vb.get((2 * w, w, 4, 4), "deconv2.weight")?,
                vb.get((w, shape.channels, 4, 4), "deconv3.weight")?,
            ],
            bias3: vb.get(shape.channels, "deconv3.bias")?,
        })
    }

    /// The generator of a weights file (safetensors), its shape read from its tensors and each
    /// one checked: a file of another architecture names the tensor and both shapes.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let store = vision_interp::weights::WeightStore::load(path, device)?;
        let fc = store.raw("fc.weight").with_context(|| {
            format!("{} holds no `fc.weight`: it is not a generator of this book", path.display())
        })?;
        let last = store.raw("deconv3.weight").context("no `deconv3.weight`");
        let (fc_dims, last_dims) = (fc.dims().to_vec(), last.map(|t| t.dims().to_vec()).unwrap_or_default());
        ensure!(
            fc_dims.len() == 2 && fc_dims[0] % 64 == 0 && last_dims.len() == 4,
            "{}: `fc.weight` {fc_dims:?} and `deconv3.weight` {last_dims:?} are not the shapes of this book's generator",
            path.display()
        );
        let shape = DcganShape { code: fc_dims[1], width: fc_dims[0] / 64, channels: last_dims[1] };
        let tensors: HashMap<String, Tensor> = shape
            .generator_tensors()
            .into_iter()
            .map(|(name, s)| Ok((name.clone(), store.get(&name, &s)?)))
            .collect::<Result<_>>()?;
        Self::new(shape, VarBuilder::from_tensors(tensors, DType::F32, device))
    }

    // ANCHOR: generator
    /// Images `(B, channels, 32, 32)` in (0, 1) from codes `(B, code)`; `train` normalises with
    /// the batch's statistics (and updates the running ones), otherwise with the running ones.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let (b, d) = z.dims2()?;
        ensure!(d == self.shape.code, "the generator takes codes of {} values, not {d}", self.shape.code);
        let w = self.shape.width;
        let mut x = candle_nn::Module::forward(&self.fc, z)?.reshape((b, 4 * w, 4, 4))?;
        for (bn, deconv) in self.bns.iter().zip(&self.deconvs) {
            x = bn.forward_t(&x, train)?.relu()?;
            x = ops::conv_transpose2d(&x, deconv, None, 2, 1)?;
        }
        Ok(candle_nn::ops::sigmoid(&ops::add_channel_bias(&x, &self.bias3)?)?)
    }
    // ANCHOR_END: generator

    /// Saves the generator's tensors (safetensors, atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut t: HashMap<String, Tensor> = HashMap::new();
        t.insert("fc.weight".into(), self.fc.weight().clone());
        t.insert("fc.bias".into(), self.fc.bias().context("bias")?.clone());
        for (i, bn) in self.bns.iter().enumerate() {
            let (g, b) = bn.weight_and_bias().context("affine")?;
            t.insert(format!("bn{i}.weight"), g.clone());
            t.insert(format!("bn{i}.bias"), b.clone());
            t.insert(format!("bn{i}.running_mean"), bn.running_mean().clone());
            t.insert(format!("bn{i}.running_var"), bn.running_var().clone());
        }
        for (i, d) in self.deconvs.iter().enumerate() {
            t.insert(format!("deconv{}.weight", i + 1), d.clone());
        }
        t.insert("deconv3.bias".into(), self.bias3.clone());
        vision_interp::atomic::write_with(path, |tmp| Ok(candle_core::safetensors::save(&t, tmp.path())?))
    }
}

/// The discriminator: one logit per image, "real" when positive.
struct Discriminator {
    convs: [Tensor; 3],
    bias1: Tensor,
    bns: [BatchNorm; 2],
    fc: candle_nn::Linear,
}

impl Discriminator {
    fn new(shape: DcganShape, vb: VarBuilder) -> Result<Self> {
        let w = shape.width;
        Ok(Self {
            convs: [
                vb.get((w, shape.channels, 4, 4), "conv1.weight")?,
                vb.get((2 * w, w, 4, 4), "conv2.weight")?,
                vb.get((4 * w, 2 * w, 4, 4), "conv3.weight")?,
            ],
            bias1: vb.get(w, "conv1.bias")?,
            bns: [batch_norm(2 * w, vb.pp("bn2"))?, batch_norm(4 * w, vb.pp("bn3"))?],
            fc: candle_nn::linear(16 * 4 * w, 1, vb.pp("fc"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = ops::conv2d_padded(x, &self.convs[0], Some(&self.bias1), 2, [1; 4])?;
        h = ops::leaky_relu(&h, 0.2)?;
        for (conv, bn) in self.convs[1..].iter().zip(&self.bns) {
            h = bn.forward_t(&ops::conv2d_padded(&h, conv, None, 2, [1; 4])?, true)?;
            h = ops::leaky_relu(&h, 0.2)?;
        }
        Ok(candle_nn::Module::forward(&self.fc, &h.flatten_from(1)?)?.flatten_all()?)
    }
}

/// `log(1 + eˣ)`, computed without overflow: `max(x, 0) + log(1 + e^{−|x|})`.
fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

/// Settings of a training run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct GanTraining {
    pub shape: DcganShape,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// One epoch's means: the two losses, and the discriminator's probability that a real and a
/// generated image are real.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GanEpoch {
    pub epoch: usize,
    pub d_loss: f32,
    pub g_loss: f32,
    pub d_real: f32,
    pub d_fake: f32,
}

/// What [`train`] returns: the generator, the history, the images of 64 fixed codes after
/// every epoch `(64, channels, 32, 32)`, and how many epochs came from a checkpoint.
pub struct Trained {
    pub generator: DcGenerator,
    pub history: Vec<GanEpoch>,
    pub samples: Vec<Tensor>,
    pub resumed: usize,
}

#[derive(Serialize, Deserialize)]
struct Progress {
    settings: GanTraining,
    g_step: usize,
    d_step: usize,
    history: Vec<GanEpoch>,
}

/// The 64 codes whose images [`train`] records after every epoch.
pub fn fixed_codes(shape: &DcganShape, seed: u64, device: &Device) -> Result<Tensor> {
    vision_interp::rng::randn(
        &mut vision_interp::rng::seeded(seed ^ 0x5eed_c0de),
        (64, shape.code),
        0.0,
        1.0,
        device,
    )
}

// ANCHOR: train
/// Trains a generator on `images` `(N, channels, 32, 32)` in [0, 1]. With a `checkpoint`
/// path, finished epochs found there are loaded and skipped and each new epoch is saved there;
/// every epoch's randomness comes from `(seed, epoch)`, so a resumed run ends with the same
/// weights as one that was never interrupted.
pub fn train(
    images: &Tensor,
    cfg: GanTraining,
    device: &Device,
    checkpoint: Option<&Path>,
) -> Result<Trained> {
    let (n, c, h, w) = images.dims4()?;
    ensure!(
        (c, h, w) == (cfg.shape.channels, SIZE, SIZE),
        "the generator makes {}×{SIZE}×{SIZE} images; the training images are {c}×{h}×{w}",
        cfg.shape.channels
    );
    ensure!(n >= cfg.batch && cfg.batch >= 2, "{n} training images for batches of {}", cfg.batch);
    let images = images.contiguous()?;
    let mut rng = vision_interp::rng::seeded(cfg.seed);
    let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
    init(&g_vars, &cfg.shape.generator_tensors(), &mut rng, device)?;
    init(&d_vars, &cfg.shape.discriminator_tensors(), &mut rng, device)?;
    let gen = DcGenerator::new(cfg.shape, VarBuilder::from_varmap(&g_vars, DType::F32, device))?;
    let disc = Discriminator::new(cfg.shape, VarBuilder::from_varmap(&d_vars, DType::F32, device))?;
    let adam = |vars: &VarMap| Adam::new(vars, cfg.lr).map(|a| a.with_betas(0.5, 0.999));
    let (mut g_opt, mut d_opt) = (adam(&g_vars)?, adam(&d_vars)?);
    let (g_part, d_part) = (Part { prefix: "g.", varmap: &g_vars }, Part { prefix: "d.", varmap: &d_vars });
    let fixed = fixed_codes(&cfg.shape, cfg.seed, device)?;
    let (mut history, mut samples) = (Vec::new(), Vec::new());
    let mut resumed = 0;
    if let Some(ckpt) = checkpoint.filter(|c| c.is_file() && c.with_extension("json").is_file()) {
        let parts = [g_part.clone(), d_part.clone()];
        match read_checkpoint::<Progress>(ckpt, &parts, device).and_then(|(t, p)| {
            // Another number of epochs is the same run, made longer or shorter.
            if (GanTraining { epochs: cfg.epochs, ..p.settings }) != cfg || p.history.len() > cfg.epochs {
                bail!("the checkpoint {} is of another run ({:?})", ckpt.display(), p.settings);
            }
            let samples: Vec<Tensor> = (1..=p.history.len())
                .map(|e| t.get(&format!("samples.{e}")).cloned().context("no samples"))
                .collect::<Result<_>>()?;
            Ok((t, p, samples))
        }) {
            Ok((tensors, progress, s)) => {
                restore(&g_part, &mut g_opt, &tensors, progress.g_step)?;
                restore(&d_part, &mut d_opt, &tensors, progress.d_step)?;
                (history, samples) = (progress.history, s);
                resumed = history.len();
                eprintln!("resumed from {} after epoch {}", ckpt.display(), history.len());
            }
            Err(e) => eprintln!("warning: {e:#}; training from the start"),
        }
    }
    for epoch in history.len() + 1..=cfg.epochs {
        let mut rng =
            vision_interp::rng::seeded(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut order: Vec<u32> = (0..n as u32).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        let steps = n / cfg.batch; // the last, smaller batch is dropped (BatchNorm)
        let bar = vision_interp::progress::bar(steps as u64, &format!("epoch {epoch}/{}", cfg.epochs));
        let mut sums = [0f64; 4];
        for s in 0..steps {
            let idx = Tensor::new(&order[s * cfg.batch..(s + 1) * cfg.batch], &Device::Cpu)?;
            let real = images.index_select(&idx, 0)?.to_device(device)?;
            let z = vision_interp::rng::randn(&mut rng, (cfg.batch, cfg.shape.code), 0.0, 1.0, device)?;
            let fake = gen.forward_t(&z, true)?;
            // The discriminator: real images towards "real", generated ones towards "fake".
            let (on_real, on_fake) = (disc.forward(&real)?, disc.forward(&fake.detach())?);
            let d_loss = (softplus(&on_real.neg()?)?.mean_all()? + softplus(&on_fake)?.mean_all()?)?;
            // A loss that is not finite stops the run before it changes any weight.
            let finite = |what: &str, l: f32| -> Result<f32> {
                ensure!(
                    l.is_finite(),
                    "epoch {epoch}, step {}: the {what} loss became {l}; lower the learning rate",
                    s + 1
                );
                Ok(l)
            };
            let dl = finite("discriminator", d_loss.to_scalar::<f32>()?)?;
            d_opt.backward_step(&d_loss)?;
            // The generator: its images towards "real" for the updated discriminator (the
            // non-saturating loss).
            let g_loss = softplus(&disc.forward(&fake)?.neg()?)?.mean_all()?;
            let gl = finite("generator", g_loss.to_scalar::<f32>()?)?;
            g_opt.backward_step(&g_loss)?;
            let p = |t: &Tensor| -> Result<f64> {
                Ok(candle_nn::ops::sigmoid(t)?.mean_all()?.to_scalar::<f32>()? as f64)
            };
            for (sum, v) in sums.iter_mut().zip([dl as f64, gl as f64, p(&on_real)?, p(&on_fake)?]) {
                *sum += v;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let [d, g, r, f] = sums.map(|s| (s / steps as f64) as f32);
        let stats = GanEpoch { epoch, d_loss: d, g_loss: g, d_real: r, d_fake: f };
        eprintln!(
            "epoch {epoch}/{}: discriminator loss {d:.3}, generator loss {g:.3}, D(real) {r:.2}, D(generated) {f:.2}",
            cfg.epochs
        );
        history.push(stats);
        samples.push(gen.forward_t(&fixed, false)?.detach());
        if let Some(ckpt) = checkpoint {
            let extra =
                samples.iter().enumerate().map(|(i, s)| (format!("samples.{}", i + 1), s.clone())).collect();
            let progress =
                Progress { settings: cfg, g_step: g_opt.step, d_step: d_opt.step, history: history.clone() };
            save_checkpoint(&[(g_part.clone(), &g_opt), (d_part.clone(), &d_opt)], extra, &progress, ckpt)?;
        }
    }
    Ok(Trained { generator: gen, history, samples, resumed })
}
// ANCHOR_END: train
