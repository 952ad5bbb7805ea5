//! Style transfer's losses (chapter 11): the Gram matrix and the losses against the notebook's
//! PyTorch functions on the same activations (`fixtures/style-losses.json`, made by
//! `crates/bench/peers/make_objective_fixtures.py`), their gradients against finite
//! differences, what a Gram matrix forgets, a short transfer that lowers both losses, and the
//! errors.
use candle_core::{Device, Tensor, Var};
use chapter_11_style_transfer::style::{self, StyleStatistic};
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{Activations, Model, Taps};
use vision_interp::optvis::{render, ImageParam, ImageSpec, Objective, RenderConfig};
use vision_interp::rng::seeded;
use vision_interp::weights::WeightStore;

#[path = "../../../crates/vision-interp/tests/common/mod.rs"]
mod common;
use common::{fixture_layer, objective_error, objective_loss};

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../crates/vision-interp/tests/fixtures/style-losses.json"))
        .unwrap()
}

/// The fixture's batch of three: transfer, content, style.
fn fixture_acts() -> Activations {
    Activations::from_tensors([
        ("a".to_string(), fixture_layer(&[3, 6, 5, 5], 0.0)),
        ("b".to_string(), fixture_layer(&[3, 8, 4, 7], 1.0)),
    ])
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn gram_matrix_matches_pytorch_and_is_symmetric() {
    let b = fixture_layer(&[3, 8, 4, 7], 1.0);
    let g = style::gram_matrix(&b).unwrap();
    assert_eq!(g.dims(), &[3, 8, 8]);
    let want: Vec<f64> =
        fixture()["gram b image 2"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let got = flat(&g.get(2).unwrap());
    for (k, (x, y)) in got.iter().zip(&want).enumerate() {
        assert!((*x as f64 - y).abs() < 1e-5 * y.abs().max(1.0), "entry {k}: {x} against PyTorch's {y}");
    }
    let t = flat(&g.get(2).unwrap().t().unwrap());
    assert_eq!(got, t, "G = F Fᵀ / HW is symmetric");
}

#[test]
fn losses_match_the_notebooks_functions_in_pytorch() {
    let f = fixture();
    let cases: [(&str, Objective); 4] = [
        ("content a", style::content_loss(&["a"], 1)),
        ("content a,b", style::content_loss(&["a", "b"], 1)),
        ("style a,b", style::style_loss(&["a", "b"], 2, StyleStatistic::Gram)),
        ("mean_std style a,b", style::style_loss(&["a", "b"], 2, StyleStatistic::MeanStd)),
    ];
    let acts = fixture_acts();
    for (name, obj) in cases {
        let want = f["losses"][name].as_f64().unwrap_or_else(|| panic!("{name} is in the fixture"));
        let got = objective_loss(&obj, &acts) as f64;
        assert!((got - want).abs() < 1e-5 * want.abs().max(1e-3), "{name}: {got} against PyTorch's {want}");
    }
}

#[test]
fn style_loss_gradients_match_finite_differences_and_leave_the_painting_alone() {
    let a = fixture_layer(&[3, 4, 3, 3], 0.3);
    let var = Var::from_tensor(&a).unwrap();
    for statistic in [StyleStatistic::Gram, StyleStatistic::MeanStd] {
        let obj = style::style_loss(&["a"], 2, statistic) + 100.0 * style::content_loss(&["a"], 1);
        let acts = Activations::from_tensors([("a".to_string(), var.as_tensor().clone())]);
        let grads = objective_loss_tensor(&obj, &acts).backward().unwrap();
        let grad = flat(grads.get(var.as_tensor()).unwrap());
        let base = flat(&a);
        let at = |v: Vec<f32>| {
            let t = Tensor::from_vec(v, a.shape(), &Device::Cpu).unwrap();
            objective_loss(&obj, &Activations::from_tensors([("a".to_string(), t)]))
        };
        let h = 1e-2f32;
        // Elements of image 0 (the transfer), away from the kinks of |·| at zero.
        for k in [0, 5, 17, 30] {
            let (mut plus, mut minus) = (base.clone(), base.clone());
            plus[k] += h;
            minus[k] -= h;
            let fd = (at(plus) - at(minus)) / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 3e-3 + 0.02 * fd.abs(),
                "{statistic:?}, element {k}: finite differences {fd} against {}",
                grad[k]
            );
        }
        // Images 1 and 2 are photos, held fixed.
        let per = base.len() / 3;
        assert!(grad[per..].iter().all(|g| *g == 0.0), "{statistic:?}: a gradient reached a target image");
    }
}

fn objective_loss_tensor(obj: &Objective, acts: &Activations) -> Tensor {
    let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    obj.loss(acts, &x).unwrap()
}

#[test]
fn a_gram_matrix_forgets_where_things_are() {
    // The same activations with their positions shuffled: the Gram matrix and the channels'
    // means and deviations are unchanged (style), the content loss is not (layout).
    let x = fixture_layer(&[1, 6, 4, 4], 0.0);
    let flat_x = x.reshape((6, 16)).unwrap();
    let order: Vec<u32> = (0..16).map(|i| (i * 7 + 3) % 16).collect();
    let idx = Tensor::new(order.as_slice(), &Device::Cpu).unwrap();
    let shuffled = flat_x.index_select(&idx, 1).unwrap().reshape((1, 6, 4, 4)).unwrap();
    let batch = Tensor::cat(&[&x, &shuffled, &shuffled], 0).unwrap();
    let acts = Activations::from_tensors([("a".to_string(), batch)]);
    let gram = objective_loss(&style::style_loss(&["a"], 2, StyleStatistic::Gram), &acts);
    let stats = objective_loss(&style::style_loss(&["a"], 2, StyleStatistic::MeanStd), &acts);
    let content = objective_loss(&style::content_loss(&["a"], 1), &acts);
    assert!(gram < 1e-6 && stats < 1e-6, "style losses {gram}, {stats} after a shuffle");
    assert!(content > 0.1, "content loss {content} after a shuffle");
}

#[test]
fn a_short_transfer_lowers_both_losses() {
    let t = hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu).unwrap();
    let m = InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t)).unwrap();
    let photo =
        |name: &str| vision_interp::imageio::photo(name, 48, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let fixed = Tensor::cat(&[photo("chelsea.png"), photo("coffee.png")], 0).unwrap();
    let p = ImageParam::new(&ImageSpec::square(48), &mut seeded(3), &Device::Cpu)
        .unwrap()
        .with_fixed(&fixed)
        .unwrap();
    let (content, style) = (
        style::content_loss(&["mixed3b"], 1),
        style::style_loss(&["conv2d2", "mixed3a"], 2, StyleStatistic::Gram),
    );
    let cfg = RenderConfig { steps: 8, thresholds: vec![1, 8], progress: false, ..Default::default() };
    let r = render(&m, &(100.0 * content.clone() + style.clone()), &p, &cfg, &mut seeded(4)).unwrap();
    let (first, last) = (&r.images[0].1, &r.images[1].1);
    // `score` is minus the loss, without the random transformations.
    let loss_at = |img: &Tensor, obj: &Objective| -vision_interp::optvis::score(&m, obj, img, &cfg).unwrap();
    for obj in [&content, &style] {
        let (before, after) = (loss_at(first, obj), loss_at(last, obj));
        assert!(after < before, "{}: {before} → {after}", obj.name);
    }
}

