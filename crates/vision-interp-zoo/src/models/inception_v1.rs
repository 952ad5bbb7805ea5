//! InceptionV1 (GoogLeNet, Szegedy et al. 2015) as Lucid and Lucent use it: the TensorFlow
//! "inception5h" graph of OpenAI Microscope, Distill's *Feature Visualization* and *Circuits*,
//! with Lucent's layer names and semantics.
//!
//! - Input `x·255 − 117` for RGB `x` in [0, 1]; 1008 outputs (`softmax2`).
//! - Stem: `conv2d0` (7×7, stride 2, zero padding 2 before and 3 after), `maxpool0` (3×3,
//!   stride 2, −∞ padding of 1 after), local response normalisation, `conv2d1` (1×1),
//!   `conv2d2` (3×3), local response normalisation, `maxpool1`.
//! - Nine mixed blocks `mixed3a` … `mixed5b`: branches `1x1`, `3x3_bottleneck` → `3x3`,
//!   `5x5_bottleneck` → `5x5`, `pool` (3×3 max, stride 1) → `pool_reduce`, concatenated;
//!   `maxpool4` after `mixed3b` and `maxpool10` after `mixed4e`.
//! - Head: 7×7 average pool, `softmax2_pre_activation_matmul` (1024 → 1008), `softmax2`.
//!
//! Every convolution is named `<layer>_pre_relu_conv` (its raw output) and `<layer>` (after the
//! ReLU); `mixedXY` is the concatenation of the ReLU'd branches. As in Lucent the ReLUs are
//! *redirected* by default (see [`ops::redirected_relu`]); [`Model::set_redirected_relu`]
//! switches to plain ReLUs. `logits` is an alias of `softmax2_pre_activation_matmul`.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor, D};

use super::{Activations, LayerInfo, Model, ModelCard, Recorder, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

/// Where the weights come from: Lucent's `inception5h.pth` (a PyTorch state dict converted from
/// Lucid's TensorFlow graph), downloaded into the cache on first use; or `--weights`.
pub const WEIGHTS: WeightSpec = WeightSpec {
    model: "inceptionv1",
    file_name: "inception5h.pth",
    hub_repo: "",
    hub_file: "",
    hub_revision: "",
    url: Some("https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"),
    make: None,
};

/// A mixed block: name, input channels, and the output channels of `1x1`,
/// `3x3_bottleneck`, `3x3`, `5x5_bottleneck`, `5x5`, `pool_reduce`.
pub const BLOCKS: [(&str, usize, [usize; 6]); 9] = [
    ("mixed3a", 192, [64, 96, 128, 16, 32, 32]),
    ("mixed3b", 256, [128, 128, 192, 32, 96, 64]),
    ("mixed4a", 480, [192, 96, 204, 16, 48, 64]),
    ("mixed4b", 508, [160, 112, 224, 24, 64, 64]),
    ("mixed4c", 512, [128, 128, 256, 24, 64, 64]),
    ("mixed4d", 512, [112, 144, 288, 32, 64, 64]),
    ("mixed4e", 528, [256, 160, 320, 32, 128, 128]),
    ("mixed5a", 832, [256, 160, 320, 48, 128, 128]),
    ("mixed5b", 832, [384, 192, 384, 48, 128, 128]),
];

/// Output classes (index 0 is a background class; 1001–1007 are unused).
pub const CLASSES: usize = 1008;

/// Every convolution: `(layer, in, out, kernel)`, in Lucent's order.
pub fn convolutions() -> Vec<(String, usize, usize, usize)> {
    let mut v =
        vec![("conv2d0".into(), 3, 64, 7), ("conv2d1".into(), 64, 64, 1), ("conv2d2".into(), 64, 192, 3)];
    for (name, c_in, [c1, b3, c3, b5, c5, cp]) in BLOCKS {
        v.push((format!("{name}_1x1"), c_in, c1, 1));
        v.push((format!("{name}_3x3_bottleneck"), c_in, b3, 1));
        v.push((format!("{name}_5x5_bottleneck"), c_in, b5, 1));
        v.push((format!("{name}_pool_reduce"), c_in, cp, 1));
        v.push((format!("{name}_3x3"), b3, c3, 3));
        v.push((format!("{name}_5x5"), b5, c5, 5));
    }
    v
}

struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    pads: [usize; 4],
}

