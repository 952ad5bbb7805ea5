//! Chapter 2, integrated gradients and Grad-CAM: `attribution::integrated_gradients`, exact on a
//! linear model and closer to the score difference with more steps on EfficientNet-Lite0; and
//! `attribution::grad_cam`'s map, against its definition on a model whose gradients are known.
use candle_core::{DType, Device, Module, Tensor};
use vision_interp::attribution::{grad_cam, integrated_gradients};
use vision_interp::imageio::photo;
use vision_interp::models::{self, Activations, LayerInfo, Model, ModelCard, Roles, Sequential, Taps};

mod common;
use common::{max_abs_diff, randn, values};

/// A small model whose gradients are known: its layers, with no preprocessing.
struct Toy {
    net: Sequential,
    card: ModelCard,
}

struct Matmul(Tensor);
impl Module for Matmul {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.flatten_from(1)?.matmul(&self.0.t()?)
    }
}

const ROLES: Roles = Roles {
    showcase_unit: "logits:0",
    depth: &["logits"],
    cam_ladder: &["logits"],
    last_conv: "logits",
    cascade: &["logits"],
    ..Roles::EMPTY
};

impl Model for Toy {
    fn card(&self) -> &ModelCard {
        &self.card
    }
    fn preprocess(&self, rgb01: &Tensor) -> anyhow::Result<Tensor> {
        Ok(rgb01.clone())
    }
    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> anyhow::Result<Activations> {
        self.net.run(x, taps)
    }
}

/// A linear classifier of 3 × 6 × 6 images into four classes: logits = W · x.
fn linear(w: &Tensor) -> Toy {
    let mut net = Sequential::new();
    net.push("logits", Matmul(w.clone()));
    let layer =
        LayerInfo { name: "logits".into(), channels: 4, height: 1, width: 1, description: String::new() };
    let classes = (0..4).map(|c| c.to_string()).collect();
    Toy {
        net,
        card: ModelCard { name: "linear".into(), input_size: 6, layers: vec![layer], classes, roles: &ROLES },
    }
}

#[test]
fn a_linear_model_gets_input_times_weight_which_adds_up_to_the_score_difference() {
    let w = randn(1, &[4, 108]);
    let m = linear(&w);
    let (img, baseline) =
        (randn(2, &[3, 6, 6]).abs().unwrap(), Tensor::zeros((3, 6, 6), DType::F32, &Device::Cpu).unwrap());
    let ig = integrated_gradients(&m, &img, &baseline, 2, 8, 3).unwrap();
    assert_eq!(ig.path_scores.len(), 9, "one score per point of the path, both ends included");
    // The gradient is W's row everywhere: IG = (x − x') ⊙ w exactly, whatever the steps.
    let want = (&img * w.get(2).unwrap().reshape((3, 6, 6)).unwrap()).unwrap();
    let d = max_abs_diff(&ig.attributions, &want);
    assert!(d < 1e-5, "IG differs from x ⊙ w by {d}");
    let (total, gap) = ig.completeness;
    assert!((total - gap).abs() < 1e-3 * gap.abs().max(1.0), "Σ IG {total}, score difference {gap}");
}

/// |Σ attributions − (y(x) − y(x'))| relative to the score difference on Lite0.
fn completeness_gap(m: &dyn Model, steps: usize) -> f32 {
    let img = photo("chelsea.png", 64, &Device::Cpu).unwrap();
    let class = m.class_index("tiger cat").unwrap();
    let (total, gap) =
        integrated_gradients(m, &img, &img.zeros_like().unwrap(), class, steps, 8).unwrap().completeness;
    (total - gap).abs() / gap.abs()
}

#[test]
fn more_steps_follow_the_path_more_closely() {
    let m = models::load("efficientnet-lite0", None, &Device::Cpu).unwrap();
    let (coarse, fine) = (completeness_gap(m.as_ref(), 2), completeness_gap(m.as_ref(), 32));
    assert!(fine < coarse, "32 steps miss the score difference by {fine}, 2 steps by {coarse}");
}

