//! The feature-visualisation engine, by the meaning of Lucent's own test suite: parameter
//! shapes and the inverse FFT, exact transformations, objectives that decrease on a
//! random-weight model, renders of the right size, and the NaN guard.
use candle_core::{Device, Tensor};
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::optvis::{
    cppn, objective, param, render, transform, ImageParam, ImageSpec, LowRes, Objective, RenderConfig, Space,
};
use vision_interp::rng::seeded;
use vision_interp::weights::WeightStore;

mod common;
use common::max_abs_diff;

fn model() -> InceptionV1 {
    let t = hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu).unwrap();
    InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t)).unwrap()
}

#[test]
fn fft_parameter_shapes_and_spectrum_scale() {
    let p = ImageParam::new(
        &ImageSpec { space: Space::Fft, decorrelate: true, batch: 2, height: 128, width: 128, sd: 0.01 },
        &mut seeded(0),
        &Device::Cpu,
    )
    .unwrap();
    let vars = p.vars();
    assert_eq!(vars.len(), 2);
    assert_eq!(vars[0].1.dims(), &[2, 3, 128, 65]);
    assert_eq!(p.image().unwrap().dims(), &[2, 3, 128, 128]);
    let scale = param::spectrum_scale(128, 128, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(scale[0][0], 128.0, "the DC term is clamped to max(h, w)");
    assert!((scale[0][1] - 128.0).abs() < 1e-3 && (scale[1][1] - 128.0 / 2f32.sqrt()).abs() < 1e-3);
    let one = ImageParam::new(
        &ImageSpec { space: Space::Fft, decorrelate: false, batch: 1, height: 1, width: 1, sd: 0.01 },
        &mut seeded(0),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(one.vars()[0].1.dims(), &[1, 3, 1, 1]);
    let px = ImageParam::new(
        &ImageSpec { space: Space::Pixel, decorrelate: false, batch: 1, height: 5, width: 7, sd: 0.01 },
        &mut seeded(0),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(px.image().unwrap().dims(), &[1, 3, 5, 7]);
}

#[test]
fn matmul_inverse_fft_inverts_a_direct_forward_dft() {
    use std::f64::consts::PI;
    for (h, w) in [(6, 6), (6, 5), (4, 7)] {
        let x: Vec<f64> = (0..h * w).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
        let wf = w / 2 + 1;
        let (mut re, mut im) = (vec![0f32; h * wf], vec![0f32; h * wf]);
        for k in 0..h {
            for l in 0..wf {
                let (mut a, mut b) = (0.0, 0.0);
                for y in 0..h {
                    for xx in 0..w {
                        let t = -2.0 * PI * ((k * y) as f64 / h as f64 + (l * xx) as f64 / w as f64);
                        a += x[y * w + xx] * t.cos();
                        b += x[y * w + xx] * t.sin();
                    }
                }
                let norm = ((h * w) as f64).sqrt();
                re[k * wf + l] = (a / norm) as f32;
                im[k * wf + l] = (b / norm) as f32;
            }
        }
        let re = Tensor::from_vec(re, (h, wf), &Device::Cpu).unwrap();
        let im = Tensor::from_vec(im, (h, wf), &Device::Cpu).unwrap();
        let back = param::irfft2_ortho(&re, &im, h, w).unwrap();
        let want =
            Tensor::from_vec(x.iter().map(|v| *v as f32).collect::<Vec<_>>(), (h, w), &Device::Cpu).unwrap();
        assert!(max_abs_diff(&back, &want) < 1e-5, "{h}×{w}");
    }
}

#[test]
fn transformations_are_exact() {
    let x = Tensor::arange(0f32, 2.0 * 25.0, &Device::Cpu).unwrap().reshape((1, 2, 5, 5)).unwrap();
    // 90° counter-clockwise: dst(x, y) = src(W−1−y, x) in image coordinates (y down).
    let r = transform::rotate(&x, 90.0).unwrap();
    let want = x.transpose(2, 3).unwrap().contiguous().unwrap().flip(&[2]).unwrap();
    assert!(max_abs_diff(&r, &want) < 1e-4, "{r}");
    let r180 = transform::rotate(&x, 180.0).unwrap();
    assert!(max_abs_diff(&r180, &x.flip(&[2, 3]).unwrap()) < 1e-4);
    // Jitter moves the content right and down with zero fill.
    let t = transform::translate(&x, 2, 1).unwrap();
    assert_eq!(
        t.get(0).unwrap().get(0).unwrap().get(1).unwrap().to_vec1::<f32>().unwrap(),
        [0., 0., 0., 1., 2.]
    );
    assert_eq!(t.get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap(), [0.; 5]);
    // Pad with a constant; scale to ceil(s·H), padded back when smaller.
    let mut rng = seeded(0);
    let p = transform::Transform::Pad { width: 3, value: 0.5 }.apply(&x, &mut rng).unwrap();
    assert_eq!(p.dims(), &[1, 2, 11, 11]);
    assert_eq!(p.get(0).unwrap().get(1).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap(), [0.5; 11]);
    let big = transform::Transform::Scale(vec![1.1]).apply(&p, &mut rng).unwrap();
    assert_eq!(big.dims(), &[1, 2, 13, 13]);
    let small = transform::Transform::Scale(vec![0.9]).apply(&p, &mut rng).unwrap();
    assert_eq!(small.dims(), &[1, 2, 12, 12], "ceil(9.9) = 10, padded by ceil(1/2) = 1 on each side");
}

#[test]
fn reflect_padding_mirrors_without_repeating_the_edge_and_sums_gradients() {
    // Lucent's test_pad_reflect: pad(1) on ones(1, 3, 2, 2) is ones(1, 3, 4, 4).
    let ones = Tensor::ones((1, 3, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let p = transform::pad_reflect(&ones, 1).unwrap();
    assert!(
        max_abs_diff(&p, &Tensor::ones((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap()) == 0.0
    );
    // A real reflection, not a replicate pad: row 0 1 2 3 padded by 2 is 2 1 0 1 2 3 2 1.
    let ramp = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().reshape((1, 1, 1, 4)).unwrap();
    let ramp = ramp.repeat((1, 1, 3, 1)).unwrap();
    let r = transform::pad_reflect(&ramp, 2).unwrap();
    assert_eq!(r.dims(), &[1, 1, 7, 8]);
    let row: Vec<f32> = r.get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
    assert_eq!(row, [2., 1., 0., 1., 2., 3., 2., 1.]);
    // The gradient of the sum counts how often each source pixel appears.
    let v = candle_core::Var::from_tensor(&ramp).unwrap();
    let g = transform::pad_reflect(v.as_tensor(), 2).unwrap().sum_all().unwrap().backward().unwrap();
    let g: Vec<f32> = g.get(&v).unwrap().get(0).unwrap().get(0).unwrap().get(1).unwrap().to_vec1().unwrap();
    // Padded columns read 2 1 0 1 2 3 2 1 (columns 0…3 appear 1, 3, 3, 1 times) and padded
    // rows read 2 1 0 1 2 1 0 (the middle row, read here, appears 3 times).
    assert_eq!(g, [3., 9., 9., 3.]);
    assert!(transform::pad_reflect(&ones, 2).is_err(), "a reflection wider than the image is refused");
}

#[test]
fn the_extended_suite_is_the_notebooks_and_scaling_shrinks_only_pixel_amounts() {
    use transform::Transform::*;
    let ext = transform::extended();
    assert_eq!(ext[0], PadReflect(16));
    let Scale(s) = &ext[2] else { panic!("scale third") };
    assert_eq!((s.len(), s[0], *s.last().unwrap()), (40, 0.80, 1.19));
    let Rotate(a) = &ext[3] else { panic!("rotate fourth") };
    assert_eq!(a.len(), 20 + 10 + 40);
    assert_eq!(a.iter().filter(|&&d| d == 0.0).count(), 1 + 1 + 10, "small angles come most often");
    let small = transform::scaled(&transform::standard(), 128, 32);
    assert_eq!(small[0], Pad { width: 3, value: 0.5 });
    assert_eq!((&small[1], &small[4]), (&Jitter(2), &Jitter(2)), "a jitter keeps one pixel of movement");
    assert_eq!(small[2..4], transform::standard()[2..4]);
    assert_eq!(transform::scaled(&ext, 128, 256)[0], PadReflect(32));
}

#[test]
fn a_fixed_input_size_resizes_every_step_and_a_custom_objective_reads_its_layer() {
    let m = model();
    // The channel's mean in the left half minus the right half, from a closure.
    let left_minus_right = objective::custom("left − right", &["mixed3a"], |acts, _| {
        let a = acts.get("mixed3a")?.narrow(1, 5, 1)?;
        let w = a.dim(3)?;
        Ok((a.narrow(3, w / 2, w - w / 2)?.mean_all()? - a.narrow(3, 0, w / 2)?.mean_all()?)?)
    });
    assert_eq!(left_minus_right.layers, ["mixed3a"]);
    let p = ImageParam::new(&ImageSpec::square(24), &mut seeded(1), &Device::Cpu).unwrap();
    let cfg = RenderConfig {
        steps: 5,
        fixed_input: Some(40),
        min_input: Some(400),
        progress: false,
        ..Default::default()
    };
    let r = render::render(&m, &left_minus_right, &p, &cfg, &mut seeded(2)).unwrap();
    assert!(r.losses.last().unwrap() < &r.losses[0], "{:?}", r.losses);
    assert_eq!(r.last().dims(), &[1, 3, 24, 24]);
    assert!(r.steps_per_second() > 0.0);
}

#[test]
fn each_objective_decreases_on_a_random_weight_model() {
    let m = model();
    let cfg = RenderConfig { steps: 6, min_input: None, progress: false, ..Default::default() };
    let objectives = [
        Objective::parse(&m, "mixed3a:5").unwrap(),
        objective::neuron("mixed3a", 7, None),
        objective::channel("mixed3a", 3, None) - 1e2 * objective::diversity("mixed3a"),
        objective::direction(
            "mixed3a",
            &Tensor::ones(256, candle_core::DType::F32, &Device::Cpu).unwrap(),
            None,
        ),
        objective::channel("conv2d2", 1, None)
            + 1e-3 * objective::l2(0.5)
            + 1e-4 * objective::total_variation(),
        objective::direction_neuron(
            "mixed3b",
            &Tensor::arange(0f32, 480.0, &Device::Cpu).unwrap().affine(1.0 / 480.0, -0.5).unwrap(),
            None,
            None,
        ),
        objective::channel_interpolate("mixed3a", 3, "mixed3b", 5)
            + 0.1 * objective::alignment("mixed3a", 5.0),
        objective::channel("mixed3a", 9, Some(1)) - 1e-3 * objective::l1(0.5),
        objective::channel("conv2d1", 4, None) + objective::blur_input_each_step(),
        objective::class_logit(&m, "tabby", None).unwrap(),
    ];
    for obj in objectives {
        let p = ImageParam::new(
            &ImageSpec { space: Space::Fft, decorrelate: true, batch: 2, height: 48, width: 48, sd: 0.01 },
            &mut seeded(1),
            &Device::Cpu,
        )
        .unwrap();
        let r = render::render(&m, &obj, &p, &cfg, &mut seeded(2)).unwrap();
        let (first, last) = (r.losses[0], *r.losses.last().unwrap());
        assert!(last < first, "{}: loss {first} → {last}", obj.name);
        assert_eq!(r.images.last().unwrap().1.dims(), &[2, 3, 48, 48]);
    }
}

#[test]
fn render_keeps_thresholds_and_stops_on_nan() {
    let m = model();
    let p = ImageParam::new(
        &ImageSpec { space: Space::Pixel, decorrelate: false, batch: 1, height: 40, width: 40, sd: 0.01 },
        &mut seeded(0),
        &Device::Cpu,
    )
    .unwrap();
    let cfg = RenderConfig {
        steps: 4,
        thresholds: vec![2],
        min_input: Some(64),
        progress: false,
        ..Default::default()
    };
    let r =
        render::render(&m, &Objective::parse(&m, "mixed3a:0").unwrap(), &p, &cfg, &mut seeded(0)).unwrap();
    assert_eq!(r.images.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 4]);
    let nan = objective::channel("mixed3a", 0, None) * f64::NAN;
    let err = render::render(&m, &nan, &p, &cfg, &mut seeded(0)).err().unwrap().to_string();
    assert!(err.contains("became NaN at step 1"), "{err}");
    let err = format!("{:#}", Objective::parse(&m, "mixed4a:9999").err().unwrap());
    assert!(err.contains("units 0..=507"), "{err}");
}

#[test]
fn class_logit_finds_classes_by_name_or_index_and_rejects_ambiguity() {
    let m = model();
    let tabby = objective::class_logit(&m, "tabby", None).unwrap();
    assert!(tabby.name.contains("tabby"), "{}", tabby.name);
    assert_eq!(tabby.layers, ["logits"]);
    assert!(objective::class_logit(&m, "7", None).unwrap().name.starts_with("class_logit 7 "));
    let err = objective::class_logit(&m, "no such animal", None).err().unwrap().to_string();
    assert!(err.contains("no class"), "{err}");
    let err = objective::class_logit(&m, "5000", None).err().unwrap().to_string();
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn lowres_tensors_have_lucents_shapes_and_shift_with_reflection() {
    // Lucent's test_lowres: a (1, 3, 64, 64) tensor for a (6, 3, 128, 128) batch, with no
    // offset, offset 5, and offset [1, False, 1, True] (down 1, right 1).
    let spec =
        ImageSpec { space: Space::Pixel, decorrelate: false, batch: 6, height: 128, width: 128, sd: 0.0 };
    let mut shifted = Vec::new();
    for offset in [(0, 0), (5, 5), (1, 1)] {
        let p = ImageParam::new(&spec, &mut seeded(0), &Device::Cpu)
            .unwrap()
            .with_lowres(&[LowRes { offset, ..LowRes::shared(64) }], 0.01, &mut seeded(1))
            .unwrap();
        let vars = p.vars();
        assert_eq!(vars[1].0, "lowres0");
        assert_eq!(vars[1].1.dims(), &[1, 3, 64, 64]);
        let raw = p.raw().unwrap();
        assert_eq!(raw.dims(), &[6, 3, 128, 128]);
        assert_eq!(p.image().unwrap().dims(), &[6, 3, 128, 128]);
        // Shared: every image of the batch is the same.
        assert_eq!(max_abs_diff(&raw.get(0).unwrap(), &raw.get(5).unwrap()), 0.0);
        shifted.push(raw.get(0).unwrap().to_vec3::<f32>().unwrap());
    }
    // The corners of a 2× aligned upsampling are the tensor's corners, and a shift by (5, 5)
    // reads row |y − 5| and column |x − 5| of the unshifted image.
    let (plain, by5) = (&shifted[0], &shifted[1]);
    for c in 0..3 {
        for (y, x) in [(0, 0), (3, 9), (5, 5), (64, 100), (127, 127)] {
            let (sy, sx) = ((y as i64 - 5).unsigned_abs() as usize, (x as i64 - 5).unsigned_abs() as usize);
            assert_eq!(by5[c][y][x], plain[c][sy][sx], "channel {c} at ({y}, {x})");
        }
    }
    // Lucent's `offset=True`: half the upsampling factor.
    assert_eq!(LowRes::shared(64).half_offset(128, 128).offset, (1, 1));
    assert_eq!(LowRes::shared(16).half_offset(128, 128).offset, (4, 4));
}

#[test]
fn lowres_tensor_of_two_blends_across_the_batch() {
    let spec = ImageSpec { space: Space::Pixel, decorrelate: false, batch: 5, height: 8, width: 8, sd: 0.0 };
    let two = LowRes { batch: 2, ..LowRes::shared(8) };
    let p = ImageParam::new(&spec, &mut seeded(0), &Device::Cpu)
        .unwrap()
        .with_lowres(&[two], 1.0, &mut seeded(1))
        .unwrap();
    let leaf = p.vars()[1].1.as_tensor().clone();
    let raw = p.raw().unwrap();
    // Aligned corners over the batch: image i is (1 − i/4)·first + (i/4)·last.
    for i in 0..5 {
        let t = i as f64 / 4.0;
        let expect =
            ((leaf.get(0).unwrap() * (1.0 - t)).unwrap() + (leaf.get(1).unwrap() * t).unwrap()).unwrap();
        assert!(max_abs_diff(&raw.get(i).unwrap(), &expect) < 1e-6, "image {i}");
    }
    let err = ImageParam::new(&spec, &mut seeded(0), &Device::Cpu)
        .unwrap()
        .with_lowres(&[LowRes { batch: 6, ..LowRes::shared(8) }], 1.0, &mut seeded(1))
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn atan_matches_the_standard_library_and_its_derivative() {
    let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.05).chain([-1e4, 1e4, 1e-7]).collect();
    let x = candle_core::Var::new(xs.as_slice(), &Device::Cpu).unwrap();
    let y = cppn::atan(x.as_tensor()).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let dy = g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    for ((xi, yi), di) in xs.iter().zip(y.to_vec1::<f32>().unwrap()).zip(dy) {
        assert!((yi - xi.atan()).abs() < 2e-6, "atan({xi}) = {yi}, expected {}", xi.atan());
        let d = 1.0 / (1.0 + xi * xi);
        assert!((di - d).abs() < 2e-5 * d.max(1e-3), "atan'({xi}) = {di}, expected {d}");
    }
}

#[test]
fn cppn_starts_grey_and_fits_xor() {
    // Lucent's test_cppn_fits_xor: cppn(16), Adam 0.01, 200 steps; the loss pushes the corners
    // (0, 0) and (−1, −1) to white and the other two to black.
    let spec = ImageSpec { space: Space::Cppn { hidden: 24, layers: 8 }, ..ImageSpec::square(16) };
    let p = ImageParam::new(&spec, &mut seeded(0), &Device::Cpu).unwrap();
    let grey = p.image().unwrap();
    assert_eq!(grey.dims(), &[1, 3, 16, 16]);
    assert!(max_abs_diff(&grey, &grey.ones_like().unwrap().affine(0.5, 0.0).unwrap()) < 1e-6);
    let corners = |img: &Tensor, y: usize, x: usize| img.narrow(2, y, 1).unwrap().narrow(3, x, 1).unwrap();
    let xor = objective::custom("xor corners", &[], move |_, img| {
        let a = corners(img, 0, 0).sqr()?.sum_all()?;
        let b = corners(img, 15, 0).affine(-1.0, 1.0)?.sqr()?.sum_all()?;
        let c = corners(img, 15, 15).sqr()?.sum_all()?;
        let d = corners(img, 0, 15).affine(-1.0, 1.0)?.sqr()?.sum_all()?;
        Ok((a + b + c + d)?.neg()?)
    });
    let cfg = RenderConfig {
        steps: 200,
        lr: 0.01,
        transforms: vec![],
        min_input: None,
        progress: false,
        ..Default::default()
    };
    let r = render::render(&model(), &xor, &p, &cfg, &mut seeded(1)).unwrap();
    let img = &r.images.last().unwrap().1;
    let mean = |y, x| corners(img, y, x).mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(mean(0, 0) > 0.99 && mean(15, 15) > 0.99, "{} {}", mean(0, 0), mean(15, 15));
    assert!(mean(15, 0) < 0.01 && mean(0, 15) < 0.01, "{} {}", mean(15, 0), mean(0, 15));
}

#[test]
fn class_probability_is_the_softmax_of_the_logits() {
    let m = model();
    let images = hash_init::input(3, 64, &Device::Cpu).unwrap().repeat((2, 1, 1, 1)).unwrap();
    let cfg = RenderConfig { min_input: None, ..Default::default() };
    let c = vision_interp::models::Model::class_index(&m, "tabby").unwrap();
    let logits = vision_interp::models::Model::logits(&m, &images).unwrap().to_vec2::<f32>().unwrap();
    let z = &logits[0];
    let peak = z.iter().cloned().fold(f32::MIN, f32::max);
    let want = (z[c] - peak).exp() / z.iter().map(|v| (v - peak).exp()).sum::<f32>();
    let one = render::score(&m, &objective::class_probability(&m, "tabby", Some(1)).unwrap(), &images, &cfg)
        .unwrap();
    assert!((one - want).abs() < 1e-5 * want.max(1e-3), "{one} vs {want}");
    // Summed over the batch without an index, like class_logit.
    let both =
        render::score(&m, &objective::class_probability(&m, "tabby", None).unwrap(), &images, &cfg).unwrap();
    assert!((both - 2.0 * want).abs() < 2e-5 * want.max(1e-3), "{both} vs 2 × {want}");
}

#[test]
fn a_render_of_zero_steps_is_an_error_not_a_panic() {
    let m = model();
    let p = ImageParam::new(&ImageSpec::square(24), &mut seeded(1), &Device::Cpu).unwrap();
    let cfg = RenderConfig { steps: 0, min_input: Some(64), progress: false, ..Default::default() };
    let obj = Objective::parse(&m, "mixed3a:0").unwrap();
    let Err(e) = render::render(&m, &obj, &p, &cfg, &mut seeded(0)) else { panic!("zero steps accepted") };
    assert!(format!("{e:#}").contains("at least one step"), "{e:#}");
}
