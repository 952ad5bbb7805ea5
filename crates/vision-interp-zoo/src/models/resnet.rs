//! ResNet-18 and ResNet-50 (He et al. 2016) in torchvision's layout (v1.5: the stride of a
//! bottleneck sits on its 3×3 convolution), with torchvision's ImageNet weights as timm
//! publishes them on the Hugging Face hub (`timm/resnet18.tv_in1k`, `timm/resnet50.tv_in1k`;
//! the tensor names are torchvision's).
//!
//! Layer names follow torchvision's module paths with `_` for `.`, as Lucent writes them:
//! `bn1` and `relu` (the stem), `maxpool`, every block `layer3_1` (after the residual sum and
//! its ReLU) with `layer3` the last block of a stage, inside a block `layer3_1_bn1`, `_bn2`
//! (`_bn3`), the BatchNorm outputs before their ReLU (each convolution is folded with its
//! BatchNorm at load time, so the raw `conv` outputs are not available), `avgpool`, and `fc`
//! (with the alias `logits`).

use anyhow::Result;
use candle_core::{Tensor, D};

use super::{Activations, FoldedConv, LayerInfo, Model, ModelCard, Recorder, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

const BN_EPS: f64 = 1e-5;

/// Depth, blocks per stage, and whether blocks are bottlenecks.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub name: &'static str,
    pub roles: &'static super::Roles,
    pub blocks: [usize; 4],
    pub bottleneck: bool,
    pub weights: WeightSpec,
}

pub const RESNET18: Variant = Variant {
    name: "resnet18",
    roles: &super::Roles {
        showcase_unit: "layer3_1:7",
        depth: &[
            "maxpool", "layer1_1", "layer2_0", "layer2_1", "layer3_0", "layer3_1", "layer4_0", "layer4_1",
        ],
        cam_ladder: &["layer2_1", "layer3_0", "layer3_1", "layer4_0", "layer4_1"],
        last_conv: "layer4_1",
        cascade: &[
            "logits", "layer4_1", "layer4_0", "layer3_1", "layer3_0", "layer2_1", "layer2_0", "layer1_1",
            "layer1_0", "bn1",
        ],
        ..super::Roles::EMPTY
    },
    blocks: [2, 2, 2, 2],
    bottleneck: false,
    weights: WeightSpec {
        model: "resnet18",
        file_name: "resnet18.tv_in1k.safetensors",
        hub_repo: "timm/resnet18.tv_in1k",
        hub_file: "model.safetensors",
        hub_revision: "main",
        url: None,
        make: None,
    },
};

pub const RESNET50: Variant = Variant {
    name: "resnet50",
    roles: &super::Roles {
        showcase_unit: "layer3_3:7",
        depth: &[
            "maxpool", "layer1_2", "layer2_1", "layer2_3", "layer3_1", "layer3_3", "layer3_5", "layer4_2",
        ],
        cam_ladder: &["layer2_3", "layer3_2", "layer3_5", "layer4_0", "layer4_2"],
        last_conv: "layer4_2",
        cascade: &["logits", "layer4", "layer3", "layer2", "layer1", "bn1"],
        ..super::Roles::EMPTY
    },
    blocks: [3, 4, 6, 3],
    bottleneck: true,
    weights: WeightSpec {
        model: "resnet50",
        file_name: "resnet50.tv_in1k.safetensors",
        hub_repo: "timm/resnet50.tv_in1k",
        hub_file: "model.safetensors",
        hub_revision: "main",
        url: None,
        make: None,
    },
};

/// A convolution with its BatchNorm folded in.
/// ResNet-18 in the zoo.
pub const RESNET18_ENTRY: super::ModelEntry = super::ModelEntry {
    name: "resnet18",
    aliases: &[],
    summary: "ResNet-18, torchvision's ImageNet weights (timm/resnet18.tv_in1k on the hub)",
    weights: RESNET18.weights,
    rename: None,
    build: |store| Ok(Box::new(ResNet::from_store(RESNET18, &store)?)),
    prefixes: layer_prefixes,
};

/// ResNet-50 in the zoo.
pub const RESNET50_ENTRY: super::ModelEntry = super::ModelEntry {
    name: "resnet50",
    aliases: &[],
    summary: "ResNet-50, torchvision's ImageNet weights (timm/resnet50.tv_in1k on the hub)",
    weights: RESNET50.weights,
    rename: None,
    build: |store| Ok(Box::new(ResNet::from_store(RESNET50, &store)?)),
    prefixes: layer_prefixes,
};

/// The weight-name prefixes of a layer: the stem, a stage (`layer3`), a block (`layer3_1`), one
/// of its convolutions (`layer3_1_bn2`), or the classifier.
fn layer_prefixes(layer: &str) -> Vec<String> {
    match layer {
        "bn1" | "relu" | "maxpool" => vec!["conv1.".into()],
        "avgpool" | "fc" | "logits" => vec!["fc.".into()],
        _ => {
            let parts: Vec<&str> = layer.split('_').collect();
            match parts.as_slice() {
                [stage] => vec![format!("{stage}.")],
                [stage, block] => vec![format!("{stage}.{block}.")],
                [stage, block, bn] => vec![format!("{stage}.{block}.conv{}.", bn.trim_start_matches("bn"))],
                _ => Vec::new(),
            }
        }
    }
}

/// A convolution with its BatchNorm folded in, loaded with ResNet's eps.
struct Conv;

impl Conv {
    fn load(
        store: &WeightStore,
        prefix: &str,
        bn: &str,
        shape: [usize; 4],
        stride: usize,
    ) -> Result<FoldedConv> {
        FoldedConv::load(store, prefix, bn, shape, stride, BN_EPS)
    }
}