#[test]
fn losses_refuse_a_target_outside_the_batch_and_no_layers() {
    let acts = fixture_acts();
    for to in [0, 3] {
        let e = objective_error(&style::style_loss(&["a"], to, StyleStatistic::Gram), &acts);
        assert!(e.contains("must be another image of the batch"), "{e}");
    }
    let e = objective_error(&style::content_loss(&[], 1), &acts);
    assert!(e.contains("at least one layer"), "{e}");
}

#[test]
fn constants_in_a_pass_of_their_own_take_the_same_transformations_and_give_the_gradient_of_one_pass() {
    let t = hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu).unwrap();
    let m = InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t)).unwrap();
    let photo =
        |name: &str| vision_interp::imageio::photo(name, 40, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let x = Var::from_tensor(&photo("camera.png")).unwrap();
    let batch = Tensor::cat(&[x.as_tensor(), &photo("chelsea.png"), &photo("coffee.png")], 0).unwrap();
    let obj = 10.0 * style::content_loss(&["mixed3a"], 1)
        + style::style_loss(&["conv2d2", "mixed3a"], 2, StyleStatistic::Gram);
    let taps = Taps::layers(&obj.layers);
    let cfg = RenderConfig { min_input: Some(64), ..Default::default() };
    let view = vision_interp::optvis::compose(&cfg.transforms, &batch, &mut seeded(5)).unwrap();
    let one = m.forward_taps(&cfg.model_input(&m.preprocess(&view).unwrap()).unwrap(), &taps).unwrap();
    let split = vision_interp::optvis::render::forward(&m, &cfg, &batch, 2, &taps, &mut seeded(5)).unwrap();
    for layer in &obj.layers {
        let (a, b) = (flat(one.get(layer).unwrap()), flat(split.get(layer).unwrap()));
        assert_eq!(a.len(), b.len(), "{layer}");
        let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{layer}: activations differ by {worst}");
    }
    let grad = |acts: &Activations| {
        let loss = obj.loss(acts, &batch).unwrap();
        flat(&loss.backward().unwrap().get(x.as_tensor()).unwrap().clone())
    };
    let (g1, g2) = (grad(&one), grad(&split));
    let scale = g1.iter().map(|g| g.abs()).fold(0.0f32, f32::max);
    assert!(scale > 0.0, "the loss has no gradient");
    let worst = g1.iter().zip(&g2).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4 * scale, "gradients differ by {worst} (largest {scale})");
}
