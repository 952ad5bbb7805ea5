//! Chapter 1: how an image becomes numbers, what a convolution does, and a first CNN
//! (SimpleCNN) trained from scratch on a CPU, then opened up: its filters and feature maps.
use anyhow::Result;
use candle_core::Tensor;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{feature_map_tiles, filter_tiles, filter_tiles_each, grey, hstack, line_chart};
use vision_interp::figure::{mosaic, tint};
use vision_interp::figure::{GridSpec, Map, Panel, Series};
use vision_interp::handoff::{ScratchData, ScratchRun};
use vision_interp::imageio::photo;
use vision_interp::models::{Model, Taps};
use vision_interp::{imagenet, ops};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Images as tensors, convolution, and a first CNN trained from scratch")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// The pretrained model whose first-layer filters are shown beside SimpleCNN's
    #[command(flatten)]
    model: ModelArgs,
    /// Data to train on
    #[arg(long, value_enum, default_value_t)]
    dataset: ScratchData,
}

// ANCHOR: kernels
const KERNELS: [(&str, [f32; 9]); 5] = [
    ("Sobel x (vertical edges)", [-1., 0., 1., -2., 0., 2., -1., 0., 1.]),
    ("Sobel y (horizontal edges)", [-1., -2., -1., 0., 0., 0., 1., 2., 1.]),
    ("Laplacian", [0., 1., 0., 1., -4., 1., 0., 1., 0.]),
    ("Gaussian blur", [0.0625, 0.125, 0.0625, 0.125, 0.25, 0.125, 0.0625, 0.125, 0.0625]),
    ("sharpen", [0., -1., 0., -1., 5., -1., 0., -1., 0.]),
];
// ANCHOR_END: kernels

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let dev = s.device.clone();
    let pretrained = args.model.load(&dev)?; // its first-layer filters close the chapter

    // ANCHOR: tensor
    let img = photo("chelsea.png", 224, &dev)?; // (3, 224, 224), values in [0, 1]
    let range =
        |t: &Tensor| -> Result<(f32, f32)> { Ok((t.min_all()?.to_scalar()?, t.max_all()?.to_scalar()?)) };
    let (lo, hi) = range(&img)?;
    println!("chelsea.png as a tensor: shape {:?}, values {lo:.3} to {hi:.3}", img.dims());
    let (lo, hi) = range(&imagenet::normalize(&img.unsqueeze(0)?)?)?; // (x − μ) / σ per channel
    println!("after ImageNet normalisation: values {lo:.3} to {hi:.3}");
    // ANCHOR_END: tensor
    let mut row = vec![Panel::image(&img, "RGB")?];
    for (c, name) in ["red", "green", "blue"].into_iter().enumerate() {
        row.push(Panel::new(tint(&img.get(c)?, c)?, format!("{name} channel")));
    }
    s.save_grid(&[row], &GridSpec::new(200).photo(), ("photo", "chelsea", "rgb-channels"))?;

    // ANCHOR: convolve
    let grey_img = img.mean(0)?; // (224, 224), the average of the three channels
    let pixels = grey_img.flatten_all()?.to_vec1::<f32>()?;
    let mut row = vec![Panel::new(grey(&Map::from_tensor(&grey_img)?), "greyscale input")];
    for (name, kernel) in KERNELS {
        let out = ops::naive_conv2d(&pixels, 224, 224, &kernel, 3); // 222 × 222: no padding
        let map = Map { width: 222, height: 222, data: out.iter().map(|v| v.abs()).collect() };
        row.push(Panel::new(grey(&map.normalize_max()), format!("|{name}|")));
    }
    // ANCHOR_END: convolve
    s.save_grid(
        &[row],
        &GridSpec::new(180).title("3 × 3 kernels by hand").photo(),
        ("photo", "chelsea", "kernels"),
    )?;

    // ANCHOR: data
    let run = ScratchRun::new(args.dataset, s.quick); // Fashion-MNIST: 12,000 images, 4 epochs
    let (size, epochs, data) = (run.size, run.epochs, run.data.slug());
    let (train_set, eval_set) = run.datasets()?;
    println!(
        "{}: {} training and {} evaluation images of {size} × {size}",
        train_set.name,
        train_set.len(),
        eval_set.len()
    );
    // ANCHOR_END: data
    let examples: Vec<Panel> = (0..8)
        .map(|i| Panel::image(&train_set.images.get(i)?, &train_set.classes[train_set.labels[i] as usize]))
        .collect::<Result<_>>()?;
    s.save_grid(&[examples], &GridSpec::new(96), (data, "train", "examples"))?;

    // ANCHOR: train
    let fitted = run.fit(&train_set, &eval_set, args.run.seed, &dev)?; // resumes if interrupted
    let (net, history) = (&fitted.net, &fitted.history);
    println!("SimpleCNN: {} trainable parameters", fitted.trainable_parameters());
    for h in history {
        println!(
            "epoch {}: train loss {:.3}, accuracy {:.1} % | eval loss {:.3}, accuracy {:.1} %",
            h.epoch, h.train_loss, h.train_acc, h.val_loss, h.val_acc
        );
    }
    // ANCHOR_END: train
    eprintln!("trained weights: {}", run.weights_path(args.run.seed).display());
    let curve = |f: fn(&vision_interp::train::EpochStats) -> f32| {
        history.iter().map(|h| (h.epoch as f32, f(h))).collect()
    };
    let loss = [
        Series { label: "train".into(), points: curve(|h| h.train_loss) },
        Series { label: "eval".into(), points: curve(|h| h.val_loss) },
    ];
    let acc = [
        Series { label: "train".into(), points: curve(|h| h.train_acc) },
        Series { label: "eval".into(), points: curve(|h| h.val_acc) },
    ];
    let charts = hstack(
        &line_chart(&loss, "Cross-entropy loss", "epoch", "loss", (480, 320))?,
        &line_chart(&acc, "Accuracy", "epoch", "%", (480, 320))?,
        10,
    );
    s.save(&charts, &s.figure("simple-cnn", data, "training-curves"))?;

    // ANCHOR: inside
    let random_filters = filter_tiles(&fitted.initial_conv1)?;
    let trained_filters = filter_tiles(net.conv_weight(0))?;
    let filters = vec![
        Panel::new(mosaic(&random_filters, 8, 12, 2), "random initialisation"),
        Panel::new(mosaic(&trained_filters, 8, 12, 2), format!("after {epochs} epochs")),
    ];
    s.save_grid(
        &[filters],
        &GridSpec::new(420).title("conv1: 32 filters, 3 × 3 × RGB"),
        ("simple-cnn", &format!("{data}-conv1"), "filters"),
    )?;
    let (x, _) = eval_set.batch(&[0], &dev)?;
    let convs = net.card().roles.depth; // conv1, conv2, conv3
    let acts = net.forward_taps(&net.preprocess(&x)?, &Taps::layers(convs))?;
    let mut row = vec![Panel::image(&x.squeeze(0)?, eval_set.classes[eval_set.labels[0] as usize].clone())?];
    for layer in convs {
        let a = acts.get(layer)?.squeeze(0)?; // (C, h, w)
        let label = format!("{layer}: 16 of {} maps, {}×{}", a.dim(0)?, a.dim(1)?, a.dim(2)?);
        row.push(Panel::new(mosaic(&feature_map_tiles(&a, 16)?, 4, 64 / a.dim(1)? as u32, 2), label));
    }
    // ANCHOR_END: inside
    s.save_grid(
        &[row],
        &GridSpec::new(220).title("Feature maps of one evaluation image"),
        ("simple-cnn", &format!("{data}-conv1-3"), "feature-maps"),
    )?;
    pretrained_filters(&mut s, pretrained.as_ref())?;
    s.finish();
    Ok(())
}

/// The first-layer filters of a network trained on ImageNet, for comparison with SimpleCNN's.
fn pretrained_filters(s: &mut Session, m: &dyn Model) -> Result<()> {
    // ANCHOR: pretrained
    let w = m.first_conv()?; // (out, 3, k, k)
    let (n, k) = (w.dim(0)?, w.dim(2)?);
    let tiles = filter_tiles_each(&w)?; // each filter scaled to its own largest |weight|
    let scale = (48 / k as u32).max(6);
    // ANCHOR_END: pretrained
    let title = format!("{}: the {n} first-layer filters, {k} × {k} × RGB", m.name());
    let panel = Panel::new(mosaic(&tiles, 8, scale, 2), "each filter scaled to its own largest |w|");
    s.save_grid(&[vec![panel]], &GridSpec::new(420).title(&title), (m.name(), "first-layer", "filters"))
}
