//! Generators (chapter 13): Lucent's `upconvGAN` against Lucent's module on hash-built weights
//! (`GAN_PARITY_FIXTURE=path.json` checks another fixture of the same format), Lucent's GAN
//! tests ported (shapes of the four generators; optimising the code lowers a pixel objective
//! and a channel objective), the book's generator (trained on Fashion-MNIST, resumable), and
//! the refusals of weights and codes that do not fit.
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;

use chapter_13_gan_parametrization::dcgan::{self, DcganShape, GanTraining};
use chapter_13_gan_parametrization::{DcGenerator, GanParam, Generator, UpconvArch, UpconvGan};
#[path = "../../../crates/vision-interp/tests/common/mod.rs"]
mod common;
use common::check;
use vision_interp::models::{self, hash_init};
use vision_interp::optvis::{objective, render, RenderConfig};
use vision_interp::rng::seeded;
use vision_interp::weights::WeightStore;

fn fixture() -> Value {
    let path = std::env::var_os("GAN_PARITY_FIXTURE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/vision-interp/tests/fixtures/upconvgan-fc6-parity.json")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `arch`'s hash-built state dict, written as a safetensors file.
fn hash_file(arch: UpconvArch, phase: u32, dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join(arch.file_name()).with_extension("safetensors");
    let tensors = hash_init::tensors(&arch.tensor_shapes(), phase, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

fn hashed(arch: UpconvArch, phase: u32) -> UpconvGan {
    let store = WeightStore::from_tensors(
        std::path::Path::new("hash"),
        hash_init::tensors(&arch.tensor_shapes(), phase, &Device::Cpu).unwrap(),
    );
    UpconvGan::from_store(arch, &store).unwrap()
}

#[test]
fn upconvgan_fc6_matches_lucent_in_output_visualisation_and_code_gradient() {
    let fx = fixture();
    let phase = fx["phase"].as_u64().unwrap() as u32;
    let arch = match fx["generator"].as_str().unwrap() {
        "fc6" => UpconvArch::Fc6,
        "fc7" => UpconvArch::Fc7,
        "fc8" => UpconvArch::Fc8,
        "pool5" => UpconvArch::Pool5,
        other => panic!("unknown generator {other}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let g = UpconvGan::load(arch, Some(&hash_file(arch, phase, &dir)), &Device::Cpu).unwrap();
    let shape: Vec<usize> =
        fx["code_grad"]["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let n: usize = shape.iter().product();
    let code: Vec<f32> = hash_init::uniform("code", phase, n).into_iter().map(|u| 2.0 * u - 1.0).collect();
    let code = Var::from_tensor(&Tensor::from_vec(code, shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
    let out = g.forward(code.as_tensor()).unwrap();
    let vis = g.visualize(code.as_tensor()).unwrap();
    let e_out = check("output", &out, &fx["output"], 1e-4);
    let e_vis = check("visualize", &vis, &fx["visualize"], 1e-4);
    // The fixture's loss: minus the mean red of the raw output's central 64 × 64, minus the
    // mean green of the visualisation.
    let centre = out.narrow(1, 0, 1).unwrap().narrow(2, 96, 64).unwrap().narrow(3, 96, 64).unwrap();
    let green = vis.narrow(1, 1, 1).unwrap();
    let loss = (centre.mean_all().unwrap().neg().unwrap() - green.mean_all().unwrap()).unwrap();
    let l = loss.to_scalar::<f32>().unwrap() as f64;
    let want = fx["loss"].as_f64().unwrap();
    assert!((l - want).abs() < 1e-4 * want.abs(), "loss {l} vs Lucent's {want}");
    let grad = loss.backward().unwrap().get(code.as_tensor()).unwrap().clone();
    // The gradient is a sum over the 65,536 pixels of the output of terms of both signs; in
    // f32 both sides carry a noise of about 5e-8 on entries whose RMS is 7e-5 (Lucent's values
    // are up to 2e-4 and agree to 3e-4 of themselves), hence a looser tolerance than the
    // forward pass's.
    let e_grad = check("code gradient", &grad, &fx["code_grad"], 3e-3);
    println!(
        "output {e_out:.1e}, visualize {e_vis:.1e}, loss {l} (Lucent {want}), code gradient {e_grad:.1e}"
    );
}

#[test]
fn upconvgan_every_generator_makes_256_pixel_images_from_its_code() {
    // Lucent's test_fc6gan_load … test_pool5gan_load: visualize(randn(2, codelen)).
    for arch in UpconvArch::ALL {
        let g = hashed(arch, 3);
        let mut shape = vec![2];
        shape.extend(arch.code_shape());
        let code =
            vision_interp::rng::randn(&mut seeded(1), shape.as_slice(), 0.0, 1.0, &Device::Cpu).unwrap();
        let img = g.visualize(&code).unwrap();
        assert_eq!(img.dims(), &[2, 3, 256, 256], "{}", arch.name());
        let (lo, hi) = (
            img.min_all().unwrap().to_scalar::<f32>().unwrap(),
            img.max_all().unwrap().to_scalar::<f32>().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && hi > lo,
            "{}: {lo}..{hi}",
            arch.name()
        );
    }
}

/// Lucent's `assert_gan_gradient_descent`: five steps of Adam 0.05 on a code lower the loss.
fn descends(
    g: &dyn Generator,
    model: &dyn vision_interp::models::Model,
    obj: &vision_interp::optvis::Objective,
) {
    let mut rng = seeded(2);
    let param = GanParam::new(g, 1, 1.0, &mut rng, &Device::Cpu).unwrap();
    let cfg = RenderConfig {
        steps: 5,
        lr: 0.05,
        transforms: vec![],
        min_input: None,
        progress: false,
        ..Default::default()
    };
    let before = -vision_interp::optvis::score(model, obj, &g.images(param.code()).unwrap(), &cfg).unwrap();
    render(model, obj, &param, &cfg, &mut rng).unwrap();
    let after = -vision_interp::optvis::score(model, obj, &g.images(param.code()).unwrap(), &cfg).unwrap();
    assert!(after < before, "{}: loss {before} → {after}", obj.name);
}

#[test]
fn upconvgan_code_optimisation_lowers_a_pixel_and_a_channel_objective() {
    let g = hashed(UpconvArch::Fc6, 5);
    let inception = models::entry("inceptionv1").unwrap().hashed(0, &Device::Cpu).unwrap();
    // Lucent's neuron("input", 0): the red value of the centre pixel (128, 128).
    let red = objective::custom("red at the centre", &[], |_, img| {
        Ok(img.narrow(1, 0, 1)?.narrow(2, 128, 1)?.narrow(3, 128, 1)?.mean_all()?.neg()?)
    });
    descends(&g, inception.as_ref(), &red);
    descends(&g, inception.as_ref(), &objective::channel("mixed3a_1x1_pre_relu_conv", 0, None));
}

#[test]
fn generator_weights_of_another_architecture_and_codes_of_the_wrong_size_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // fc8's weights read as fc6's: the first layer takes 1000 values, not 4096.
    let e = UpconvGan::load(UpconvArch::Fc6, Some(&hash_file(UpconvArch::Fc8, 0, &dir)), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`defc7.weight` has shape [4096, 1000], expected [4096, 4096]"), "{e}");
    let g = hashed(UpconvArch::Pool5, 0);
    let e =
        g.visualize(&Tensor::zeros((1, 4096), DType::F32, &Device::Cpu).unwrap()).unwrap_err().to_string();
    assert!(e.contains("codes of shape (batch, 256, 6, 6), not [1, 4096]"), "{e}");
    let e = GanParam::new(&g, 1, 1.0, &mut seeded(0), &Device::Cpu).map(|_| ()).err();
    assert!(e.is_none(), "a code of the generator's own shape is accepted");
    let e = match GanParam::from_code(&g, &Tensor::zeros((2, 100), DType::F32, &Device::Cpu).unwrap()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a 100-value code was accepted"),
    };
    assert!(e.contains("deepsim-pool5 takes codes of shape (batch, 256, 6, 6)"), "{e}");
    let e = UpconvGan::load(UpconvArch::Fc6, Some(&dir.path().join("none.pt")), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--generator-weights") && e.contains("no such file"), "{e}");
}

#[test]
fn without_weights_the_offline_message_names_lucents_address() {
    let dir = tempfile::tempdir().unwrap();
    // Only this test changes these variables in this test binary.
    std::env::set_var("VISION_INTERP_CACHE", dir.path());
    std::env::set_var("TORCH_HOME", dir.path().join("torch"));
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let e = UpconvGan::load(UpconvArch::Fc7, None, &Device::Cpu).err().unwrap().to_string();
    for want in ["upconvGAN_fc7.pt (not there)", "HF_HUB_OFFLINE", "onedrive.live.com", "--generator-weights"]
    {
        assert!(e.contains(want), "no `{want}` in: {e}");
    }
}

fn fashion(n: usize) -> Tensor {
    let data = vision_interp::data::fashion_mnist(vision_interp::data::Split::Train, 32).unwrap();
    data.images.narrow(0, 0, n).unwrap().narrow(1, 0, 1).unwrap()
}

#[test]
fn a_resumed_training_ends_where_an_uninterrupted_one_does() {
    let images = fashion(96);
    let shape = DcganShape { code: 8, width: 4, channels: 1 };
    let cfg = GanTraining { shape, epochs: 2, batch: 32, lr: 2e-4, seed: 7 };
    let dir = tempfile::tempdir().unwrap();
    let whole = dcgan::train(&images, cfg, &Device::Cpu, None).unwrap();
    let ckpt = dir.path().join("gan.safetensors");
    dcgan::train(&images, GanTraining { epochs: 1, ..cfg }, &Device::Cpu, Some(&ckpt)).unwrap();
    let resumed = dcgan::train(&images, cfg, &Device::Cpu, Some(&ckpt)).unwrap();
    assert_eq!(whole.history, resumed.history);
    let z = dcgan::fixed_codes(&shape, 7, &Device::Cpu).unwrap();
    let (a, b) =
        (whole.generator.forward_t(&z, false).unwrap(), resumed.generator.forward_t(&z, false).unwrap());
    assert_eq!(common::max_abs_diff(&a, &b), 0.0, "the resumed generator differs");
    // Saved and loaded back, the generator draws the same images.
    let path = dir.path().join("g.safetensors");
    resumed.generator.save(&path).unwrap();
    let loaded = DcGenerator::load(&path, &Device::Cpu).unwrap();
    assert_eq!(common::max_abs_diff(&loaded.forward_t(&z, false).unwrap(), &b), 0.0);
}
