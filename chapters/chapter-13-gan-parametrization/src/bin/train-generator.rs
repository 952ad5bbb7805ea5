//! Trains the book's generator, a small DCGAN, on the Fashion-MNIST subset in `assets/`: a
//! checkpoint after every epoch (a killed run resumes where it stopped, to the same weights),
//! the losses and the discriminator's verdicts per epoch, and the images of 64 fixed codes
//! after every epoch.
//!
//! ```text
//! cargo run --release -p chapter-13-gan-parametrization --bin train-generator
//! cargo run --release -p chapter-13-gan-parametrization --bin train-generator -- --quick
//! cargo run --release -p chapter-13-gan-parametrization --bin train-generator -- --save assets/models/fashion-dcgan.safetensors
//! ```
//! Its figures are the book's: `figure-bins` in the chapter's Cargo.toml, which ci/figures reads.
use anyhow::Result;
use chapter_13_gan_parametrization::dcgan::{self, DcganShape, GanTraining};
use clap::Parser;
use vision_interp::cli::{RunArgs, Session};
use vision_interp::data::{fashion_mnist, Split};
use vision_interp::figure::{
    hstack, line_chart_with, ChartSpec, GridSpec, Panel, Series, SeriesLabelPosition,
};
use vision_interp::image;
use vision_interp::imageio::to_rgb_image;
use vision_interp::optvis::tile;
use vision_interp::weights::sha256_file;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Trains the book's generator (a DCGAN) on Fashion-MNIST, with checkpoints and resume")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Epochs [default: 20; 2 with --quick]
    #[arg(long, value_parser = vision_interp::flag::count)]
    epochs: Option<usize>,
    /// Training images of the subset's 12,000 [default: all; 2,000 with --quick]
    #[arg(long, value_parser = vision_interp::flag::count)]
    images: Option<usize>,
    /// Channels of the generator's widest layer are 4 × width
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 32)]
    width: usize,
    /// Length of a code
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 64)]
    code: usize,
    /// Also save the trained generator here (safetensors); chapter 13 reads
    /// assets/models/fashion-dcgan.safetensors
    #[arg(long)]
    save: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, "chapter-13-gan-parametrization")?;
    let data = fashion_mnist(Split::Train, dcgan::SIZE)?;
    let n = s.budget(args.images, 2000, data.len()).min(data.len());
    // Grey: one channel of three.
    let images = data.images.narrow(0, 0, n)?.narrow(1, 0, 1)?;
    // ANCHOR: training
    let cfg = GanTraining {
        shape: DcganShape { code: args.code, width: args.width, channels: 1 },
        epochs: s.budget(args.epochs, 2, 20),
        batch: 64,
        lr: 2e-4,
        seed: args.run.seed,
    };
    let tag = format!("fashion-dcgan-w{}-z{}-n{n}-{}ep-seed{}", args.width, args.code, cfg.epochs, cfg.seed);
    let checkpoint = vision_interp::work_dir().join("checkpoints").join(format!("{tag}.safetensors"));
    let start = std::time::Instant::now();
    let trained = dcgan::train(&images, cfg, &s.device, Some(&checkpoint))?;
    // ANCHOR_END: training
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    let ran = cfg.epochs - trained.resumed;
    let resumed = match trained.resumed {
        0 => String::new(),
        r => format!(" (epochs 1 to {r} from the checkpoint)"),
    };
    println!(
        "{n} Fashion-MNIST images, {} epochs of batches of {}: {ran} trained in {minutes:.1} min{resumed}",
        cfg.epochs, cfg.batch
    );
    for e in &trained.history {
        println!(
            "  epoch {:>2}: losses D {:.3} G {:.3}, D(real) {:.2} D(generated) {:.2}",
            e.epoch, e.d_loss, e.g_loss, e.d_real, e.d_fake
        );
    }
    record_history(&mut s, &trained.history);
    let weights = vision_interp::work_dir().join("models").join(format!("{tag}.safetensors"));
    trained.generator.save(&weights)?;
    // The committed generator is this binary's full run with the default settings.
    let committed = vision_interp::asset("models/fashion-dcgan.safetensors");
    if committed.is_file() && !s.quick && tag == "fashion-dcgan-w32-z64-n12000-20ep-seed0" {
        let same = sha256_file(&weights)? == sha256_file(&committed)?;
        let verdict = if same { "is byte-identical to" } else { "differs from" };
        println!("the trained generator {verdict} assets/models/fashion-dcgan.safetensors");
        s.record("train_verdict", verdict);
    } else {
        s.record("train_verdict", "was not compared with"); // other settings than the committed run's
    }
    if let Some(path) = &args.save {
        trained.generator.save(path)?;
        println!("saved the generator to {}", path.display());
    }

    // The losses and the discriminator's verdicts, epoch by epoch.
    let series = |label: &str, f: &dyn Fn(&dcgan::GanEpoch) -> f32| Series {
        label: label.into(),
        points: trained.history.iter().map(|e| (e.epoch as f32, f(e))).collect(),
    };
    let title = format!("DCGAN on {n} Fashion-MNIST images");
    let losses = line_chart_with(
        &[series("discriminator", &|e| e.d_loss), series("generator", &|e| e.g_loss)],
        &ChartSpec::new(&title, "epoch", "loss", (440, 300)).integer_x(),
    )?;
    let verdicts = line_chart_with(
        &[series("D(real image)", &|e| e.d_real), series("D(generated image)", &|e| e.d_fake)],
        &ChartSpec::new(&title, "epoch", "probability of 'real'", (440, 300))
            .integer_x()
            .y_range(0.0, 1.0)
            .legend(SeriesLabelPosition::MiddleRight),
    )?;
    s.save(&hstack(&losses, &verdicts, 8), &s.figure("fashion-dcgan", "training", "curves"))?;

    // 64 real images beside the generator's images of 64 fixed codes, then the same codes
    // after every epoch as an animation.
    let sheet = |t: &candle_core::Tensor| tile(&t.repeat((1, 3, 1, 1))?, 8, 8, 0);
    let last = trained.samples.last().expect("at least one epoch");
    let panels = vec![
        Panel::image(&sheet(&images.narrow(0, 0, 64)?)?, "64 training images")?,
        Panel::image(&sheet(last)?, format!("64 codes after epoch {}", cfg.epochs))?,
    ];
    let spec = GridSpec::new(256).title(&format!("the book's generator, {} epochs", cfg.epochs));
    s.save_grid(&[panels], &spec, ("fashion-dcgan", "training", "samples"))?;
    // The animation shows the first 16 codes at twice their size, after the first epoch and
    // every second one (the figure budget).
    let frame = |t: &candle_core::Tensor| -> Result<image::RgbImage> {
        let img = to_rgb_image(&tile(&t.narrow(0, 0, 16)?.repeat((1, 3, 1, 1))?, 4, 4, 0)?)?;
        Ok(image::imageops::resize(&img, 256, 256, image::imageops::FilterType::Nearest))
    };
    let every_other = trained.samples.iter().enumerate().filter(|(i, _)| *i == 0 || i % 2 == 1);
    let frames: Vec<_> = every_other.map(|(_, t)| frame(t)).collect::<Result<_>>()?;
    s.save_animation(&frames, 400, ("fashion-dcgan", "training", "epochs"))?;
    s.finish()
}

/// The numbers of the training the page quotes: the discriminator's verdicts after the first
/// and the last epoch, and the epoch where real and generated images were closest.
fn record_history(s: &mut Session, history: &[dcgan::GanEpoch]) {
    let (Some(first), Some(last)) = (history.first(), history.last()) else { return };
    s.record("d_real_first", first.d_real);
    s.record("d_fake_first", first.d_fake);
    s.record("d_real_last", last.d_real);
    s.record("d_fake_last", last.d_fake);
    let closest = history.iter().min_by(|a, b| (a.d_real - a.d_fake).total_cmp(&(b.d_real - b.d_fake)));
    if let Some(e) = closest {
        s.record("closest_epoch", e.epoch);
        s.record("closest_d_real", e.d_real);
        s.record("closest_d_fake", e.d_fake);
    }
}
