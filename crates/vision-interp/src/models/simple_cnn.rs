//! SimpleCNN, the small network the course trains from scratch: three blocks of
//! 3×3 convolution, BatchNorm, ReLU and 2×2 max pooling (32, 64, 128 channels), an adaptive
//! average pool to 4×4, then 2048 → 512 → classes with dropout 0.25. 1,147,914 parameters for
//! 10 classes.
//!
//! Named layers: `conv1`, `conv2`, `conv3` (the raw convolution outputs, before BatchNorm,
//! where the course reads feature maps and computes Grad-CAM), `block1` … `block3` (after the
//! pool), `fc1` (after its ReLU) and `logits`.
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, Linear, VarBuilder, VarMap};
use rand::rngs::StdRng;

use super::{Activations, LayerInfo, Model, ModelCard, Sequential, Taps};
use crate::ops;

/// ImageNet channel means and standard deviations (the course's normalisation).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `(x − μ) / σ` per channel for `(N, 3, H, W)` images in [0, 1].
pub fn imagenet_normalize(x: &Tensor) -> Result<Tensor> {
    let mean = Tensor::new(&IMAGENET_MEAN, x.device())?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&IMAGENET_STD, x.device())?.reshape((1, 3, 1, 1))?;
    Ok(x.broadcast_sub(&mean)?.broadcast_div(&std)?)
}

/// 3×3 convolution with padding 1 through [`ops::conv2d_same_stride1`] (im2col and a matrix
/// product on the CPU).
#[derive(Clone)]
struct Conv3x3(Conv2d);

impl Module for Conv3x3 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::conv2d_same_stride1_bias(x, self.0.weight(), self.0.bias(), 1)
    }
}

/// BatchNorm, ReLU and the 2×2 max pool of a block. In training the three are one fused
/// kernel ([`ops::batch_norm_relu_pool_train`]); the pool's backward pass is exact (see
/// [`ops::max_pool2d`]).
#[derive(Clone)]
struct BnReluPool {
    bn: BatchNorm,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
}

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

impl BnReluPool {
    fn new(channels: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = candle_nn::BatchNormConfig {
            eps: BN_EPS,
            remove_mean: true,
            affine: true,
            momentum: BN_MOMENTUM,
        };
        let bn = candle_nn::batch_norm(channels, cfg, vb.clone())?;
        let var = |name: &str| Var::from_tensor(&vb.get(channels, name)?);
        Ok(Self {
            bn,
            gamma: vb.get(channels, "weight")?,
            beta: vb.get(channels, "bias")?,
            running_mean: var("running_mean")?,
            running_var: var("running_var")?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if train {
            let (y, stats) = ops::batch_norm_relu_pool_train(x, &self.gamma, &self.beta, BN_EPS, 2)?;
            // Running averages as PyTorch keeps them (the variance unbiased).
            let m = BN_MOMENTUM as f32;
            let unbias = stats.count as f32 / (stats.count as f32 - 1.0).max(1.0);
            let blend = |var: &Var, batch: Vec<f32>| -> candle_core::Result<()> {
                let old: Vec<f32> = var.as_tensor().to_dtype(DType::F32)?.to_vec1()?;
                let new: Vec<f32> = old.iter().zip(batch).map(|(o, b)| (1.0 - m) * o + m * b).collect();
                var.set(&Tensor::from_vec(new, old.len(), var.device())?.to_dtype(var.dtype())?)
            };
            blend(&self.running_mean, stats.mean)?;
            blend(&self.running_var, stats.var.iter().map(|v| v * unbias).collect())?;
            Ok(y)
        } else {
            ops::max_pool2d(&self.bn.forward_t(x, false)?.relu()?, 2, 2, 0, false)
        }
    }
}

impl Module for BnReluPool {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, false)
    }
}

/// Adaptive average pool to 4×4 and flatten: `(N, 128, h, w)` → `(N, 2048)`.
fn adaptive_pool_4x4(x: &Tensor) -> candle_core::Result<Tensor> {
    ops::adaptive_avg_pool2d(x, 4)?.flatten_from(1)
}

