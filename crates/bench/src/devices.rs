//! `bench devices --device cuda|metal`: the same computations on the CPU and on the chosen
//! device, and how far apart their results are. On a GPU the book's CPU kernels are replaced by
//! Candle operations (see `vision_interp::ops`), so this is the check that both paths agree:
//! forward passes and input gradients of InceptionV1 (hash-built weights) and Lite0 (the
//! book's weights), a short render, and SimpleCNN training steps. Exits with an error when a
//! difference is larger than the tolerance.
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{self, hash_init, simple_cnn, Model, SimpleCnn};
use vision_interp::optim::Adam;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, RenderConfig};
use vision_interp::rng::seeded;
use vision_interp::train::train_step;

#[derive(clap::Args)]
pub struct Args {
    /// Largest relative difference accepted (max |a − b| / max |a|)
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    /// Steps of the render compared
    #[arg(long, default_value_t = 16)]
    steps: usize,
}

/// max |a − b| / max |a| over all elements (`a` on the CPU, `b` anywhere).
fn relative(a: &Tensor, b: &Tensor) -> Result<f64> {
    let b = b.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let a = a.to_dtype(DType::F32)?;
    let diff = (&a - &b)?.abs()?.max_all()?.to_scalar::<f32>()? as f64;
    let scale = a.abs()?.max_all()?.to_scalar::<f32>()? as f64;
    Ok(diff / scale.max(1e-12))
}

/// Logits and the input gradient of logit 1.
fn logits_and_gradient(model: &dyn Model, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let xv = Var::from_tensor(x)?;
    let logits = model.logits(xv.as_tensor())?;
    let grads = logits.get(0)?.get(1)?.backward()?;
    let g = grads.get(xv.as_tensor()).context("input gradient")?.clone();
    Ok((logits, g))
}

pub fn run(a: &Args, device: &Device) -> Result<()> {
    if matches!(device, Device::Cpu) {
        bail!("bench devices compares the CPU with another device: pass --device cuda or --device metal");
    }
    let cpu = Device::Cpu;
    let mut rows: Vec<(String, f64)> = Vec::new();

    let dir = tempfile::tempdir()?;
    let weights = dir.path().join("inceptionv1.safetensors");
    candle_core::safetensors::save(&hash_init::tensors(&tensor_shapes(), 0, &cpu)?, &weights)?;
    let pair: [(&str, Box<dyn Model>, Box<dyn Model>); 2] = [
        (
            "inceptionv1",
            Box::new(InceptionV1::load(Some(&weights), &cpu)?),
            Box::new(InceptionV1::load(Some(&weights), device)?),
        ),
        (
            "efficientnet-lite0",
            models::load("efficientnet-lite0", None, &cpu)?,
            models::load("efficientnet-lite0", None, device)?,
        ),
    ];
    let x = hash_init::input(0, 224, &cpu)?;
    for (name, on_cpu, on_device) in &pair {
        let (l0, g0) = logits_and_gradient(on_cpu.as_ref(), &x)?;
        let (l1, g1) = logits_and_gradient(on_device.as_ref(), &x.to_device(device)?)?;
        rows.push((format!("{name}: logits"), relative(&l0, &l1)?));
        rows.push((format!("{name}: input gradient of logit 1"), relative(&g0, &g1)?));
    }

    // A short render with the same seed: the random transformations are drawn on the host, so
    // both devices see the same ones.
    let cfg = RenderConfig { steps: a.steps, progress: false, ..Default::default() };
    let obj = objective::channel("mixed4a", 476, None);
    let mut images = Vec::new();
    for (model, dev) in [(&pair[0].1, &cpu), (&pair[0].2, device)] {
        let mut rng = seeded(0);
        let p = ImageParam::new(&ImageSpec::square(128), &mut rng, dev)?;
        let r = render(model.as_ref(), &obj, &p, &cfg, &mut rng)?;
        images.push(r.images.last().context("no image")?.1.clone());
    }
    rows.push((
        format!("inceptionv1: image after a {}-step render", a.steps),
        relative(&images[0], &images[1])?,
    ));

    // SimpleCNN: three training steps on the same batch from the same initial weights.
    let mut losses = Vec::new();
    let mut convs = Vec::new();
    for dev in [&cpu, device] {
        let varmap = VarMap::new();
        simple_cnn::init_varmap(&varmap, 10, &mut seeded(0), dev)?;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
        let net = SimpleCnn::new(vb, (0..10).map(|i| i.to_string()).collect(), 32, seeded(1))?;
        let mut opt = Adam::new(&varmap, 1e-3)?;
        let x = hash_init::input(1, 32, dev)?.affine(0.5, 0.5)?.repeat((4, 1, 1, 1))?;
        let y = Tensor::new(&[0u32, 3, 5, 9], dev)?;
        let mut l = 0.0;
        for _ in 0..3 {
            l = train_step(&net, &mut opt, &x, &y)?.0;
        }
        losses.push(Tensor::new(&[l], &cpu)?);
        convs.push(net.conv_weight(0).clone());
    }
    rows.push(("simple-cnn: loss after 3 training steps".into(), relative(&losses[0], &losses[1])?));
    rows.push(("simple-cnn: conv1 weights after 3 steps".into(), relative(&convs[0], &convs[1])?));

    println!("\n{:<52} {:>12}", "CPU against the device", "relative");
    let mut worst: f64 = 0.0;
    for (what, r) in &rows {
        println!("{what:<52} {r:>12.1e}");
        worst = worst.max(*r);
    }
    if worst > a.tolerance {
        bail!("the largest difference, {worst:.1e}, is above the tolerance {:.0e}", a.tolerance);
    }
    println!("all within {:.0e}", a.tolerance);
    Ok(())
}
