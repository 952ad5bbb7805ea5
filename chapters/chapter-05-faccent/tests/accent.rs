//! Feature accentuation (chapter 5): the regulariser's gradient against finite differences, a
//! strong regulariser that keeps the image near the seed while the class still rises, the cutoff
//! and projected gradient descent, the CAM maps against chapter 2's Grad-CAM, and the refusals
//! of bad settings. (The images it starts from are tested in the library's
//! `tests/seeded_images.rs`.)
use candle_core::{Device, Tensor, Var};
use chapter_05_faccent::accent::{accentuate, alpha_map, l2_distance, posneg_cam, AccentConfig, Views};
use vision_interp::attribution;
use vision_interp::imageio::photo;
use vision_interp::models::{EfficientNetLite0, Model, Taps};
use vision_interp::ops;
use vision_interp::optvis::{objective, ImageParam, Space};
use vision_interp::rng::seeded;

#[path = "../../../crates/vision-interp/tests/common/mod.rs"]
mod common;
use common::max_abs_diff;

fn lite0() -> EfficientNetLite0 {
    EfficientNetLite0::load(None, &Device::Cpu).expect("Lite0 weights in assets/")
}

fn seed(size: usize) -> Tensor {
    photo("chelsea.png", size, &Device::Cpu).unwrap().unsqueeze(0).unwrap()
}

/// The squared L2 distance between two images, per pixel (mean over values).
fn mean_sq(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn the_regulariser_gradient_matches_finite_differences() {
    let m = lite0();
    let (x0, s) = (seed(48), seed(48).affine(0.8, 0.1).unwrap());
    let cfg = AccentConfig { views: 2, ..Default::default() };
    let views = Views::draw(48, 48, 2, &cfg, 64, &mut seeded(5), &Device::Cpu).unwrap();
    // Through the views, the preprocessing and the stem's convolution, which are smooth (the
    // network's own gradients, ReLU6 kinks and all, are checked in ops_gradcheck).
    let taps = Taps::layers(&["stem_pre_relu"]);
    let reg = |x: &Tensor| -> Tensor {
        let a = m.forward_taps(&m.preprocess(&views.apply(x).unwrap()).unwrap(), &taps).unwrap();
        let b = m.forward_taps(&m.preprocess(&views.apply(&s).unwrap()).unwrap(), &taps).unwrap();
        l2_distance(a.get("stem_pre_relu").unwrap(), &b.get("stem_pre_relu").unwrap().detach()).unwrap()
    };
    let x = Var::from_tensor(&x0).unwrap();
    let g = reg(x.as_tensor()).backward().unwrap().get(x.as_tensor()).unwrap().clone();
    for k in 0..3 {
        let d = vision_interp::rng::randn(&mut seeded(10 + k), x0.shape(), 0.0, 1.0, &Device::Cpu).unwrap();
        let eps = 3e-3;
        let plus = reg(&(&x0 + (&d * eps).unwrap()).unwrap()).to_scalar::<f32>().unwrap();
        let minus = reg(&(&x0 - (&d * eps).unwrap()).unwrap()).to_scalar::<f32>().unwrap();
        let numeric = (plus - minus) / (2.0 * eps as f32);
        let analytic = (&g * &d).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let rel = (numeric - analytic).abs() / analytic.abs().max(1e-6);
        assert!(rel < 0.01, "direction {k}: finite difference {numeric}, gradient {analytic}");
    }
}

#[test]
fn the_distance_gradient_matches_finite_differences_in_f64() {
    let a = common::randn64(1, &[3, 5, 2, 2]);
    let b = common::randn64(2, &[3, 5, 2, 2]);
    let v = Var::from_tensor(&a).unwrap();
    let g = l2_distance(v.as_tensor(), &b).unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
    let (flat, g) = (
        a.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
    );
    for i in [0, 7, 23, 59] {
        let at = |e: f64| {
            let mut x = flat.clone();
            x[i] += e;
            let x = Tensor::from_vec(x, a.shape(), &Device::Cpu).unwrap();
            l2_distance(&x, &b).unwrap().to_scalar::<f64>().unwrap()
        };
        let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!((numeric - g[i]).abs() < 1e-7, "element {i}: {numeric} vs {}", g[i]);
    }
}

/// The class logit on the whole image (resized to 96 px).
fn logit(m: &dyn Model, img: &Tensor, class: usize) -> f32 {
    let x = ops::resize_antialiased(img, 96, 96).unwrap();
    m.logits(&x).unwrap().get(0).unwrap().get(class).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn a_strong_regulariser_keeps_the_image_near_the_seed_while_the_class_still_rises() {
    let m = lite0();
    let s = seed(64);
    let class = m.class_index("goldfish").unwrap();
    let obj = objective::channel("logits", class, None);
    let run = |alpha: f64| {
        let cfg = AccentConfig {
            steps: 10,
            views: 4,
            input: Some(96),
            reg_layer: Some("stage2".into()),
            alpha,
            progress: false,
            ..Default::default()
        };
        let p = ImageParam::from_image(&s, Space::Fft, 5.0).unwrap();
        let out = accentuate(&m, &obj, &p, &s, &cfg, &mut seeded(0)).unwrap();
        assert_eq!(out.frames.iter().map(|f| f.step).collect::<Vec<_>>(), [0, 2, 4, 6, 8, 9]);
        (out.last().image.clone(), out)
    };
    let (free, free_run) = run(0.0);
    let (held, held_run) = run(20.0);
    assert!(free_run.balance.is_none() && free_run.distances.is_empty(), "α = 0 has no regulariser");
    let b = held_run.balance.unwrap();
    assert!(b.is_finite() && b > 0.0, "balance {b}");
    let (d_free, d_held) = (mean_sq(&free, &s), mean_sq(&held, &s));
    assert!(d_held < 0.25 * d_free, "α = 20 moved the image {d_held} (α = 0: {d_free})");
    let start = logit(&m, &s, class);
    let (l_free, l_held) = (logit(&m, &free, class), logit(&m, &held, class));
    assert!(l_free > start + 1.0, "unregularised: the goldfish logit went {start} → {l_free}");
    assert!(l_held > start, "regularised: the goldfish logit went {start} → {l_held}");
    // The transparency is the objective's own gradient: zero nowhere it counts, scaled to 1.
    let a = alpha_map(&held_run.last().transparency, 10.0, 2.0).unwrap();
    let max = a.data.iter().cloned().fold(0.0, f32::max);
    assert!(a.data.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)) && max > 0.5, "alpha map in [0, 1]");
}