/// `fc1` with ReLU (dropout is applied by [`SimpleCnn::forward_t`] in training).
#[derive(Clone)]
struct Fc1(Linear);

impl Module for Fc1 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward(&adaptive_pool_4x4(x)?)?.relu()
    }
}

/// The network and its trainable variables.
pub struct SimpleCnn {
    convs: [Conv3x3; 3],
    blocks: [BnReluPool; 3],
    fc1: Fc1,
    fc2: Linear,
    net: Sequential,
    card: ModelCard,
    /// Seeded generator for dropout masks.
    rng: Arc<Mutex<StdRng>>,
}

const CHANNELS: [usize; 3] = [32, 64, 128];
pub const DROPOUT: f32 = 0.25;

/// Fills `varmap` with PyTorch's default initialisation, drawn from the book's seeded
/// generator (Candle cannot seed its CPU generator): weights and biases of convolutions and
/// linear layers ~ U(−1/√fan_in, 1/√fan_in); BatchNorm γ = 1, β = 0, running mean 0, var 1.
pub fn init_varmap(varmap: &VarMap, classes: usize, rng: &mut StdRng, device: &Device) -> Result<()> {
    let mut shapes: Vec<(String, Vec<usize>, usize)> = Vec::new();
    let mut c_in = 3;
    for (i, &c) in CHANNELS.iter().enumerate() {
        let fan_in = c_in * 9;
        shapes.push((format!("conv{}.weight", i + 1), vec![c, c_in, 3, 3], fan_in));
        shapes.push((format!("conv{}.bias", i + 1), vec![c], fan_in));
        c_in = c;
    }
    shapes.push(("fc1.weight".into(), vec![512, 2048], 2048));
    shapes.push(("fc1.bias".into(), vec![512], 2048));
    shapes.push(("fc2.weight".into(), vec![classes, 512], 512));
    shapes.push(("fc2.bias".into(), vec![classes], 512));
    let mut data = varmap.data().lock().expect("varmap lock");
    for (name, shape, fan_in) in shapes {
        let bound = 1.0 / (fan_in as f32).sqrt();
        let t = crate::rng::rand_uniform(rng, shape.as_slice(), -bound, bound, device)?;
        data.insert(name, Var::from_tensor(&t)?);
    }
    for (i, &c) in CHANNELS.iter().enumerate() {
        for (param, value) in [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)] {
            let t = (Tensor::ones(c, DType::F32, device)? * value)?;
            data.insert(format!("bn{}.{param}", i + 1), Var::from_tensor(&t)?);
        }
    }
    Ok(())
}

impl SimpleCnn {
    /// Builds the network on the variables of `vb` (names `conv1.weight`, `bn1.running_mean`,
    /// `fc2.bias`, …), for square inputs of `input_size` pixels.
    pub fn new(vb: VarBuilder, classes: Vec<String>, input_size: usize, rng: StdRng) -> Result<Self> {
        if classes.is_empty() {
            bail!("SimpleCNN needs at least one class");
        }
        let cfg = Conv2dConfig { padding: 1, ..Default::default() };
        let mut c_in = 3;
        let mut convs = Vec::new();
        let mut blocks = Vec::new();
        for (i, &c) in CHANNELS.iter().enumerate() {
            convs.push(Conv3x3(candle_nn::conv2d(c_in, c, 3, cfg, vb.pp(format!("conv{}", i + 1)))?));
            blocks.push(BnReluPool::new(c, vb.pp(format!("bn{}", i + 1)))?);
            c_in = c;
        }
        let fc1 = Fc1(candle_nn::linear(2048, 512, vb.pp("fc1"))?);
        let fc2 = candle_nn::linear(512, classes.len(), vb.pp("fc2"))?;
        let convs: [Conv3x3; 3] = convs.try_into().map_err(|_| anyhow::anyhow!("three convolutions"))?;
        let blocks: [BnReluPool; 3] = blocks.try_into().map_err(|_| anyhow::anyhow!("three blocks"))?;
        let mut net = Sequential::new();
        let mut layers = Vec::new();
        let mut size = input_size;
        for i in 0..3 {
            let c = CHANNELS[i];
            net.push(&format!("conv{}", i + 1), convs[i].clone());
            layers.push(info(&format!("conv{}", i + 1), c, size, "3×3 conv, padding 1 (before BatchNorm)"));
            size /= 2;
            net.push(&format!("block{}", i + 1), blocks[i].clone());
            layers.push(info(&format!("block{}", i + 1), c, size, "BatchNorm, ReLU, 2×2 max pool"));
        }
        net.push("fc1", fc1.clone());
        layers.push(info("fc1", 512, 1, "adaptive average pool to 4×4, linear 2048 → 512, ReLU"));
        net.push("logits", fc2.clone());
        layers.push(info("logits", classes.len(), 1, "linear 512 → classes (pre-softmax)"));
        let card = ModelCard { name: "simple-cnn".into(), input_size, layers, classes };
        Ok(Self { convs, blocks, fc1, fc2, net, card, rng: Arc::new(Mutex::new(rng)) })
    }