struct Block {
    name: String,
    convs: Vec<FoldedConv>,
    downsample: Option<FoldedConv>,
}

/// A ResNet with named layers.
pub struct ResNet {
    stem: FoldedConv,
    blocks: Vec<Block>,
    fc_weight: Tensor,
    fc_bias: Tensor,
    card: ModelCard,
}

/// Channels of the four stages' 3×3 convolutions.
const WIDTHS: [usize; 4] = [64, 128, 256, 512];

impl ResNet {
    pub fn from_store(variant: Variant, store: &WeightStore) -> Result<Self> {
        let expansion = if variant.bottleneck { 4 } else { 1 };
        let stem = Conv::load(store, "conv1", "bn1", [64, 3, 7, 7], 2)?;
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (stage, (&n, &width)) in variant.blocks.iter().zip(&WIDTHS).enumerate() {
            for i in 0..n {
                let p = format!("layer{}.{i}", stage + 1);
                let stride = if i == 0 && stage > 0 { 2 } else { 1 };
                let c_out = width * expansion;
                let conv = |name: &str, shape: [usize; 4], s: usize| -> Result<FoldedConv> {
                    Conv::load(store, &format!("{p}.conv{name}"), &format!("{p}.bn{name}"), shape, s)
                };
                let convs = if variant.bottleneck {
                    vec![
                        conv("1", [width, c_in, 1, 1], 1)?,
                        conv("2", [width, width, 3, 3], stride)?,
                        conv("3", [c_out, width, 1, 1], 1)?,
                    ]
                } else {
                    vec![conv("1", [width, c_in, 3, 3], stride)?, conv("2", [width, width, 3, 3], 1)?]
                };
                let downsample = if stride != 1 || c_in != c_out {
                    let ds = format!("{p}.downsample");
                    Some(Conv::load(
                        store,
                        &format!("{ds}.0"),
                        &format!("{ds}.1"),
                        [c_out, c_in, 1, 1],
                        stride,
                    )?)
                } else {
                    None
                };
                blocks.push(Block { name: format!("layer{}_{i}", stage + 1), convs, downsample });
                c_in = c_out;
            }
        }
        Ok(Self {
            stem,
            blocks,
            fc_weight: store.get("fc.weight", &[1000, c_in])?,
            fc_bias: store.get("fc.bias", &[1000])?,
            card: ModelCard {
                name: variant.name.into(),
                input_size: 224,
                layers: layer_table(variant),
                classes: crate::imagenet::classes(),
                roles: variant.roles,
            },
        })
    }
}

fn layer_table(v: Variant) -> Vec<LayerInfo> {
    let mut out = Vec::new();
    let mut add = |name: String, channels: usize, size: usize, description: &str| {
        out.push(LayerInfo { name, channels, height: size, width: size, description: description.into() })
    };
    add("bn1".into(), 64, 112, "7×7 conv, stride 2, BatchNorm");
    add("relu".into(), 64, 112, "ReLU of the stem");
    add("maxpool".into(), 64, 56, "3×3 max pool, stride 2");
    let expansion = if v.bottleneck { 4 } else { 1 };
    let mut size = 56;
    for (stage, (&n, &width)) in v.blocks.iter().zip(&WIDTHS).enumerate() {
        for i in 0..n {
            if i == 0 && stage > 0 {
                size /= 2;
            }
            let p = format!("layer{}_{i}", stage + 1);
            let inner = if v.bottleneck { vec![width, width, width * expansion] } else { vec![width, width] };
            for (j, c) in inner.iter().enumerate() {
                add(format!("{p}_bn{}", j + 1), *c, size, "convolution and BatchNorm (before the ReLU)");
            }
            add(p.clone(), width * expansion, size, "block output: residual sum, ReLU");
            if i == n - 1 {
                add(format!("layer{}", stage + 1), width * expansion, size, "last block of the stage");
            }
        }
    }
    add("avgpool".into(), 512 * expansion, 1, "global average pool");
    add("fc".into(), 1000, 1, "linear → 1000 ImageNet logits");
    add("logits".into(), 1000, 1, "alias of fc");
    out
}

impl Model for ResNet {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// torchvision's ImageNet normalisation.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        crate::imagenet::normalize(rgb01)
    }

    fn first_conv(&self) -> Result<Tensor> {
        Ok(self.stem.weight.clone())
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        let mut r = Recorder::new(self, taps)?;
        let x = r.see("bn1", self.stem.forward(x)?)?;
        let x = r.see("relu", x.relu()?)?;
        let mut x = r.see("maxpool", ops::max_pool2d(&x, 3, 2, 1, false)?)?;
        for (b, block) in self.blocks.iter().enumerate() {
            if r.done() {
                return Ok(r.finish());
            }
            let mut h = x.clone();
            for (j, conv) in block.convs.iter().enumerate() {
                h = r.see(&format!("{}_bn{}", block.name, j + 1), conv.forward(&h)?)?;
                if j + 1 < block.convs.len() {
                    h = h.relu()?;
                }
            }
            let shortcut = match &block.downsample {
                Some(ds) => ds.forward(&x)?,
                None => x.clone(),
            };
            x = r.see(&block.name, (h + shortcut)?.relu()?)?;
            let last_of_stage = self.blocks.get(b + 1).is_none_or(|n| n.name[..6] != block.name[..6]);
            if last_of_stage {
                x = r.see(&block.name[..6], x)?;
            }
        }
        let pooled = r.see("avgpool", x.mean(D::Minus1)?.mean(D::Minus1)?)?;
        let logits = pooled.matmul(&self.fc_weight.t()?)?.broadcast_add(&self.fc_bias)?;
        let logits = r.see("fc", logits)?;
        r.see("logits", logits)?;
        Ok(r.finish())
    }
}
