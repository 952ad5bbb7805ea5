//! Feature inversion's pieces (chapter 10): `dot_compare` against its formula and against
//! finite differences, a fixed photo in the batch, the notebook's transformations, and the
//! errors for a target that cannot be one.
use candle_core::{Device, Tensor, Var};
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::Activations;
use vision_interp::optvis::{objective, render, transform, ImageParam, ImageSpec, RenderConfig, Transform};
use vision_interp::rng::seeded;
use vision_interp::weights::WeightStore;

fn layer(shape: &[usize], phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|k| ((0.37 * k as f64 + phase).sin() + 1.2) as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn loss_of(obj: &objective::Objective, a: &Tensor) -> f32 {
    let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let acts = Activations::from_tensors([("a".to_string(), a.clone())]);
    obj.loss(&acts, &x).unwrap().to_scalar::<f32>().unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn dot_compare_is_the_dot_product_times_a_power_of_the_cosine() {
    let a = layer(&[2, 5, 3, 3], 0.0);
    let (x, t) = (flat(&a.get(0).unwrap()), flat(&a.get(1).unwrap()));
    let dot: f32 = x.iter().zip(&t).map(|(p, q)| p * q).sum();
    let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
    let cos = dot / (norm(&x) * norm(&t));
    assert!(cos > 0.1, "a test of the formula away from the floor: cos {cos}");
    for p in [0.0, 0.5, 1.0, 2.0] {
        let got = loss_of(&objective::dot_compare("a", 1, p), &a);
        let want = -dot * cos.powf(p as f32);
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "p {p}: {got} against {want}");
        // Lucid's form divides by ‖φ₀‖ only: the same up to ‖φ_t‖^p.
        let lucid = -dot * (dot / (norm(&x) + 1e-6)).powf(p as f32);
        let ratio = lucid / got / norm(&t).powf(p as f32);
        assert!((ratio - 1.0).abs() < 1e-3, "p {p}: Lucid's / ours = {ratio} × ‖φ_t‖^p");
    }
}

#[test]
fn dot_compare_gradient_matches_finite_differences() {
    let a = layer(&[2, 4, 2, 3], 0.7);
    let var = Var::from_tensor(&a).unwrap();
    let obj = objective::dot_compare("a", 1, 2.0);
    let acts = Activations::from_tensors([("a".to_string(), var.as_tensor().clone())]);
    let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let grad = flat(obj.loss(&acts, &x).unwrap().backward().unwrap().get(var.as_tensor()).unwrap());
    let base = flat(&a);
    let h = 1e-2f32;
    for k in [0, 3, 11, 23] {
        let (mut plus, mut minus) = (base.clone(), base.clone());
        plus[k] += h;
        minus[k] -= h;
        let at = |v: Vec<f32>| loss_of(&obj, &Tensor::from_vec(v, a.shape(), &Device::Cpu).unwrap());
        let fd = (at(plus) - at(minus)) / (2.0 * h);
        assert!((fd - grad[k]).abs() < 2e-3 + 0.02 * fd.abs(), "element {k}: {fd} against {}", grad[k]);
    }
}

#[test]
fn dot_compare_holds_a_negative_cosine_at_the_floor() {
    // Image 1 is minus image 0: cos = −1, held at 0.1, so the power stays finite.
    let x = layer(&[1, 4, 2, 2], 0.0);
    let a = Tensor::cat(&[&x, &x.neg().unwrap()], 0).unwrap();
    let dot: f32 = flat(&x).iter().map(|v| -v * v).sum();
    let got = loss_of(&objective::dot_compare("a", 1, 0.5), &a);
    assert!((got - (-dot * 0.1f32.sqrt())).abs() < 1e-3, "{got}");
}

#[test]
fn dot_compare_refuses_a_target_that_is_not_another_image() {
    let a = layer(&[2, 4, 2, 2], 0.0);
    let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let acts = Activations::from_tensors([("a".to_string(), a)]);
    for target in [0, 2] {
        let e = objective::dot_compare("a", target, 1.0).loss(&acts, &x).expect_err("refused");
        assert!(format!("{e:#}").contains("must be another image than 0"), "{e:#}");
    }
}

#[test]
fn a_fixed_photo_rides_in_the_batch_unchanged_while_the_image_inverts_it() {
    let t = hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu).unwrap();
    let m = InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t)).unwrap();
    let photo = vision_interp::imageio::photo("chelsea.png", 48, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let p = ImageParam::new(&ImageSpec::square(48), &mut seeded(1), &Device::Cpu)
        .unwrap()
        .with_fixed(&photo)
        .unwrap();
    assert_eq!(p.vars().len(), 2, "the photo is no variable");
    let img = p.image().unwrap();
    assert_eq!(img.dims(), &[2, 3, 48, 48]);
    assert_eq!(flat(&img.get(1).unwrap()), flat(&photo.get(0).unwrap()));
    let cfg = RenderConfig {
        steps: 6,
        min_input: None,
        transforms: transform::inversion(),
        progress: false,
        ..Default::default()
    };
    let obj = objective::dot_compare("mixed3a", 1, 1.0);
    let r = render(&m, &obj, &p, &cfg, &mut seeded(2)).unwrap();
    assert!(r.losses.last().unwrap() < &r.losses[0], "{:?}", r.losses);
    assert_eq!(flat(&r.last().get(1).unwrap()), flat(&photo.get(0).unwrap()), "the photo is not optimised");
    let wrong = vision_interp::imageio::photo("chelsea.png", 40, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let e = ImageParam::new(&ImageSpec::square(48), &mut seeded(1), &Device::Cpu).unwrap().with_fixed(&wrong);
    let Err(e) = e else { panic!("a photo of another size was accepted") };
    assert!(format!("{e:#}").contains("do not fit"));
}

#[test]
fn the_inversion_suite_is_the_notebooks() {
    let t = transform::inversion();
    assert_eq!(t[0], Transform::Pad { width: 8, value: 0.5 });
    assert_eq!(t[1], Transform::Jitter(8));
    let Transform::Scale(s) = &t[2] else { panic!("scale") };
    assert_eq!(s.iter().filter(|&&v| v == 1.0).count(), 4);
    let Transform::Rotate(r) = &t[3] else { panic!("rotate") };
    assert_eq!((r.len(), r[0], r[9]), (15, -5.0, 4.0));
    assert_eq!(t[4], Transform::Jitter(2));
}
