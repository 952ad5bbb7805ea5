//! Attribution methods on models whose answer is known in closed form.
use candle_core::{DType, Device, Module, Tensor};
use vision_interp::attribution;
use vision_interp::models::{Activations, LayerInfo, Model, ModelCard, Roles, Sequential, Taps};

mod common;
use common::max_abs_diff;

/// A test model built from named stages; preprocessing is the identity.
struct Toy {
    net: Sequential,
    card: ModelCard,
}

const ROLES: Roles = Roles {
    showcase_unit: "features:0",
    depth: &["features"],
    cam_ladder: &["features"],
    last_conv: "features",
    cascade: &["logits", "features"],
    ..Roles::EMPTY
};

impl Toy {
    fn new(net: Sequential, layers: Vec<LayerInfo>, classes: Vec<String>) -> Self {
        Self { net, card: ModelCard { name: "toy".into(), input_size: 6, layers, classes, roles: &ROLES } }
    }
}

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

struct Linear(Tensor, Tensor);
impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.flatten_from(1)?.matmul(&self.0.t()?)?.broadcast_add(&self.1)
    }
}

fn info(name: &str, channels: usize, size: usize) -> LayerInfo {
    LayerInfo { name: name.into(), channels, height: size, width: size, description: String::new() }
}

fn image(seed: u64) -> Tensor {
    vision_interp::rng::rand_uniform(&mut vision_interp::rng::seeded(seed), (3, 6, 6), 0.0, 1.0, &Device::Cpu)
        .unwrap()
}

fn linear_model() -> (Toy, Tensor) {
    let w =
        vision_interp::rng::randn(&mut vision_interp::rng::seeded(1), (4, 3 * 36), 0.0, 1.0, &Device::Cpu)
            .unwrap();
    let b = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
    let mut net = Sequential::new();
    net.push("logits", Linear(w.clone(), b));
    let toy = Toy::new(net, vec![info("logits", 4, 1)], (0..4).map(|c| c.to_string()).collect());
    (toy, w)
}

#[test]
fn saliency_of_a_linear_model_is_its_weights() {
    let (toy, w) = linear_model();
    let img = image(2);
    for class in 0..4 {
        let (g, _) = attribution::input_gradients(&toy, &img.unsqueeze(0).unwrap(), class).unwrap();
        let want = w.get(class).unwrap().reshape((1, 3, 6, 6)).unwrap();
        let d = max_abs_diff(&g, &want);
        assert!(d < 1e-6, "class {class}: gradient differs from the weights by {d}");
        let s = attribution::saliency(&toy, &img, class).unwrap();
        let want_s = want.squeeze(0).unwrap().abs().unwrap().max(0).unwrap();
        let d = max_abs_diff(&s, &want_s);
        assert!(d < 1e-6, "class {class}: saliency differs from max_c |w| by {d}");
    }
}

#[test]
fn integrated_gradients_are_complete_and_exact_for_a_linear_model() {
    let (toy, w) = linear_model();
    let img = image(3);
    let baseline = img.zeros_like().unwrap();
    let ig = attribution::integrated_gradients(&toy, &img, &baseline, 2, 8, 4).unwrap();
    // For a linear model, IG = (x − x') ⊙ w exactly, and Σ IG = y(x) − y(x').
    let want = (img.clone() * w.get(2).unwrap().reshape((3, 6, 6)).unwrap()).unwrap();
    let d = max_abs_diff(&ig.attributions, &want);
    assert!(d < 1e-5, "IG differs from x ⊙ w by {d}");
    let (total, gap) = ig.completeness;
    assert!((total - gap).abs() < 1e-3 * gap.abs().max(1.0), "Σ IG {total} vs score gap {gap}");
    assert_eq!(ig.path_scores.len(), 9);
}

/// Features: channel 0 = red plane, channel 1 = green plane. Logit c = mean of channel c.
struct Planes;
impl Module for Planes {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.narrow(1, 0, 2)
    }
}
struct MeanPerChannel;
impl Module for MeanPerChannel {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.mean(3)?.mean(2)
    }
}

#[test]
fn grad_cam_picks_the_channel_that_decides() {
    let mut net = Sequential::new();
    net.push("features", Planes);
    net.push("logits", MeanPerChannel);
    let toy =
        Toy::new(net, vec![info("features", 2, 6), info("logits", 2, 1)], vec!["red".into(), "green".into()]);
    let img = image(4);
    for class in 0..2 {
        let cam = attribution::grad_cam(&toy, &img, class, "features").unwrap();
        // α = (1/36, 0) for class 0 and (0, 1/36) for class 1: the CAM is that plane / 36.
        let alphas = cam.alphas.to_vec1::<f32>().unwrap();
        assert!((alphas[class] - 1.0 / 36.0).abs() < 1e-7, "{alphas:?}");
        assert!(alphas[1 - class].abs() < 1e-9, "{alphas:?}");
        let want = (img.get(class).unwrap() / 36.0).unwrap();
        let d = max_abs_diff(&cam.cam, &want);
        assert!(d < 1e-7, "class {class}: CAM differs by {d}");
    }
    // An unknown layer is an error that lists the layers.
    let err = attribution::grad_cam(&toy, &img, 0, "conv9").err().unwrap().to_string();
    assert!(err.contains("features") && err.contains("logits"), "{err}");
}

