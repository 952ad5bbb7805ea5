//! GoogLeNet (Szegedy et al. 2015) as torchvision builds it, with torchvision's ImageNet
//! weights: the architecture of InceptionV1 retrained with BatchNorm, 1000 classes, and one
//! quirk kept for the weights' sake (the "5×5" branch holds a 3×3 convolution). Lucent's model
//! zoo tutorial renders it beside InceptionV1.
//!
//! Every convolution is torchvision's `BasicConv2d` (convolution without bias, BatchNorm with
//! eps = 1e-3, ReLU); the BatchNorm is folded into the convolution at load time. torchvision's
//! weights expect `transform_input`, which turns ImageNet-normalised input into `2x − 1`; here
//! that is the preprocessing itself. Layer names follow torchvision's module paths
//! (`conv1` … `inception4a` … `fc`), as Lucent writes them, plus each inception block's four
//! branches (`inception4a_branch1` … `_branch4`, after their ReLU, before the concatenation).
use anyhow::Result;
use candle_core::{Tensor, D};

use super::{Activations, FoldedConv, LayerInfo, Model, ModelCard, Recorder, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

const BN_EPS: f64 = 1e-3;

/// Where GoogLeNet's weights come from: torchvision's release (no Hugging Face copy of these
/// weights is known).
pub const WEIGHTS: WeightSpec = WeightSpec {
    model: "googlenet",
    file_name: "googlenet-1378be20.pth",
    hub_repo: "",
    hub_file: "",
    hub_revision: "",
    url: Some("https://download.pytorch.org/models/googlenet-1378be20.pth"),
    make: None,
};

/// GoogLeNet in the zoo.
pub const ENTRY: super::ModelEntry = super::ModelEntry {
    name: "googlenet",
    aliases: &["inception-v1-tv"],
    summary: "GoogLeNet, torchvision's ImageNet weights (download.pytorch.org)",
    weights: WEIGHTS,
    rename: None,
    build: |store| Ok(Box::new(GoogLeNet::from_store(&store)?)),
    prefixes: layer_prefixes,
};

/// GoogLeNet's roles; the showcase unit is the one Lucent's model-zoo
/// notebook renders (`inception4a:107`).
pub const ROLES: super::Roles = super::Roles {
    showcase_unit: "inception4a:107",
    depth: &[
        "conv1",
        "conv3",
        "inception3a",
        "inception3b",
        "inception4a",
        "inception4c",
        "inception4e",
        "inception5a",
        "inception5b",
    ],
    cam_ladder: &["inception4a", "inception4c", "inception4e", "inception5a", "inception5b"],
    last_conv: "inception5b",
    cascade: &[
        "logits",
        "inception5b",
        "inception5a",
        "inception4e",
        "inception4d",
        "inception4c",
        "inception4b",
        "inception4a",
        "inception3b",
        "inception3a",
        "conv3",
        "conv2",
        "conv1",
    ],
    circuit: Some(("inception5b", "logits", 282)),
};

/// An inception block's widths: 1×1; 3×3 reduce, 3×3; "5×5" reduce, "5×5" (a 3×3); pool
/// projection.
const BLOCKS: [(&str, [usize; 6]); 9] = [
    ("inception3a", [64, 96, 128, 16, 32, 32]),
    ("inception3b", [128, 128, 192, 32, 96, 64]),
    ("inception4a", [192, 96, 208, 16, 48, 64]),
    ("inception4b", [160, 112, 224, 24, 64, 64]),
    ("inception4c", [128, 128, 256, 24, 64, 64]),
    ("inception4d", [112, 144, 288, 32, 64, 64]),
    ("inception4e", [256, 160, 320, 32, 128, 128]),
    ("inception5a", [256, 160, 320, 32, 128, 128]),
    ("inception5b", [384, 192, 384, 48, 128, 128]),
];

/// The max pool after a block (`maxpool3` after `inception3b`, `maxpool4` after `inception4e`).
fn pool_after(block: &str) -> Option<(&'static str, usize)> {
    match block {
        "inception3b" => Some(("maxpool3", 3)),
        "inception4e" => Some(("maxpool4", 2)),
        _ => None,
    }
}

fn layer_prefixes(layer: &str) -> Vec<String> {
    match layer {
        "fc" | "logits" | "avgpool" => vec!["fc.".into()],
        l if l.starts_with("maxpool") => Vec::new(),
        l => vec![format!("{}.", l.replacen("_", ".", 1))],
    }
}

/// `BasicConv2d`: a convolution with its BatchNorm folded in, then a ReLU.
struct Conv(FoldedConv);

impl Conv {
    fn load(
        store: &WeightStore,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
    ) -> Result<Self> {
        let (conv, bn) = (format!("{prefix}.conv"), format!("{prefix}.bn"));
        Ok(Self(FoldedConv::load(store, &conv, &bn, [c_out, c_in, k, k], stride, BN_EPS)?))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward(x)?.relu()?)
    }
}

struct Inception {
    name: &'static str,
    branch1: Conv,
    branch2: [Conv; 2],
    branch3: [Conv; 2],
    branch4: Conv,
}

impl Inception {
    fn load(store: &WeightStore, name: &'static str, c_in: usize, w: [usize; 6]) -> Result<Self> {
        let c = |part: &str, c_in, c_out, k| Conv::load(store, &format!("{name}.{part}"), c_in, c_out, k, 1);
        Ok(Self {
            name,
            branch1: c("branch1", c_in, w[0], 1)?,
            branch2: [c("branch2.0", c_in, w[1], 1)?, c("branch2.1", w[1], w[2], 3)?],
            branch3: [c("branch3.0", c_in, w[3], 1)?, c("branch3.1", w[3], w[4], 3)?],
            branch4: c("branch4.1", c_in, w[5], 1)?,
        })
    }