/// InceptionV1 with Lucent's named layers.
/// InceptionV1 in the zoo.
pub const ENTRY: super::ModelEntry = super::ModelEntry {
    name: "inceptionv1",
    aliases: &["inception5h", "googlenet-lucid"],
    summary: "InceptionV1 as in Lucid and Lucent (inception5h.pth, downloaded once or --weights)",
    weights: WEIGHTS,
    rename: None,
    build: |store| Ok(Box::new(InceptionV1::from_store(&store)?)),
    prefixes: layer_prefixes,
};

/// InceptionV1's roles: the units and layers of Distill's articles.
pub const ROLES: super::Roles = super::Roles {
    showcase_unit: "mixed4a:476",
    depth: &["conv2d0", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4c", "mixed4e", "mixed5b"],
    cam_ladder: &["mixed3b", "mixed4b", "mixed4d", "mixed5a", "mixed5b"],
    last_conv: "mixed5b",
    cascade: &[
        "logits", "mixed5b", "mixed5a", "mixed4e", "mixed4d", "mixed4c", "mixed4b", "mixed4a", "mixed3b",
        "mixed3a", "conv2d2", "conv2d1", "conv2d0",
    ],
    circuit: Some(("mixed4a", "mixed4b_1x1", 0)),
};

/// The weight-name prefixes of a layer: a mixed block's branches, one convolution, or the
/// classifier.
fn layer_prefixes(layer: &str) -> Vec<String> {
    let conv = layer.trim_end_matches("_pre_relu_conv");
    if matches!(layer, "logits" | "softmax2" | "softmax2_pre_activation_matmul") {
        vec!["softmax2_pre_activation_matmul.".into()]
    } else if BLOCKS.iter().any(|(b, _, _)| *b == layer) {
        vec![format!("{layer}_")]
    } else {
        vec![format!("{conv}_pre_relu_conv.")]
    }
}

pub struct InceptionV1 {
    convs: HashMap<String, Conv>,
    fc_weight: Tensor,
    fc_bias: Tensor,
    card: ModelCard,
    redirected: std::sync::atomic::AtomicBool,
}

impl InceptionV1 {
    /// Finds the weights (see [`WEIGHTS`]) and builds the model on `device`.
    pub fn load(weights: Option<&Path>, device: &Device) -> Result<Self> {
        Self::from_store(&ENTRY.store(weights, device)?)
    }

    /// Builds the model from tensors named as in `inception5h.pth`
    /// (`mixed4a_3x3_pre_relu_conv.weight`, `softmax2_pre_activation_matmul.bias`, …).
    pub fn from_store(store: &WeightStore) -> Result<Self> {
        let mut convs = HashMap::new();
        for (name, c_in, c_out, k) in convolutions() {
            let p = format!("{name}_pre_relu_conv");
            let (stride, pads) = if name == "conv2d0" { (2, [2, 3, 2, 3]) } else { (1, [k / 2; 4]) };
            let conv = Conv {
                weight: store.get(&format!("{p}.weight"), &[c_out, c_in, k, k])?,
                bias: store.get(&format!("{p}.bias"), &[c_out])?,
                stride,
                pads,
            };
            convs.insert(name, conv);
        }
        Ok(Self {
            convs,
            fc_weight: store.get("softmax2_pre_activation_matmul.weight", &[CLASSES, 1024])?,
            fc_bias: store.get("softmax2_pre_activation_matmul.bias", &[CLASSES])?,
            card: ModelCard {
                name: "inceptionv1".into(),
                input_size: 224,
                layers: layer_table(),
                classes: class_names()?,
                roles: &ROLES,
            },
            redirected: std::sync::atomic::AtomicBool::new(true),
        })
    }

    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        let redirected = self.redirected.load(std::sync::atomic::Ordering::Relaxed);
        Ok(if redirected { ops::redirected_relu(x)? } else { x.relu()? })
    }

    /// Convolution `name` and its ReLU, both offered to the recorder.
    fn conv_relu(&self, r: &mut Recorder, name: &str, x: &Tensor) -> Result<Tensor> {
        Ok(self.conv_pre_relu(r, name, x)?.1)
    }

    /// Convolution `name` and its ReLU: `(before, after)`.
    fn conv_pre_relu(&self, r: &mut Recorder, name: &str, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let c = self.convs.get(name).with_context(|| format!("no convolution `{name}`"))?;
        let pre = ops::conv2d_padded(x, &c.weight, Some(&c.bias), c.stride, c.pads)?;
        let pre = r.see(&format!("{name}_pre_relu_conv"), pre)?;
        let post = r.see(name, self.relu(&pre)?)?;
        Ok((pre, post))
    }

    fn mixed(&self, r: &mut Recorder, name: &str, x: &Tensor) -> Result<Tensor> {
        let (p1, b1) = self.conv_pre_relu(r, &format!("{name}_1x1"), x)?;
        let b3 = self.conv_relu(r, &format!("{name}_3x3_bottleneck"), x)?;
        let (p3, b3) = self.conv_pre_relu(r, &format!("{name}_3x3"), &b3)?;
        let b5 = self.conv_relu(r, &format!("{name}_5x5_bottleneck"), x)?;
        let (p5, b5) = self.conv_pre_relu(r, &format!("{name}_5x5"), &b5)?;
        let pool = r.see(&format!("{name}_pool"), ops::max_pool2d(x, 3, 1, 1, false)?)?;
        let (pp, bp) = self.conv_pre_relu(r, &format!("{name}_pool_reduce"), &pool)?;
        // The four branches before their ReLUs, in the block's channel order (only computed
        // when asked for).
        if r.wants(&format!("{name}_pre_relu")) {
            r.see(&format!("{name}_pre_relu"), Tensor::cat(&[&p1, &p3, &p5, &pp], 1)?)?;
        }
        r.see(name, Tensor::cat(&[&b1, &b3, &b5, &bp], 1)?)
    }
}