#[test]
fn spearman_of_identical_and_reversed_rankings() {
    let a = [1.0, 2.0, 3.0, 4.0];
    assert!((attribution::spearman(&a, &a).unwrap() - 1.0).abs() < 1e-6);
    assert!((attribution::spearman(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-6);
    // A constant map (Grad-CAM's ReLU can clear every position) has no ranks to correlate.
    assert_eq!(attribution::spearman(&a, &[0.0; 4]), None);
}

#[test]
fn deletion_falls_and_insertion_rises_fastest_in_the_order_of_a_faithful_map() {
    // Two classes: y0 = w·x with positive weights, y1 = 0; p(0) = σ(w·x). Removing the pixels
    // with the largest w·x first lowers p(0) fastest, so the map w·x (summed over colour) must
    // beat its own reverse on both curves.
    let mut rng = vision_interp::rng::seeded(3);
    let w0 = vision_interp::rng::rand_uniform(&mut rng, (1, 3 * 36), 0.0, 0.5, &Device::Cpu).unwrap();
    let w = Tensor::cat(&[&w0, &w0.zeros_like().unwrap()], 0).unwrap();
    let mut net = Sequential::new();
    net.push("logits", Linear(w, Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap()));
    let toy = Toy::new(net, vec![info("logits", 2, 1)], vec!["a".into(), "b".into()]);
    let img = image(4);
    let map = (w0.reshape((3, 6, 6)).unwrap() * &img).unwrap().sum(0).unwrap();
    let black = img.zeros_like().unwrap();
    let good = attribution::deletion_insertion(&toy, &img, &black, &map, 0, 12).unwrap();
    let bad = attribution::deletion_insertion(&toy, &img, &black, &map.neg().unwrap(), 0, 12).unwrap();
    assert_eq!(good.deletion.len(), 13);
    // Every point of the curve is a fraction of pixels and a probability of class 0.
    let p_full = 1.0 / (1.0 + (-(map.sum_all().unwrap().to_scalar::<f32>().unwrap())).exp());
    assert!((good.deletion[0].1 - p_full).abs() < 1e-5 && (good.insertion[12].1 - p_full).abs() < 1e-5);
    assert!((good.deletion[12].1 - 0.5).abs() < 1e-6, "all pixels black: y0 = 0, p = 0.5");
    for c in good.deletion.windows(2) {
        assert!(c[1].1 <= c[0].1 + 1e-6, "deletion must not rise: {:?}", good.deletion);
    }
    for c in good.insertion.windows(2) {
        assert!(c[1].1 + 1e-6 >= c[0].1, "insertion must not fall: {:?}", good.insertion);
    }
    let ((gd, gi), (bd, bi)) = (good.areas(), bad.areas());
    assert!(gd < bd && gi > bi, "faithful order: deletion {gd} < {bd}, insertion {gi} > {bi}");
}

/// A 3 × 3 convolution of every channel with every channel, all weights 1 (padding 1).
struct Ones3x3(usize);
impl Module for Ones3x3 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let k = Tensor::ones((3, 3, 3, 3), DType::F32, x.device())?;
        x.conv2d(&k, 1, self.0, 1, 1)
    }
}

#[test]
fn measured_receptive_fields_match_the_arithmetic_of_kernels_and_strides() {
    let mut net = Sequential::new();
    net.push("c1", Ones3x3(1)); // 3 × 3: field 3, stride 1
    net.push("c2", Ones3x3(2)); // stride 2: field 3 + 2 = 5, stride 2
    net.push("c3", Ones3x3(1)); // field 5 + 2·2 = 9, stride 2
    let layers = vec![info("c1", 3, 16), info("c2", 3, 8), info("c3", 3, 8)];
    let toy = Toy::new(net, layers, vec![]);
    let mut rng = vision_interp::rng::seeded(0);
    let mut rf = |l| attribution::receptive_field(&toy, l, 16, &Device::Cpu, &mut rng).unwrap();
    assert_eq!(rf("c1"), (3, 1.0));
    assert_eq!(rf("c2"), (5, 2.0));
    assert_eq!(rf("c3"), (9, 2.0));
    // Measured at 4 px, c3's field reaches the border, so it is measured again at 8 and 16.
    let mut rng = vision_interp::rng::seeded(0);
    assert_eq!(attribution::receptive_field(&toy, "c3", 4, &Device::Cpu, &mut rng).unwrap(), (9, 2.0));
}
