//! Chapter 11: Lucent's style-transfer notebook (Lucid's style transfer after Gatys et al.),
//! rebuilt and taken further. An image optimised so that its activations at a content layer
//! match a photo's and its Gram matrices at the style layers match a painting's; then what each
//! choice does: the weight between the two, early against late style layers, and the Gram
//! matrix against the channels' means and deviations.
use anyhow::{ensure, Result};
use chapter_11_style_transfer::style::{self, StyleStatistic};
use chapter_11_style_transfer::STYLE;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{chart_pair, GridSpec, Panel, Series, SeriesLabelPosition};
use vision_interp::imageio::load_square;
use vision_interp::models::Model;
use vision_interp::optvis::{render, score, RenderConfig};
use vision_interp::Tensor;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's style transfer: a photo's content in a painting's style")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The content photo [default: the Eiffel Tower, assets/photos/collection/monuments/france-eiffelTower.jpg]
    #[arg(long)]
    content: Option<std::path::PathBuf>,
    /// Style paintings, comma-separated; the first is used for the ablations [default: Van
    /// Gogh's Church at Auvers and Café Terrace at Night, assets/photos/paintings/]
    #[arg(long, value_delimiter = ',')]
    style: Vec<std::path::PathBuf>,
    /// Content layers, comma-separated [default: the model's, stage2 on Lite0]
    #[arg(long, value_delimiter = ',')]
    content_layers: Vec<String>,
    /// Style layers, comma-separated [default: the model's, stem, stage1, …, stage4 on Lite0]
    #[arg(long, value_delimiter = ',')]
    style_layers: Vec<String>,
    /// Weight of the content loss against a style loss of weight 1 [default: the model's; Lucid: 100]
    #[arg(long, value_parser = vision_interp::flag::non_negative)]
    content_weight: Option<f64>,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

/// One style transfer's settings.
#[derive(Clone)]
struct Recipe {
    label: String,
    /// The key of its numbers in `numbers.json` (`early_c`, `early_s`, …).
    key: String,
    content_weight: f64,
    style_weight: f64,
    style_layers: Vec<String>,
    statistic: StyleStatistic,
}

/// A finished transfer and what it reached: both losses measured with the default layers and
/// the Gram matrix (a common ruler, which favours the recipe that optimises exactly it), and
/// the style loss the recipe itself optimised.
struct Transferred {
    image: Tensor,
    /// The untransformed batch (transfer, photo, painting), to measure other losses on.
    batch: Tensor,
    content: f32,
    style: f32,
    own: f32,
}