    /// The weight `(C_out, C_in, 3, 3)` of convolution `i` (0, 1 or 2).
    pub fn conv_weight(&self, i: usize) -> &Tensor {
        self.convs[i].0.weight()
    }

    /// Restarts the dropout generator (the trainer does this at every epoch, so that a run
    /// resumed from a checkpoint draws the same masks as one that never stopped).
    pub fn reseed_dropout(&self, seed: u64) {
        *self.rng.lock().expect("dropout generator") = crate::rng::seeded(seed);
    }

    /// Logits of preprocessed images; in training, BatchNorm uses batch statistics (and updates
    /// its running ones) and dropout zeroes a quarter of `fc1` (scaling the rest by 4/3).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (conv, block) in self.convs.iter().zip(&self.blocks) {
            h = block.forward_t(&conv.forward(&h)?, train)?;
        }
        let mut h = self.fc1.forward(&h)?;
        if train {
            let keep = {
                let mut rng = self.rng.lock().expect("dropout generator");
                crate::rng::rand_uniform(&mut rng, h.shape(), 0.0, 1.0, h.device())?
            };
            let mask = (keep.ge(DROPOUT as f64)?.to_dtype(h.dtype())? / (1.0 - DROPOUT as f64))?;
            h = (h * mask)?;
        }
        Ok(self.fc2.forward(&h)?)
    }
}

/// The dataset a SimpleCNN is trained on from scratch.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScratchData {
    /// The Fashion-MNIST subset shipped in `assets/` (works offline)
    #[default]
    FashionMnist,
    /// fast.ai's Imagenette, 160-pixel variant (downloaded once, about 94 MB)
    Imagenette,
}

impl ScratchData {
    /// `fashion-mnist` or `imagenette`: names figures, checkpoints and weights.
    pub fn slug(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Imagenette => "imagenette",
        }
    }

    /// The class names, in label order.
    pub fn classes(self) -> Vec<String> {
        match self {
            Self::FashionMnist => crate::data::FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect(),
            Self::Imagenette => crate::data::IMAGENETTE_CLASSES.iter().map(|(_, c)| c.to_string()).collect(),
        }
    }
}

/// The training run of chapter 1: which data, how many images and epochs, at what size.
#[derive(Debug, Clone, Copy)]
pub struct ScratchRun {
    pub data: ScratchData,
    /// Training images used (`None`: all of them).
    pub n_train: Option<usize>,
    /// Evaluation images used (`None`: all of them).
    pub n_eval: Option<usize>,
    pub epochs: usize,
    pub size: usize,
}

