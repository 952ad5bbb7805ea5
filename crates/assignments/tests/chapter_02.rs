//! Chapter 2, integrated gradients: `attribution::integrated_gradients`, exact on a linear
//! model, and closer to the score difference with more steps on EfficientNet-Lite0.
use candle_core::{DType, Device, Module, Tensor};
use vision_interp::attribution::integrated_gradients;
use vision_interp::imageio::photo;
use vision_interp::models::{self, Activations, LayerInfo, Model, ModelCard, Roles, Sequential, Taps};

mod common;
use common::{max_abs_diff, randn};

/// A linear classifier of 3 × 6 × 6 images into four classes: logits = W · x.
struct Linear {
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

impl Model for Linear {
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

fn linear(w: &Tensor) -> Linear {
    let mut net = Sequential::new();
    net.push("logits", Matmul(w.clone()));
    let layer =
        LayerInfo { name: "logits".into(), channels: 4, height: 1, width: 1, description: String::new() };
    let classes = (0..4).map(|c| c.to_string()).collect();
    Linear {
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
