//! The same computations on two paths, for checking that they agree: the book's CPU kernels
//! against the Candle operations that GPUs run ([`vision_interp::ops::set_cpu_kernels`]), or the CPU
//! against a GPU (`bench devices`). [`computations`] runs a fixed set on one device and
//! returns its results by name; [`compare`] lines two such sets up.
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{self, hash_init, simple_cnn, Model, SimpleCnn};
use vision_interp::optim::Adam;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, RenderConfig};
use vision_interp::rng::seeded;
use vision_interp::weights::WeightStore;

/// On `device`: logits and input gradients of InceptionV1 (hash-built weights) and Lite0 (the
/// book's weights) at `size` px, the image after a `steps`-step render of `mixed4a:476`, and
/// SimpleCNN's loss and first filters after three training steps. Results are on the CPU.
pub fn computations(device: &Device, size: usize, steps: usize) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    let cpu = Device::Cpu;
    let t = hash_init::tensors(&tensor_shapes(), 0, device)?;
    let inception = InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t))?;
    let lite0 = models::load("efficientnet-lite0", None, device)?;
    let x = hash_init::input(0, size, device)?;
    for (name, m) in [("inceptionv1", &inception as &dyn Model), ("efficientnet-lite0", lite0.as_ref())] {
        let (g, l) = vision_interp::attribution::input_gradients(m, &x, 1)?;
        out.push((format!("{name}: logits"), l.to_device(&cpu)?));
        out.push((format!("{name}: input gradient of logit 1"), g.to_device(&cpu)?));
    }

    // The random transformations are drawn on the host, so both paths see the same ones.
    let cfg = RenderConfig { steps, progress: false, min_input: Some(size), ..Default::default() };
    let mut rng = seeded(0);
    // Lucent's proportions: a 128-px image for a 224-px input.
    let p = ImageParam::new(&ImageSpec::square(size * 4 / 7), &mut rng, device)?;
    let r = render(&inception, &objective::channel("mixed4a", 476, None), &p, &cfg, &mut rng)?;
    let img = &r.images.last().context("no image")?.1;
    out.push((format!("inceptionv1: image after a {steps}-step render"), img.to_device(&cpu)?));

    let varmap = VarMap::new();
    simple_cnn::init_varmap(&varmap, 10, &mut seeded(0), device)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = SimpleCnn::new(vb, (0..10).map(|i| i.to_string()).collect(), 32, seeded(1))?;
    let mut opt = Adam::new(&varmap, 1e-3)?;
    let x = hash_init::input(1, 32, device)?.affine(0.5, 0.5)?.repeat((4, 1, 1, 1))?;
    let y = Tensor::new(&[0u32, 3, 5, 9], device)?;
    let mut loss = 0.0;
    for _ in 0..3 {
        loss = chapter_01_cnn_basics::train::train_step(&net, &mut opt, &x, &y)?.0;
    }
    out.push(("simple-cnn: loss after 3 training steps".into(), Tensor::new(&[loss], &cpu)?));
    out.push(("simple-cnn: conv1 weights after 3 steps".into(), net.conv_weight(0).to_device(&cpu)?));
    Ok(out)
}

/// `‖a − b‖₂ / ‖a‖₂`. (A largest-element measure would also flag max-pooling windows whose
/// two largest values are within rounding of each other, where the two paths may route the
/// gradient to different elements, both correctly.)
pub fn relative(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (a, b) = (a.to_dtype(DType::F64)?, b.to_device(a.device())?.to_dtype(DType::F64)?);
    let diff = (&a - &b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f64>()?;
    let norm = a.sqr()?.sum_all()?.sqrt()?.to_scalar::<f64>()?;
    Ok(diff / norm.max(1e-30))
}

/// Relative differences of two [`computations`] results, by name.
pub fn compare(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> Result<Vec<(String, f64)>> {
    a.iter().zip(b).map(|((name, x), (_, y))| Ok((name.clone(), relative(x, y)?))).collect()
}

/// The tolerance for result `what`: `base`, or 5e-2 for a render. Adam's first steps move
/// every coordinate by about ±lr whatever the size of its gradient, so rounding differences in
/// near-zero gradients show in a rendered image.
pub fn tolerance(what: &str, base: f64) -> f64 {
    if what.contains("render") {
        base.max(5e-2)
    } else {
        base
    }
}
