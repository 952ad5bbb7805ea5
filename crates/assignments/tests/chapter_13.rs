//! Chapter 13, the generator's output: `chapter_13_gan_parametrization::UpconvGan::visualize`, against Lucent's module.
use candle_core::{Device, Tensor, Var};
use chapter_13_gan_parametrization::{UpconvArch, UpconvGan};
use vision_interp::models::hash_init;
use vision_interp::weights::WeightStore;

mod common;
use common::{fixture, summary_difference, values};

fn generator(arch: UpconvArch, phase: u32) -> UpconvGan {
    let tensors = hash_init::tensors(&arch.tensor_shapes(), phase, &Device::Cpu).unwrap();
    UpconvGan::from_store(arch, &WeightStore::from_tensors(std::path::Path::new("hash"), tensors)).unwrap()
}

#[test]
fn visualize_matches_lucent() {
    let fx = fixture("upconvgan-fc6-parity.json");
    let phase = fx["phase"].as_u64().unwrap() as u32;
    let g = generator(UpconvArch::Fc6, phase);
    let code: Vec<f32> = hash_init::uniform("code", phase, 4096).into_iter().map(|u| 2.0 * u - 1.0).collect();
    let code = Tensor::from_vec(code, (1, 4096), &Device::Cpu).unwrap();
    let e = summary_difference(&g.visualize(&code).unwrap(), &fx["visualize"]);
    assert!(e < 1e-4, "visualize differs from Lucent's by {e:.1e}");
}

#[test]
fn images_stay_in_the_unit_range_with_no_gradient_where_clipped() {
    let g = generator(UpconvArch::Fc8, 2);
    let code = Var::from_tensor(&(common::randn(1, &[1, 1000]) * 300.0).unwrap()).unwrap();
    let img = g.visualize(code.as_tensor()).unwrap();
    let v = values(&img);
    assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)), "a pixel outside [0, 1]");
    let clipped = v.iter().filter(|&&p| p == 0.0 || p == 1.0).count();
    assert!(clipped > 1000, "large codes should saturate pixels ({clipped} did)");
    // The gradient of the clipped pixels alone is zero.
    let mask: Vec<f32> = v.iter().map(|&p| if p == 0.0 || p == 1.0 { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, img.dims(), &Device::Cpu).unwrap();
    let g = (img * mask).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = g.get(code.as_tensor()).map(values).unwrap_or_default();
    assert!(grad.iter().all(|&d| d == 0.0), "clipped pixels passed a gradient to the code");
}
