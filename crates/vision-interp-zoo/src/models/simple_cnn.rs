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

/// SimpleCNN's roles.
pub const ROLES: super::Roles = super::Roles {
    showcase_unit: "conv3:0",
    depth: &["conv1", "conv2", "conv3"],
    cam_ladder: &["conv1", "block1", "conv2", "block2", "conv3"],
    last_conv: "conv3",
    cascade: &["logits", "fc1", "conv3", "conv2", "conv1"],
    ..super::Roles::EMPTY
};

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
    // ANCHOR: architecture
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
        let card = ModelCard { name: "simple-cnn".into(), input_size, layers, classes, roles: &ROLES };
        Ok(Self { convs, blocks, fc1, fc2, net, card, rng: Arc::new(Mutex::new(rng)) })
    }
    // ANCHOR_END: architecture

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

fn info(name: &str, channels: usize, size: usize, description: &str) -> LayerInfo {
    LayerInfo { name: name.into(), channels, height: size, width: size, description: description.into() }
}

impl Model for SimpleCnn {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// ImageNet mean/std normalisation, as in the course.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        crate::imagenet::normalize(rgb01)
    }

    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.conv_weight(0).clone())
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        self.net.run(x, taps)
    }
}
