//! Chapter 1: how an image becomes numbers, what a convolution does, and a first CNN
//! (SimpleCNN) trained from scratch on a CPU, then opened up: its filters and feature maps.
use anyhow::Result;
use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use vision_interp::cli::{CommonArgs, Session};
use vision_interp::figure::{feature_map_tiles, filter_tiles, grey, hstack, line_chart, mosaic, tint};
use vision_interp::figure::{GridSpec, Map, Panel, Series};
use vision_interp::imageio::photo;
use vision_interp::models::simple_cnn::{
    imagenet_normalize, init_varmap, ScratchData, ScratchRun, SimpleCnn,
};
use vision_interp::models::{Model, Taps};
use vision_interp::train::{train, TrainConfig};
use vision_interp::{ops, work_dir};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Images as tensors, convolution, and a first CNN trained from scratch")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
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
    let mut s = Session::start(&args.common, "chapter-01-cnn-basics")?;
    let dev = s.device.clone();

    // ANCHOR: tensor
    let img = photo("chelsea.png", 224, &dev)?; // (3, 224, 224), values in [0, 1]
    let range =
        |t: &Tensor| -> Result<(f32, f32)> { Ok((t.min_all()?.to_scalar()?, t.max_all()?.to_scalar()?)) };
    let (lo, hi) = range(&img)?;
    println!("chelsea.png as a tensor: shape {:?}, values {lo:.3} to {hi:.3}", img.dims());
    let (lo, hi) = range(&imagenet_normalize(&img.unsqueeze(0)?)?)?; // (x − μ) / σ per channel
    println!("after ImageNet normalisation: values {lo:.3} to {hi:.3}");
    // ANCHOR_END: tensor
    let mut row = vec![Panel::image(&img, "RGB")?];
    for (c, name) in ["red", "green", "blue"].into_iter().enumerate() {
        row.push(Panel::new(tint(&img.get(c)?, c)?, format!("{name} channel")));
    }
    s.save_grid(&[row], &GridSpec::new(200), ("photo", "chelsea", "rgb-channels"))?;

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
    s.save_grid(&[row], &GridSpec::new(180).title("3 × 3 kernels by hand"), ("photo", "chelsea", "kernels"))?;

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

    // ANCHOR: model
    let mut varmap = VarMap::new();
    init_varmap(&varmap, train_set.classes.len(), &mut s.rng, &dev)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let net =
        SimpleCnn::new(vb, train_set.classes.clone(), size, vision_interp::rng::seeded(args.common.seed))?;
    let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum::<usize>() - 2 * (32 + 64 + 128);
    println!("SimpleCNN: {params} trainable parameters");
    let random_filters = filter_tiles(
        &varmap.get((32, 3, 3, 3), "conv1.weight", Default::default(), DType::F32, &dev)?.copy()?,
    )?;
    // ANCHOR_END: model

    // ANCHOR: train
    let cfg = TrainConfig { epochs, batch: 32, lr: 1e-3, seed: args.common.seed };
    let checkpoint =
        work_dir().join("checkpoints").join(format!("{}.safetensors", run.tag(args.common.seed)));
    let history = train(&net, &mut varmap, &train_set, &eval_set, cfg, &dev, Some(&checkpoint))?;
    for h in &history {
        println!(
            "epoch {}: train loss {:.3}, accuracy {:.1} % | eval loss {:.3}, accuracy {:.1} %",
            h.epoch, h.train_loss, h.train_acc, h.val_loss, h.val_acc
        );
    }
    // ANCHOR_END: train
    let weights = run.weights_path(args.common.seed);
    std::fs::create_dir_all(weights.parent().expect("folder"))?;
    varmap.save(&weights)?;
    eprintln!("trained weights: {}", weights.display());
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
    let acts = net.forward_taps(&net.preprocess(&x)?, &Taps::layers(&["conv1", "conv2", "conv3"]))?;
    let mut row = vec![Panel::image(&x.squeeze(0)?, eval_set.classes[eval_set.labels[0] as usize].clone())?];
    for layer in ["conv1", "conv2", "conv3"] {
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
    s.finish();
    Ok(())
}