impl ScratchRun {
    /// Fashion-MNIST: 12,000 images of 32 px for 4 epochs (quick: 2,000 for 2). Imagenette:
    /// all 9,469 photos at 64 px for 6 epochs (quick: 1,000 photos, 500 for evaluation, 1 epoch).
    pub fn new(data: ScratchData, quick: bool) -> Self {
        match (data, quick) {
            (ScratchData::FashionMnist, true) => {
                Self { data, n_train: Some(2000), n_eval: None, epochs: 2, size: 32 }
            }
            (ScratchData::FashionMnist, false) => {
                Self { data, n_train: Some(12000), n_eval: None, epochs: 4, size: 32 }
            }
            (ScratchData::Imagenette, true) => {
                Self { data, n_train: Some(1000), n_eval: Some(500), epochs: 1, size: 64 }
            }
            (ScratchData::Imagenette, false) => {
                Self { data, n_train: None, n_eval: None, epochs: 6, size: 64 }
            }
        }
    }

    /// The training and evaluation sets (Imagenette is downloaded into the cache folder the
    /// first time; see [`crate::weights::cache_dir`]).
    pub fn datasets(&self) -> Result<(crate::data::Dataset, crate::data::Dataset)> {
        Ok((self.dataset(crate::data::Split::Train)?, self.dataset(crate::data::Split::Eval)?))
    }

    /// One split of the run's data.
    pub fn dataset(&self, split: crate::data::Split) -> Result<crate::data::Dataset> {
        use crate::data::{fashion_mnist, imagenette, imagenette_remote, Split};
        let n = if split == Split::Train { self.n_train } else { self.n_eval };
        match self.data {
            ScratchData::FashionMnist => {
                let all = fashion_mnist(split, self.size)?;
                all.take(n.unwrap_or(usize::MAX))
            }
            ScratchData::Imagenette => {
                let cache = crate::weights::cache_dir().join("datasets");
                imagenette(split, self.size, n, &imagenette_remote(), &cache)
            }
        }
    }

    /// `simple-cnn-fashion-mnist-32px-n12000-seed0`: names the checkpoint and the weights.
    pub fn tag(&self, seed: u64) -> String {
        let n = self.n_train.map_or("all".to_string(), |n| n.to_string());
        format!("simple-cnn-{}-{}px-n{n}-seed{seed}", self.data.slug(), self.size)
    }

    /// Where chapter 1 saves the trained weights.
    pub fn weights_path(&self, seed: u64) -> std::path::PathBuf {
        crate::work_dir().join("models").join(format!("{}.safetensors", self.tag(seed)))
    }

    /// The SimpleCNN that chapter 1 trained with this run and seed, or an error that says how
    /// to make it.
    pub fn load_trained(&self, seed: u64, quick: bool, device: &Device) -> Result<SimpleCnn> {
        let path = self.weights_path(seed);
        if !path.is_file() {
            let mut flags = String::new();
            if quick {
                flags.push_str(" --quick");
            }
            if self.data != ScratchData::default() {
                flags.push_str(&format!(" --dataset {}", self.data.slug()));
            }
            if seed != 0 {
                flags.push_str(&format!(" --seed {seed}"));
            }
            let dashes = if flags.is_empty() { "" } else { " --" };
            bail!(
                "no trained SimpleCNN at {}: train it first with `cargo run --release -p chapter-01-cnn-basics{dashes}{flags}`",
                path.display(),
            );
        }
        let store = crate::weights::WeightStore::load(&path, device)?;
        let names: Vec<String> = store.names().map(str::to_owned).collect();
        let tensors = names.iter().map(|n| (n.clone(), store.raw(n).expect("listed").clone())).collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        SimpleCnn::new(vb, self.data.classes(), self.size, crate::rng::seeded(seed))
    }
}

fn info(name: &str, channels: usize, size: usize, description: &str) -> LayerInfo {
    LayerInfo { name: name.into(), channels, height: size, width: size, description: description.into() }
}

impl Model for SimpleCnn {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// ImageNet mean/std normalisation, as in the course.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        imagenet_normalize(rgb01)
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        self.net.run(x, taps)
    }
}