/// 3×3 max pool, stride 2, with −∞ padding of one row and column after the input: the same
/// windows as PyTorch's `ceil_mode` without padding.
fn pool_s2(x: &Tensor) -> Result<Tensor> {
    Ok(ops::max_pool2d(x, 3, 2, 0, true)?)
}

/// Lucent's local response normalisation (size 9, α ≈ 1e-4, β 0.5, k 1).
fn lrn(x: &Tensor) -> Result<Tensor> {
    Ok(ops::local_response_norm(x, 9, 9.99999974738e-05, 0.5, 1.0)?)
}

impl Model for InceptionV1 {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    fn set_redirected_relu(&self, on: bool) -> Result<bool> {
        Ok(self.redirected.swap(on, std::sync::atomic::Ordering::Relaxed))
    }

    /// Lucid's convention: `x·255 − 117`, values in [−117, 138].
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        Ok(rgb01.affine(255.0, -117.0)?)
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        let mut r = Recorder::new(self, taps)?;
        let x = self.conv_relu(&mut r, "conv2d0", x)?;
        let x = lrn(&r.see("maxpool0", pool_s2(&x)?)?)?;
        let x = self.conv_relu(&mut r, "conv2d1", &x)?;
        let x = lrn(&self.conv_relu(&mut r, "conv2d2", &x)?)?;
        let mut x = r.see("maxpool1", pool_s2(&x)?)?;
        for (name, _, _) in BLOCKS {
            if r.done() {
                return Ok(r.finish());
            }
            x = self.mixed(&mut r, name, &x)?;
            match name {
                "mixed3b" => x = r.see("maxpool4", pool_s2(&x)?)?,
                "mixed4e" => x = r.see("maxpool10", pool_s2(&x)?)?,
                _ => {}
            }
        }
        if r.done() {
            return Ok(r.finish());
        }
        // Lucent: a 7×7 average pool and `reshape(-1, 1024)`, which for a 7×7 `mixed5b` (224-px
        // input) is the global average. For other sizes Lucent's reshape mixes channels of
        // different positions; here the global average is used for every size.
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?; // (N, 1024)
        let logits = pooled.matmul(&self.fc_weight.t()?)?.broadcast_add(&self.fc_bias)?;
        let logits = r.see("softmax2_pre_activation_matmul", logits)?;
        let logits = r.see("logits", logits)?;
        r.see("softmax2", candle_nn::ops::softmax(&logits, D::Minus1)?)?;
        Ok(r.finish())
    }

    /// The 1×1 convolutions that read a block's input: from the previous block (or
    /// `maxpool1`, `maxpool4`, `maxpool10`) to `mixedXY_1x1`, `_3x3_bottleneck` or
    /// `_5x5_bottleneck` (the pre-ReLU weights).
    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.convs.get("conv2d0").context("no conv2d0")?.weight.clone())
    }

    fn connection(&self, from: &str, to: &str) -> Result<Tensor> {
        let block = BLOCKS.iter().position(|(name, _, _)| to.starts_with(name));
        let input_of = |b: usize| match b {
            0 => "maxpool1",
            2 => "maxpool4",
            7 => "maxpool10",
            _ => BLOCKS[b - 1].0,
        };
        match (block, self.convs.get(to)) {
            (Some(b), Some(c)) if input_of(b) == from && c.weight.dim(2)? == 1 => {
                Ok(c.weight.reshape((c.weight.dim(0)?, c.weight.dim(1)?))?)
            }
            _ => anyhow::bail!("inceptionv1: no direct 1×1 connection from `{from}` to `{to}`"),
        }
    }
}

