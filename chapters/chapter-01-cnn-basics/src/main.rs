//! Chapter 1: how an image becomes numbers, what a convolution does, and a first CNN
//! (SimpleCNN) trained from scratch on a CPU, then opened up: its filters and feature maps.
use anyhow::Result;
use candle_core::Tensor;
use chapter_01_cnn_basics::scratch::{ScratchArgs, ScratchData};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{
    feature_map_tiles, filter_tiles, filter_tiles_each, filter_tiles_grey, grey, hstack,
};
use vision_interp::figure::{in_rows, line_chart_with, mosaic, tint, ChartSpec};
use vision_interp::figure::{GridSpec, Map, Panel, Series, SeriesLabelPosition};
use vision_interp::imageio::photo;
use vision_interp::models::{Model, Taps};
use vision_interp::{attribution, imagenet, ops};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Images as tensors, convolution, and a first CNN trained from scratch")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// The pretrained model whose first-layer filters are shown beside SimpleCNN's
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    scratch: ScratchArgs,
}

// ANCHOR: kernels
const KERNELS: [(&str, [f32; 9]); 5] = [
    ("Sobel x", [-1., 0., 1., -2., 0., 2., -1., 0., 1.]),
    ("Sobel y", [-1., -2., -1., 0., 0., 0., 1., 2., 1.]),
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
        // Clipped at the 99th percentile: a few strong edges would otherwise set the scale and
        // leave the rest of a map (the Laplacian's above all) nearly black.
        row.push(Panel::new(grey(&map.normalize_quantile(0.99)), format!("|{name}|")));
    }
    // ANCHOR_END: convolve
    // ANCHOR: sobel
    let gx = ops::naive_conv2d(&pixels, 224, 224, &KERNELS[0].1, 3);
    let gy = ops::naive_conv2d(&pixels, 224, 224, &KERNELS[1].1, 3);
    let magnitude: Vec<f32> = gx.iter().zip(&gy).map(|(x, y)| (x * x + y * y).sqrt()).collect();
    let map = Map { width: 222, height: 222, data: magnitude };
    row.insert(3, Panel::new(grey(&map.normalize_quantile(0.99)), "Sobel magnitude"));
    // ANCHOR_END: sobel
    s.save_grid(
        &in_rows(row, 4),
        &GridSpec::new(180)
            .title("3 × 3 kernels by hand (absolute values, each clipped at its 99th percentile)")
            .photo(),
        ("photo", "chelsea", "kernels"),
    )?;

    // ANCHOR: data
    let run = args.scratch.run(s.quick); // Fashion-MNIST: 12,000 images, 4 epochs
    let (size, epochs, data) = (run.size, run.epochs, run.data.slug());
    let (train_set, eval_set) = run.datasets()?;
    println!(
        "{}: {} training and {} evaluation images of {size} × {size}",
        train_set.name,
        train_set.len(),
        eval_set.len()
    );
    // ANCHOR_END: data
    s.record("train_images", train_set.len());
    s.record("eval_images", eval_set.len());
    s.record("epochs", epochs);
    let examples: Vec<Panel> = (0..8)
        .map(|i| Panel::image(&train_set.images.get(i)?, &train_set.classes[train_set.labels[i] as usize]))
        .collect::<Result<_>>()?;
    s.save_grid(&[examples], &GridSpec::new(96), (data, "train", "examples"))?;

    let started = std::time::Instant::now();
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
    s.record_timing("train_s", (started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    record_history(&mut s, history, eval_set.len(), fitted.trainable_parameters());
    eprintln!("trained weights: {}", run.weights_path(args.run.seed).display());
    let curve = |f: fn(&chapter_01_cnn_basics::train::EpochStats) -> f32| {
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
    let chart = |series: &[Series], title: &str, y: &str, legend| {
        line_chart_with(series, &ChartSpec::new(title, "epoch", y, (480, 320)).integer_x().legend(legend))
    };
    let charts = hstack(
        &chart(&loss, "Cross-entropy loss", "loss", SeriesLabelPosition::UpperRight)?,
        &chart(&acc, "Accuracy", "%", SeriesLabelPosition::LowerRight)?,
        10,
    );
    s.save(&charts, &s.figure("simple-cnn", data, "training-curves"))?;

    // ANCHOR: inside
    // Fashion-MNIST is grey, stored as three equal channels: only the sum of a filter's three
    // colour planes ever meets an image, so that is what is drawn.
    let grey_data = run.data == ScratchData::FashionMnist;
    let tiles = |w: &Tensor| if grey_data { filter_tiles_grey(w) } else { filter_tiles(w) };
    let filters = vec![
        Panel::new(mosaic(&tiles(&fitted.initial_conv1)?, 8, 12, 2), "random initialisation"),
        Panel::new(mosaic(&tiles(net.conv_weight(0))?, 8, 12, 2), format!("after {epochs} epochs")),
    ];
    let what = if grey_data { "summed over R, G, B" } else { "3 × 3 × RGB" };
    s.save_grid(
        &[filters],
        &GridSpec::new(420).title(&format!("conv1: 32 filters, 3 × 3, {what}")),
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
    receptive_fields(&mut s, &[net as &dyn Model, pretrained.as_ref()])?;
    s.finish()
}

/// The numbers of the training run that the page quotes: the size of the network, each
/// epoch's losses and accuracies (as shares), and the standard error of the last evaluation
/// accuracy on `n_eval` images, √(p(1 − p)/n).
fn record_history(
    s: &mut Session,
    history: &[chapter_01_cnn_basics::train::EpochStats],
    n_eval: usize,
    params: usize,
) {
    s.record("parameters", params);
    for h in history {
        let e = h.epoch;
        s.record(&format!("train_loss_{e}"), h.train_loss);
        s.record(&format!("train_acc_{e}"), h.train_acc / 100.0);
        s.record(&format!("eval_loss_{e}"), h.val_loss);
        s.record(&format!("eval_acc_{e}"), h.val_acc / 100.0);
    }
    if let Some(last) = history.last() {
        let p = last.val_acc / 100.0;
        s.record("eval_acc", p);
        s.record("train_acc", last.train_acc / 100.0);
        s.record("eval_acc_se", (p * (1.0 - p) / n_eval.max(1) as f32).sqrt());
    }
}

/// The receptive field and stride of each layer of each model, measured by gradient.
fn receptive_fields(s: &mut Session, models: &[&dyn Model]) -> Result<()> {
    println!("receptive fields, measured (the input square that moves a layer's centre position):");
    for m in models {
        // ANCHOR: receptive_fields
        for layer in m.card().roles.depth {
            let info = m.layer(layer)?;
            let (field, stride) =
                attribution::receptive_field(*m, layer, m.input_size(), &s.device, &mut s.rng)?;
            println!(
                "  {:<18} {layer:<7} {:>4} × {:<3} stride {stride:>3}, field {field:>4} px",
                m.name(),
                info.channels,
                info.height
            );
        }
        // ANCHOR_END: receptive_fields
    }
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