impl Transferred {
    fn caption(&self, what: &str) -> String {
        format!("{what}: c {:.2}, s {:.1}", self.content, self.style)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = STYLE.chosen(m.name());
    let chosen = |flag: &[String], role: Option<&[&str]>, fallback: &[&str]| -> Result<Vec<String>> {
        let names: Vec<&str> = if flag.is_empty() {
            role.unwrap_or(fallback).to_vec()
        } else {
            flag.iter().map(String::as_str).collect()
        };
        names.iter().map(|l| Ok(m.layer(l)?.name.clone())).collect()
    };
    let depth = m.card().roles.depth;
    ensure!(!depth.is_empty(), "{} names no layers to choose content and style layers from", m.name());
    let content_layers =
        chosen(&args.content_layers, roles.map(|r| r.content), &depth[depth.len() / 3..][..1])?;
    let style_layers = chosen(&args.style_layers, roles.map(|r| r.style), &depth[..depth.len() / 2])?;
    let content_weight = args.content_weight.unwrap_or(roles.map_or(100.0, |r| r.content_weight));
    ensure!(
        content_weight.is_finite() && content_weight > 0.0,
        "--content-weight must be positive, not {content_weight}"
    );
    let steps = s.budget(args.steps, 24, 128);
    let size = if s.quick { 96 } else { m.input_size() } as u32;

    // Every image is read before anything is written: a missing painting stops the run here.
    let content_path = args
        .content
        .clone()
        .unwrap_or_else(|| vision_interp::asset("photos/collection/monuments/france-eiffelTower.jpg"));
    let (photo, note) = load_square(&content_path, size, &s.device)?;
    println!("content: {note}");
    let style_paths = if args.style.is_empty() {
        ["church-at-auvers.jpg", "cafe-terrace-at-night.jpg"]
            .map(|p| vision_interp::asset(&format!("photos/paintings/{p}")))
            .to_vec()
    } else {
        args.style.clone()
    };
    let mut paintings = Vec::new();
    for path in &style_paths {
        let (img, note) = load_square(path, size, &s.device)?;
        println!("style:   {note}");
        let name = path.file_stem().map_or("painting".into(), |n| n.to_string_lossy().replace('-', " "));
        paintings.push((img, name));
    }
    println!(
        "content layers {}, style layers {}, content weight {content_weight}, {size} px, {steps} steps\n",
        content_layers.join(", "),
        style_layers.join(", ")
    );
    let cfg = RenderConfig { steps, min_input: None, ..Default::default() };
    let start = s.rng.clone();
    let base = Recipe {
        label: "the transfer".into(),
        key: "transfer".into(),
        content_weight,
        style_weight: 1.0,
        style_layers: style_layers.clone(),
        statistic: StyleStatistic::Gram,
    };
    let run = |s: &mut Session, painting: &Tensor, r: &Recipe| -> Result<Transferred> {
        s.rng = start.clone();
        transfer(s, m, &photo, painting, &content_layers, &style_layers, r, &cfg)
    };

    // The transfer, in each painting's style.
    let mut row = vec![Panel::image(&photo.get(0)?, "photo")?];
    let mut main = Vec::new();
    for (i, (painting, name)) in paintings.iter().enumerate() {
        let key = format!("painting{}", i + 1);
        let t = run(&mut s, painting, &Recipe { label: format!("in {name}"), key, ..base.clone() })?;
        row.push(Panel::image(&painting.get(0)?, name.clone())?);
        row.push(Panel::image(&t.image, t.caption("transfer"))?);
        main.push(t);
    }
    let spec = |what: &str| {
        GridSpec::new(170).photo().title(&format!(
            "{} style transfer{what}: content {}, style {}…{}, {size} px, {steps} steps",
            m.name(),
            content_layers.join("+"),
            style_layers[0],
            style_layers[style_layers.len() - 1]
        ))
    };
    let rows: Vec<Vec<Panel>> = row.chunks(5).map(<[Panel]>::to_vec).collect();
    s.save_grid(&rows, &spec(""), (m.name(), "style", "transfer"))?;

    // The weight between content and style, with the first painting.
    let painting = &paintings[0].0;
    let mut sweep = Vec::new();
    for (label, key, cw, sw) in [
        ("content only", "content_only", content_weight, 0.0),
        ("style 0.1", "style_01", content_weight, 0.1),
        ("style 1", "style_1", content_weight, 1.0),
        ("style 10", "style_10", content_weight, 10.0),
        ("style only", "style_only", 0.0, 1.0),
    ] {
        let t = if sw == 1.0 && cw == content_weight {
            Transferred { image: main[0].image.clone(), batch: main[0].batch.clone(), ..main[0] }
        } else {
            let key = key.into();
            let r = Recipe { label: label.into(), key, content_weight: cw, style_weight: sw, ..base.clone() };
            run(&mut s, painting, &r)?
        };
        sweep.push((label, t));
    }
    let row: Vec<Panel> =
        sweep.iter().map(|(l, t)| Panel::image(&t.image, t.caption(l))).collect::<Result<_>>()?;
    s.save_grid(&[row], &spec(", the style weight"), (m.name(), "style", "weight"))?;
    trade_off(&mut s, m, &sweep)?;

    // Early against late style layers, and the Gram matrix against means and deviations. Each
    // is judged twice: by the common ruler (all layers, Gram), and by its own style loss as a
    // fraction of the content-only transfer's (which did not try to match the painting).
    let half = style_layers.len().div_ceil(2);
    let unstyled = &sweep[0].1.batch;
    let mut row = vec![Panel::image(&painting.get(0)?, paintings[0].1.clone())?];
    let all = ("all layers", "all", style_layers.clone(), StyleStatistic::Gram);
    let early = ("early layers", "early", style_layers[..half].to_vec(), StyleStatistic::Gram);
    let late =
        ("late layers", "late", style_layers[style_layers.len() - half..].to_vec(), StyleStatistic::Gram);
    let mean_std = ("μ, σ", "mean_std", style_layers.clone(), StyleStatistic::MeanStd);
    for (label, key, layers, statistic) in [all, early, late, mean_std] {
        let t = if key == "all" {
            Transferred { image: main[0].image.clone(), batch: main[0].batch.clone(), ..main[0] }
        } else {
            let what = match statistic {
                StyleStatistic::Gram => format!("{label} ({})", layers.join(", ")),
                StyleStatistic::MeanStd => "means and deviations".to_string(),
            };
            let r = Recipe {
                label: what,
                key: key.into(),
                style_layers: layers.clone(),
                statistic,
                ..base.clone()
            };
            run(&mut s, painting, &r)?
        };
        let before = style_of(m, unstyled, &layers, statistic, &cfg)?;
        let ratio = t.own / before;
        println!(
            "  {label:<14} own style loss {:>8.3}, content only's {before:>8.3}: ratio {ratio:.2}",
            t.own
        );
        s.record(&format!("{key}_own_ratio"), ratio);
        let short = label.trim_end_matches(" layers");
        row.push(Panel::image(&t.image, format!("{short}: s {:.1}, r {ratio:.2}", t.style))?);
    }
    s.save_grid(&[row], &spec(", style layers and statistic"), (m.name(), "style", "ablations"))?;
    s.finish()
}

/// The layer names as `&str`.
fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// One style transfer of `photo` into `painting`'s style with recipe `r`, and both losses it
/// reached (measured with `content_layers` and `style_layers`, Gram, on the untransformed
/// batch), recorded as `<key>_c` and `<key>_s`, and the style loss of its own recipe.
#[allow(clippy::too_many_arguments)]
fn transfer(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    painting: &Tensor,
    content_layers: &[String],
    style_layers: &[String],
    r: &Recipe,
    cfg: &RenderConfig,
) -> Result<Transferred> {
    let (content, styles) = (names(content_layers), names(&r.style_layers));
    // ANCHOR: transfer
    // The batch (transfer, photo, painting) and Lucid's objective, minimised.
    let param = style::transfer_batch(photo, painting, &mut s.rng, &s.device)?;
    let obj = style::transfer_objective(&content, &styles, r.content_weight, r.style_weight, r.statistic);
    let out = render(m, &obj, &param, cfg, &mut s.rng)?;
    // ANCHOR_END: transfer
    let batch = out.last();
    let c = -score(m, &style::content_loss(&content, 1), batch, cfg)?;
    let st = style_of(m, batch, style_layers, StyleStatistic::Gram, cfg)?;
    let own = style_of(m, batch, &r.style_layers, r.statistic, cfg)?;
    println!("  {:<44} content loss {c:>7.3}   style loss {st:>8.3}   {}", r.label, out.summary());
    s.record(&format!("{}_c", r.key), c);
    s.record(&format!("{}_s", r.key), st);
    Ok(Transferred { image: batch.get(0)?, batch: batch.clone(), content: c, style: st, own })
}

/// The style loss of image 0 of `batch` (transfer, photo, painting) against the painting, with
/// `layers` and `statistic`, on the untransformed batch.
fn style_of(
    m: &dyn Model,
    batch: &Tensor,
    layers: &[String],
    statistic: StyleStatistic,
    cfg: &RenderConfig,
) -> Result<f32> {
    Ok(-score(m, &style::style_loss(&names(layers), 2, statistic), batch, cfg)?)
}

/// The sweep's trade-off: the content and the style loss each transfer reached, against the
/// style weight.
fn trade_off(s: &mut Session, m: &dyn Model, sweep: &[(&str, Transferred)]) -> Result<()> {
    let series = |label: &str, f: &dyn Fn(&Transferred) -> f32| Series {
        label: label.into(),
        points: sweep.iter().enumerate().map(|(i, (_, t))| (i as f32, f(t))).collect(),
    };
    let axis = sweep.iter().enumerate().map(|(i, (l, _))| format!("{i}: {l}")).collect::<Vec<_>>().join(", ");
    let chart = chart_pair(
        &format!("{} style transfer", m.name()),
        &axis,
        [
            ("content loss", series("content", &|t| t.content), SeriesLabelPosition::UpperLeft),
            ("style loss", series("style", &|t| t.style), SeriesLabelPosition::UpperRight),
        ],
    )?;
    s.save(&chart, &s.figure(m.name(), "style", "trade-off"))
}