    fn forward(&self, x: &Tensor, r: &mut Recorder) -> Result<Tensor> {
        let n = self.name;
        let b1 = r.see(&format!("{n}_branch1"), self.branch1.forward(x)?)?;
        let b2 = r.see(&format!("{n}_branch2"), self.branch2[1].forward(&self.branch2[0].forward(x)?)?)?;
        let b3 = r.see(&format!("{n}_branch3"), self.branch3[1].forward(&self.branch3[0].forward(x)?)?)?;
        let pooled = ops::max_pool2d(x, 3, 1, 1, true)?;
        let b4 = r.see(&format!("{n}_branch4"), self.branch4.forward(&pooled)?)?;
        r.see(n, Tensor::cat(&[b1, b2, b3, b4], 1)?)
    }
}

/// GoogLeNet with named layers.
pub struct GoogLeNet {
    stem: [Conv; 3],
    blocks: Vec<Inception>,
    fc_weight: Tensor,
    fc_bias: Tensor,
    card: ModelCard,
}

impl GoogLeNet {
    /// Builds the model from tensors named as in torchvision's state dict (the auxiliary
    /// classifiers' tensors, if present, are not used).
    pub fn from_store(store: &WeightStore) -> Result<Self> {
        let stem = [
            Conv::load(store, "conv1", 3, 64, 7, 2)?,
            Conv::load(store, "conv2", 64, 64, 1, 1)?,
            Conv::load(store, "conv3", 64, 192, 3, 1)?,
        ];
        let mut c_in = 192;
        let mut blocks = Vec::new();
        for (name, w) in BLOCKS {
            blocks.push(Inception::load(store, name, c_in, w)?);
            c_in = w[0] + w[2] + w[4] + w[5];
        }
        Ok(Self {
            stem,
            blocks,
            fc_weight: store.get("fc.weight", &[1000, 1024])?,
            fc_bias: store.get("fc.bias", &[1000])?,
            card: ModelCard {
                name: "googlenet".into(),
                input_size: 224,
                layers: layer_table(),
                classes: crate::imagenet::classes(),
                roles: &ROLES,
            },
        })
    }
}

fn layer_table() -> Vec<LayerInfo> {
    let mut out = Vec::new();
    let mut add = |name: &str, channels: usize, size: usize, description: String| {
        out.push(LayerInfo { name: name.into(), channels, height: size, width: size, description })
    };
    add("conv1", 64, 112, "7×7 conv, stride 2, BatchNorm, ReLU".into());
    add("maxpool1", 64, 56, "3×3 max pool, stride 2".into());
    add("conv2", 64, 56, "1×1 conv, BatchNorm, ReLU".into());
    add("conv3", 192, 56, "3×3 conv, BatchNorm, ReLU".into());
    add("maxpool2", 192, 28, "3×3 max pool, stride 2".into());
    let mut size = 28;
    for (name, w) in BLOCKS {
        let branches = [
            (w[0], "1×1 conv".to_owned()),
            (w[2], format!("1×1 conv to {}, 3×3 conv", w[1])),
            (w[4], format!("1×1 conv to {}, 3×3 conv (torchvision's 5×5 branch)", w[3])),
            (w[5], "3×3 max pool, 1×1 conv".to_owned()),
        ];
        for (i, (c, d)) in branches.iter().enumerate() {
            add(&format!("{name}_branch{}", i + 1), *c, size, format!("branch {}: {d}", i + 1));
        }
        add(name, w[0] + w[2] + w[4] + w[5], size, "inception block: the four branches concatenated".into());
        if let Some((pool, k)) = pool_after(name) {
            size /= 2;
            add(pool, w[0] + w[2] + w[4] + w[5], size, format!("{k}×{k} max pool, stride 2"));
        }
    }
    add("avgpool", 1024, 1, "global average pool".into());
    add("fc", 1000, 1, "linear → 1000 ImageNet logits".into());
    add("logits", 1000, 1, "alias of fc".into());
    out
}

impl Model for GoogLeNet {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// `2x − 1`: what torchvision's `transform_input` makes of ImageNet-normalised input.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        Ok(((rgb01 * 2.0)? - 1.0)?)
    }

    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.stem[0].0.weight.clone())
    }

    fn connection(&self, from: &str, to: &str) -> Result<Tensor> {
        if (from, to) == ("inception5b", "logits") || (from, to) == ("inception5b", "fc") {
            return Ok(self.fc_weight.clone());
        }
        anyhow::bail!("googlenet: no direct connection from `{from}` to `{to}` (known: inception5b → logits)")
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        let mut r = Recorder::new(self, taps)?;
        let x = r.see("conv1", self.stem[0].forward(x)?)?;
        let x = r.see("maxpool1", ops::max_pool2d(&x, 3, 2, 0, true)?)?;
        let x = r.see("conv2", self.stem[1].forward(&x)?)?;
        let x = r.see("conv3", self.stem[2].forward(&x)?)?;
        let mut x = r.see("maxpool2", ops::max_pool2d(&x, 3, 2, 0, true)?)?;
        for block in &self.blocks {
            if r.done() {
                return Ok(r.finish());
            }
            x = block.forward(&x, &mut r)?;
            if let Some((pool, k)) = pool_after(block.name) {
                x = r.see(pool, ops::max_pool2d(&x, k, 2, 0, true)?)?;
            }
        }
        let pooled = r.see("avgpool", x.mean(D::Minus1)?.mean(D::Minus1)?)?;
        let logits = pooled.matmul(&self.fc_weight.t()?)?.broadcast_add(&self.fc_bias)?;
        let logits = r.see("fc", logits)?;
        r.see("logits", logits)?;
        Ok(r.finish())
    }
}