#[test]
fn an_image_equal_to_its_baseline_gets_no_attribution() {
    let m = models::load("efficientnet-lite0", None, &Device::Cpu).unwrap();
    let img = photo("chelsea.png", 48, &Device::Cpu).unwrap();
    let ig = integrated_gradients(m.as_ref(), &img, &img, 3, 4, 5).unwrap();
    let largest = ig.attributions.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(largest, 0.0);
}

struct Identity;
impl Module for Identity {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(x.clone())
    }
}

struct SpatialMean;
impl Module for SpatialMean {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.mean(3)?.mean(2)
    }
}

const POOLED_ROLES: Roles = Roles {
    showcase_unit: "feat:0",
    depth: &["feat"],
    cam_ladder: &["feat"],
    last_conv: "feat",
    cascade: &["feat"],
    ..Roles::EMPTY
};

/// Features `(1, 3, 4, 4)` (the input itself, the layer `feat`), their spatial mean, and two
/// classes: logits = W · mean(feat). Then ∂y_c/∂A^k_ij = W[c, k] / 16 at every position.
fn pooled(w: &Tensor) -> Toy {
    let mut net = Sequential::new();
    net.push("feat", Identity);
    net.push("pool", SpatialMean);
    net.push("logits", Matmul(w.clone()));
    let info = |name: &str, channels, side| LayerInfo {
        name: name.into(),
        channels,
        height: side,
        width: side,
        description: String::new(),
    };
    let layers = vec![info("feat", 3, 4), info("pool", 3, 1), info("logits", 2, 1)];
    let classes = vec!["for".to_string(), "against".to_string()];
    Toy {
        net,
        card: ModelCard { name: "pooled".into(), input_size: 4, layers, classes, roles: &POOLED_ROLES },
    }
}

/// W: class 0 weighs channels 1, −2 and 3; class 1 weighs all three negatively.
fn pooled_weights() -> Tensor {
    Tensor::new(&[[1f32, -2.0, 3.0], [-1.0, -0.5, -2.0]], &Device::Cpu).unwrap()
}

#[test]
fn grad_cam_weights_each_channel_by_its_mean_gradient() {
    let w = pooled_weights();
    let m = pooled(&w);
    let img = randn(3, &[3, 4, 4]).abs().unwrap();
    let gc = grad_cam(&m, &img, 0, "feat").unwrap();
    assert_eq!(gc.alphas.dims(), &[3], "one weight per channel");
    // α_k = mean_ij ∂y/∂A^k_ij = W[0, k] / 16: a sum instead of a mean is 16 times too large.
    let want = (w.get(0).unwrap() / 16.0).unwrap();
    let d = max_abs_diff(&gc.alphas, &want);
    assert!(d < 1e-6, "alphas {:?}, want W[0]/16 = {:?}", values(&gc.alphas), values(&want));
    assert_eq!(gc.cam.dims(), &[4, 4], "the map has the layer's resolution");
    // ReLU(Σ_k α_k A^k): the channel the class counts against (k = 1) lowers the map.
    let sum = (img.broadcast_mul(&want.reshape((3, 1, 1)).unwrap()).unwrap()).sum(0).unwrap();
    let d = max_abs_diff(&gc.cam, &sum.relu().unwrap());
    assert!(d < 1e-6, "the map differs from ReLU(Σ α_k A^k) by {d}");
}

#[test]
fn a_class_the_features_argue_against_gets_an_empty_map() {
    let m = pooled(&pooled_weights());
    let img = randn(4, &[3, 4, 4]).abs().unwrap();
    let gc = grad_cam(&m, &img, 1, "feat").unwrap();
    assert!(values(&gc.alphas).iter().all(|a| *a < 0.0), "every channel argues against class 1");
    // Every position's weighted sum is negative: the ReLU keeps nothing (without it, or with
    // the sign flipped, the map would be all negative or all positive).
    assert!(values(&gc.cam).iter().all(|v| *v == 0.0), "{:?}", values(&gc.cam));
}
