//! VGG16 (Simonyan & Zisserman 2015) with torchvision's ImageNet weights, as timm publishes
//! them on the Hugging Face hub (`timm/vgg16.tv_in1k`: `features.N`, `pre_logits.fc1` as a
//! 7×7 convolution, `pre_logits.fc2`, `head.fc`); torchvision's own names (`classifier.0`,
//! `.3`, `.6`) load too.
//!
//! Layer names are torchvision's module paths with `_`, as Lucent writes them: `features_N`
//! for each of the 31 modules of `features` (a convolution's raw output at its index, its ReLU
//! at the next, the five max pools at 4, 9, 16, 23 and 30), then `classifier_0` … `classifier_6`
//! (linear, ReLU, dropout, linear, ReLU, dropout, linear; dropouts are identities in
//! evaluation), with the alias `logits`.

use anyhow::Result;
use candle_core::Tensor;

use super::{Activations, LayerInfo, Model, ModelCard, Recorder, Taps};
use crate::ops;
use crate::weights::{WeightSpec, WeightStore};

pub const WEIGHTS: WeightSpec = WeightSpec {
    model: "vgg16",
    file_name: "vgg16.tv_in1k.safetensors",
    hub_repo: "timm/vgg16.tv_in1k",
    hub_file: "model.safetensors",
    hub_revision: "main",
    url: None,
    make: None,
};

/// Output channels of the 13 convolutions; 0 marks a max pool.
const CONFIG: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

enum Feature {
    /// Convolution (its index in `features`), then ReLU at the next index.
    Conv {
        index: usize,
        weight: Tensor,
        bias: Tensor,
    },
    Pool {
        index: usize,
    },
}

/// VGG16 in the zoo.
pub const ENTRY: super::ModelEntry = super::ModelEntry {
    name: "vgg16",
    aliases: &[],
    summary: "VGG16, torchvision's ImageNet weights (timm/vgg16.tv_in1k on the hub)",
    weights: WEIGHTS,
    rename: None,
    build: |store| Ok(Box::new(Vgg16::from_store(&store)?)),
    prefixes: layer_prefixes,
};

/// VGG16's roles (convolutions by their ReLU's index, as Lucent names them).
pub const ROLES: super::Roles = super::Roles {
    showcase_unit: "features_22:7",
    depth: &[
        "features_1",
        "features_6",
        "features_11",
        "features_15",
        "features_20",
        "features_25",
        "features_29",
    ],
    cam_ladder: &["features_15", "features_22", "features_25", "features_27", "features_29"],
    last_conv: "features_29",
    cascade: &[
        "logits",
        "classifier_3",
        "classifier_0",
        "features_28",
        "features_26",
        "features_24",
        "features_21",
        "features_19",
        "features_17",
        "features_14",
        "features_12",
        "features_10",
        "features_7",
        "features_5",
        "features_2",
        "features_0",
    ],
    ..super::Roles::EMPTY
};

/// The weight-name prefixes of a layer: its convolution (a ReLU names the convolution before
/// it), or a linear layer under torchvision's and timm's names.
fn layer_prefixes(layer: &str) -> Vec<String> {
    let index = |l: &str, p: &str| l.strip_prefix(p).and_then(|i| i.parse::<usize>().ok());
    if let Some(i) = index(layer, "features_") {
        return match (conv_at(i), i > 0 && conv_at(i - 1)) {
            (true, _) => vec![format!("features.{i}.")],
            (false, true) => vec![format!("features.{}.", i - 1)],
            (false, false) => Vec::new(), // a max pool has no weights
        };
    }
    match index(layer, "classifier_").or((layer == "logits").then_some(6)) {
        Some(0 | 1) => vec!["classifier.0.".into(), "pre_logits.fc1.".into()],
        Some(3 | 4) => vec!["classifier.3.".into(), "pre_logits.fc2.".into()],
        Some(6) => vec!["classifier.6.".into(), "head.fc.".into()],
        _ => Vec::new(),
    }
}

/// Whether index `i` of `features` is a convolution.
fn conv_at(i: usize) -> bool {
    let mut index = 0;
    for &c in &CONFIG {
        if index == i {
            return c != 0;
        }
        index += if c == 0 { 1 } else { 2 };
    }
    false
}

pub struct Vgg16 {
    features: Vec<Feature>,
    fc: [(Tensor, Tensor); 3],
    card: ModelCard,
}

/// The classifier: timm's `head.fc` is a plain linear layer, unlike `pre_logits`.
fn linear_head(store: &WeightStore, timm: bool) -> Result<(Tensor, Tensor)> {
    let name = if timm { "head.fc" } else { "classifier.6" };
    Ok((store.get(&format!("{name}.weight"), &[1000, 4096])?, store.get(&format!("{name}.bias"), &[1000])?))
}