#[test]
fn the_cutoff_stops_early_and_pgd_stays_on_its_ball() {
    let m = lite0();
    let s = seed(48);
    let obj = objective::channel("logits", m.class_index("goldfish").unwrap(), None);
    let base = AccentConfig { steps: 8, views: 2, input: Some(64), progress: false, ..Default::default() };
    let p = ImageParam::from_image(&s, Space::Fft, 5.0).unwrap();
    let out =
        accentuate(&m, &obj, &p, &s, &AccentConfig { cutoff: Some(-1e9), ..base.clone() }, &mut seeded(0))
            .unwrap();
    assert_eq!((out.stopped_at, out.frames.len()), (Some(0), 1), "a cutoff already passed stops at once");
    let p = ImageParam::from_image(&s, Space::Fft, 5.0).unwrap();
    let cfg = AccentConfig { pgd: Some(0.5), lr: 2.0, ..base };
    accentuate(&m, &obj, &p, &s, &cfg, &mut seeded(0)).unwrap();
    let d = (p.image().unwrap() - &s).unwrap().sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
    let d = d.to_scalar::<f32>().unwrap();
    assert!(d <= 0.5 + 1e-2 && d > 0.1, "PGD: the image ends {d} from the seed (radius 0.5)");
}

#[test]
fn bad_settings_are_refused_before_any_step() {
    let m = lite0();
    let s = seed(32);
    let obj = objective::channel("logits", 1, None);
    let p = ImageParam::from_image(&s, Space::Fft, 5.0).unwrap();
    let err = |cfg: AccentConfig| {
        format!("{:#}", accentuate(&m, &obj, &p, &s, &cfg, &mut seeded(0)).err().unwrap())
    };
    assert!(err(AccentConfig { alpha: -1.0, ..Default::default() }).contains("α must be zero or positive"));
    let e = err(AccentConfig { reg_layer: Some("stage9".into()), ..Default::default() });
    assert!(e.contains("no layer `stage9`") && e.contains("stage2"), "{e}");
    assert!(err(AccentConfig { crop: (0.0, 0.5), ..Default::default() }).contains("crop sizes"));
    // The chapter's default class: `tiger` is the first name of 292 only (282 is "tiger cat").
    assert_eq!((m.class_index("tiger").unwrap(), m.class_index("tiger cat").unwrap()), (292, 282));
    assert!(m.class_index("tig").is_err(), "a prefix of several classes stays ambiguous");
}

#[test]
fn cam_maps_split_gradient_times_activation_and_average_to_grad_cam() {
    let m = lite0();
    let s = seed(96);
    let class = m.class_index("tiger cat").unwrap();
    let cams = posneg_cam(&m, &s, ("logits", class), &["stage5", "head"], false).unwrap();
    let averaged = posneg_cam(&m, &s, ("logits", class), &["head"], true).unwrap();
    for c in &cams {
        let acts = m.forward_taps(&m.preprocess(&s).unwrap(), &Taps::layers(&[c.layer.as_str()])).unwrap();
        assert_eq!(c.positive.dims(), &acts.get(&c.layer).unwrap().dims()[2..]);
    }
    // Both maps are sums of non-negative terms at every layer, also at `stage5`, a linear
    // bottleneck whose activations have both signs.
    let min = |t: &Tensor| t.flatten_all().unwrap().min(0).unwrap().to_scalar::<f32>().unwrap();
    for c in &cams {
        assert!(min(&c.positive) >= 0.0 && min(&c.negative) >= 0.0, "{}", c.layer);
    }
    assert!(common::max_abs(&cams[1].positive) > 0.0 && common::max_abs(&cams[1].negative) > 0.0);
    let cam = attribution::grad_cam(&m, &s.squeeze(0).unwrap(), class, "head").unwrap().cam;
    let ours = (&averaged[0].positive - &averaged[0].negative).unwrap().relu().unwrap();
    assert!(max_abs_diff(&ours, &cam) / common::max_abs(&cam) < 1e-4, "averaged gradients give Grad-CAM");
}