/// Every named layer with its channels and size at 224 px, in forward order.
fn layer_table() -> Vec<LayerInfo> {
    let mut v = Vec::new();
    let mut add = |name: &str, channels: usize, size: usize, description: &str| {
        v.push(LayerInfo {
            name: name.into(),
            channels,
            height: size,
            width: size,
            description: description.into(),
        })
    };
    let conv =
        |add: &mut dyn FnMut(&str, usize, usize, &str), name: &str, c: usize, size: usize, what: &str| {
            add(&format!("{name}_pre_relu_conv"), c, size, &format!("{what} (before the ReLU)"));
            add(name, c, size, &format!("{what}, ReLU"));
        };
    conv(&mut add, "conv2d0", 64, 112, "7×7 conv, stride 2");
    add("maxpool0", 64, 56, "3×3 max pool, stride 2");
    conv(&mut add, "conv2d1", 64, 56, "1×1 conv (after local response norm)");
    conv(&mut add, "conv2d2", 192, 56, "3×3 conv");
    add("maxpool1", 192, 28, "local response norm, 3×3 max pool, stride 2");
    let mut size = 28;
    for (name, c_in, [c1, b3, c3, b5, c5, cp]) in BLOCKS {
        conv(&mut add, &format!("{name}_1x1"), c1, size, "1×1 branch");
        conv(&mut add, &format!("{name}_3x3_bottleneck"), b3, size, "1×1 bottleneck of the 3×3 branch");
        conv(&mut add, &format!("{name}_3x3"), c3, size, "3×3 branch");
        conv(&mut add, &format!("{name}_5x5_bottleneck"), b5, size, "1×1 bottleneck of the 5×5 branch");
        conv(&mut add, &format!("{name}_5x5"), c5, size, "5×5 branch");
        add(&format!("{name}_pool"), c_in, size, "3×3 max pool, stride 1 (pool branch)");
        conv(&mut add, &format!("{name}_pool_reduce"), cp, size, "1×1 conv after the pool");
        add(&format!("{name}_pre_relu"), c1 + c3 + c5 + cp, size, "the four branches before their ReLUs");
        add(name, c1 + c3 + c5 + cp, size, "concatenation of the four branches");
        if name == "mixed3b" || name == "mixed4e" {
            size /= 2;
            add(
                if name == "mixed3b" { "maxpool4" } else { "maxpool10" },
                c1 + c3 + c5 + cp,
                size,
                "3×3 max pool, stride 2",
            );
        }
    }
    add("softmax2_pre_activation_matmul", CLASSES, 1, "global average pool, linear 1024 → 1008");
    add("softmax2", CLASSES, 1, "softmax over the 1008 classes");
    add("logits", CLASSES, 1, "alias of softmax2_pre_activation_matmul");
    v
}

/// The 1008 class names: Lucid's label list (`assets/inceptionv1_labels.txt`, lines
/// `wnid index name`) puts the 1000 ImageNet classes at indices 1…1000.
fn class_names() -> Result<Vec<String>> {
    let path = crate::asset("inceptionv1_labels.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut names: Vec<String> = (0..CLASSES).map(|i| format!("(class {i})")).collect();
    names[0] = "(background)".into();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (_, idx, name) = (parts.next(), parts.next(), parts.next());
        let idx: usize =
            idx.and_then(|i| i.parse().ok()).with_context(|| format!("bad label line `{line}`"))?;
        *names.get_mut(idx).with_context(|| format!("label index {idx} out of range"))? =
            name.unwrap_or_default().to_string();
    }
    Ok(names)
}

/// Every InceptionV1 tensor name and shape, in `inception5h.pth`'s naming.
pub fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut shapes: Vec<(String, Vec<usize>)> = Vec::new();
    for (name, c_in, c_out, k) in convolutions() {
        shapes.push((format!("{name}_pre_relu_conv.weight"), vec![c_out, c_in, k, k]));
        shapes.push((format!("{name}_pre_relu_conv.bias"), vec![c_out]));
    }
    shapes.push(("softmax2_pre_activation_matmul.weight".into(), vec![CLASSES, 1024]));
    shapes.push(("softmax2_pre_activation_matmul.bias".into(), vec![CLASSES]));
    shapes
}