impl Vgg16 {
    pub fn from_store(store: &WeightStore) -> Result<Self> {
        let mut features = Vec::new();
        let (mut index, mut c_in) = (0, 3);
        for &c in &CONFIG {
            if c == 0 {
                features.push(Feature::Pool { index });
                index += 1;
            } else {
                let weight = store.get(&format!("features.{index}.weight"), &[c, c_in, 3, 3])?;
                let bias = store.get(&format!("features.{index}.bias"), &[c])?;
                features.push(Feature::Conv { index, weight, bias });
                index += 2;
                c_in = c;
            }
        }
        let timm = store.contains("pre_logits.fc1.weight");
        // timm stores the three linear layers as convolutions: (out, in) becomes (out, c, k, k).
        let linear = |timm_name: &str, tv_name: &str, out: usize, inp: usize| -> Result<(Tensor, Tensor)> {
            Ok(if timm {
                let k = if inp == 512 * 7 * 7 { 7 } else { 1 };
                let w = store
                    .get(&format!("{timm_name}.weight"), &[out, inp / (k * k), k, k])?
                    .reshape((out, inp))?;
                (w, store.get(&format!("{timm_name}.bias"), &[out])?)
            } else {
                (
                    store.get(&format!("{tv_name}.weight"), &[out, inp])?,
                    store.get(&format!("{tv_name}.bias"), &[out])?,
                )
            })
        };
        let fc = [
            linear("pre_logits.fc1", "classifier.0", 4096, 512 * 7 * 7)?,
            linear("pre_logits.fc2", "classifier.3", 4096, 4096)?,
            linear_head(store, timm)?,
        ];
        let card = ModelCard {
            name: "vgg16".into(),
            input_size: 224,
            layers: layer_table(),
            classes: crate::imagenet::classes(),
            roles: &ROLES,
        };
        Ok(Self { features, fc, card })
    }
}

fn layer_table() -> Vec<LayerInfo> {
    let mut out = Vec::new();
    let mut add = |name: String, channels: usize, size: usize, description: &str| {
        out.push(LayerInfo { name, channels, height: size, width: size, description: description.into() })
    };
    let (mut index, mut size, mut c_prev) = (0, 224, 3);
    for &c in &CONFIG {
        if c == 0 {
            size /= 2;
            add(format!("features_{index}"), c_prev, size, "2×2 max pool");
            index += 1;
        } else {
            add(format!("features_{index}"), c, size, "3×3 conv (before the ReLU)");
            add(format!("features_{}", index + 1), c, size, "ReLU");
            index += 2;
            c_prev = c;
        }
    }
    add("classifier_0".into(), 4096, 1, "linear 25088 → 4096 (on the 7×7 average pool)");
    add("classifier_1".into(), 4096, 1, "ReLU");
    add("classifier_3".into(), 4096, 1, "linear 4096 → 4096");
    add("classifier_4".into(), 4096, 1, "ReLU");
    add("classifier_6".into(), 1000, 1, "linear → 1000 ImageNet logits");
    add("logits".into(), 1000, 1, "alias of classifier_6");
    out
}

impl Model for Vgg16 {
    fn card(&self) -> &ModelCard {
        &self.card
    }

    /// torchvision's ImageNet normalisation.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        crate::imagenet::normalize(rgb01)
    }

    fn first_conv(&self) -> Result<Tensor> {
        match &self.features[0] {
            Feature::Conv { weight, .. } => Ok(weight.clone()),
            Feature::Pool { .. } => anyhow::bail!("vgg16: features.0 is not a convolution"),
        }
    }

    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        let mut r = Recorder::new(self, taps)?;
        let mut x = x.clone();
        for f in &self.features {
            if r.done() {
                return Ok(r.finish());
            }
            x = match f {
                Feature::Conv { index, weight, bias } => {
                    let pre = r.see(
                        &format!("features_{index}"),
                        ops::conv2d_padded(&x, weight, Some(bias), 1, [1; 4])?,
                    )?;
                    r.see(&format!("features_{}", index + 1), pre.relu()?)?
                }
                Feature::Pool { index } => {
                    r.see(&format!("features_{index}"), ops::max_pool2d(&x, 2, 2, 0, false)?)?
                }
            };
        }
        // torchvision's adaptive average pool to 7 × 7 (the identity at 224 px).
        let x = ops::adaptive_avg_pool2d(&x, 7)?.flatten_from(1)?;
        let [(w1, b1), (w2, b2), (w3, b3)] = &self.fc;
        let h = r.see("classifier_0", x.matmul(&w1.t()?)?.broadcast_add(b1)?)?;
        let h = r.see("classifier_1", h.relu()?)?;
        let h = r.see("classifier_3", h.matmul(&w2.t()?)?.broadcast_add(b2)?)?;
        let h = r.see("classifier_4", h.relu()?)?;
        let logits = r.see("classifier_6", h.matmul(&w3.t()?)?.broadcast_add(b3)?)?;
        r.see("logits", logits)?;
        Ok(r.finish())
    }
}
