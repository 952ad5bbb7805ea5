//! Chapter 4: dataset examples. Which real photos drive a unit up, which drive it down and
//! which leave it near zero (the activation spectrum, by value and by quantile), the
//! distribution behind those bands, how the choice of score changes the examples, and a unit
//! that answers to several unrelated things.
use anyhow::{Context, Result};
use chapter_04_dataset_examples::DatasetScan;
use chapter_04_dataset_examples::SPECTRUM;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{histogram_chart, in_rows, ChartSpec, GridSpec, Panel, SeriesLabelPosition};
use vision_interp::image::{imageops, Rgb, RgbImage};
use vision_interp::imageio::to_rgb_image;
use vision_interp::models::parse_unit;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig};
use vision_interp::scan::{crop, Example, Examples, Source, UnitScores};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Dataset examples and the activation spectrum")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Units to draw, `layer:unit`, repeated or comma-separated, all of one layer [default:
    /// the model's spectrum units: stage3:0,3,39,49,11 for Lite0]
    #[arg(long, value_delimiter = ',')]
    unit: Vec<String>,
}

/// Examples shown per band.
const SHOWN: usize = 5;

/// The crops of the first `n` examples, each labelled with its score.
fn crops(ex: &Examples, src: &Source, list: &[Example], n: usize, cell: u32) -> Result<Vec<Panel>> {
    let panels = list.iter().take(n).map(|e| Ok(Panel::new(fit(&crop(ex, src, e)?, cell), score(e.score))));
    panels.collect()
}

/// One row of crops of `band`.
fn band(ex: &Examples, src: &Source, scores: &UnitScores, band: &str, cell: u32) -> Result<Vec<Panel>> {
    crops(ex, src, &scores.bands[band], SHOWN, cell)
}

/// A score with two decimals, three near zero (so that −0.004 does not print as −0.00), and
/// without a sign when it rounds to zero (0.000, never −0.000).
fn score(s: f32) -> String {
    let text = if s.abs() < 0.05 { format!("{s:.3}") } else { format!("{s:.2}") };
    match text.strip_prefix('-') {
        Some(zero) if zero.chars().all(|c| c == '0' || c == '.') => zero.to_string(),
        _ => text,
    }
}

fn fit(img: &RgbImage, cell: u32) -> RgbImage {
    imageops::resize(img, cell, cell, imageops::FilterType::CatmullRom)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let chosen = SPECTRUM.get(m.name()).context("the model has no row in chapter 4's table")?;
    let specs: Vec<&str> = if args.unit.is_empty() {
        chosen.units.to_vec()
    } else {
        args.unit.iter().map(String::as_str).collect()
    };
    let units: Vec<_> = specs.iter().map(|u| parse_unit(m, u)).collect::<Result<_>>()?;
    anyhow::ensure!(units.iter().all(|u| u.layer == units[0].layer), "--unit: give units of one layer");
    let (steps, size) = if s.quick { (24, 64) } else { (128, 128) };
    let cell = 104;

    // ANCHOR: scan
    // Values before the layer's activation function, where it has one, so that "below zero"
    // means something. Every channel of the layer, over every view of every photo.
    let layer = m.pre_activation(&units[0].layer).unwrap_or(&units[0].layer).to_owned();
    let run = DatasetScan { quick: s.quick, seed: args.run.seed };
    let (ex, src) = run.examples(m, args.model.weights.as_deref(), &layer, &s.device)?;
    // ANCHOR_END: scan
    println!(
        "{} views of {} photos ({} per photo) at {layer}: map {}×{}, receptive field {} px",
        ex.views, ex.images, ex.views_per_image, ex.map.0, ex.map.1, ex.receptive_field
    );
    s.record("views", ex.views);
    s.record("photos", ex.images);
    s.record("views_per_photo", ex.views_per_image);
    s.record("receptive_field", ex.receptive_field);
    s.record("top_k", ex.top_k);
    s.record("sample", ex.sample);

    // ANCHOR: optimised
    // Each unit's most negative and most positive images, by chapter 3's recipe, in one batch.
    let objs: Vec<Objective> = (0..units.len())
        .flat_map(|i| {
            let c = |b| objective::channel(&layer, units[i].unit, Some(b));
            [-c(2 * i), c(2 * i + 1)]
        })
        .collect();
    let spec = ImageSpec { batch: 2 * units.len(), ..ImageSpec::square(size) };
    let cfg = RenderConfig { steps, min_input: Some(m.input_size()), ..Default::default() };
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?;
    let (_, dreams) =
        render(m, &Objective::sum(objs)?, &param, &cfg, &mut s.rng)?.images.pop().expect("last");
    // ANCHOR_END: optimised

    let what = |u: usize| {
        format!("{}:{u}, {}, {} views of {} photos", units[0].layer, m.name(), ex.views, ex.images)
    };
    for (i, unit) in units.iter().enumerate() {
        let scores = ex.unit(unit.unit, "mean")?;
        let dream = |b: usize| -> Result<Panel> {
            let label = if b.is_multiple_of(2) { "optimised −" } else { "optimised +" };
            Ok(Panel::new(fit(&to_rgb_image(&dreams.get(b)?)?, cell), label))
        };
        // ANCHOR: spectrum
        let mut rows = Vec::new();
        for (name, end) in
            [("min", Some(2 * i)), ("below_zero", None), ("above_zero", None), ("max", Some(2 * i + 1))]
        {
            let first = match end {
                Some(b) => dream(b)?,
                None => Panel::new(RgbImage::from_pixel(cell, cell, Rgb([255, 255, 255])), ""),
            };
            rows.push([vec![first], band(&ex, &src, scores, name, cell)?].concat());
        }
        // ANCHOR_END: spectrum
        let nth = |band: &str, n: usize| scores.bands[band].get(n).map_or(f32::NAN, |e| e.score);
        println!(
            "{unit}: mean over positions below zero in {:.0} % of views; most negative {:.2} (next {:.2}), most positive {:.2}",
            100.0 * scores.negative_fraction,
            nth("min", 0),
            nth("min", 1),
            nth("max", 0)
        );
        let key = |what: &str| format!("u{}_{what}", unit.unit);
        s.record(&key("negative"), scores.negative_fraction);
        s.record(&key("min"), nth("min", 0));
        s.record(&key("min_next"), nth("min", 1));
        let spec = GridSpec::new(cell)
            .title(&format!("Spectrum of {}", what(unit.unit)))
            .rows(&["what it hates", "just below zero", "just above zero", "what it loves"])
            .photo();
        s.save_grid(&rows, &spec, (m.name(), &unit.to_string().replace(':', "-"), "spectrum"))?;
    }

    // The same unit by quantile of a uniform sample, and the distribution behind both.
    let unit = units[0].unit;
    let scores = ex.unit(unit, "mean")?;
    let bands = ["p05", "below_median", "above_median", "p95"];
    let rows: Vec<Vec<Panel>> =
        bands.iter().map(|b| band(&ex, &src, scores, b, cell)).collect::<Result<_>>()?;
    let spec = GridSpec::new(cell)
        .title(&format!("Quantile bands of {}", what(unit)))
        .rows(&["near the 5th percentile", "just below the median", "just above the median", "near the 95th"])
        .photo();
    s.save_grid(&rows, &spec, (m.name(), &format!("{}-{unit}", units[0].layer), "quantiles"))?;
    let q = &scores.quantiles;
    // The lowest score among the top photos: where "what it loves" begins.
    let loves = scores.bands["max"].last().map_or(f32::NAN, |e| e.score);
    println!(
        "{}:{unit}: spatial mean over {} sampled views: 5th percentile {:.2}, median {:.2}, 95th {:.2}, 99th {:.2}; the top {} photos from {loves:.2}",
        units[0].layer, ex.sample, q["p05"], q["p50"], q["p95"], q["p99"], ex.top_k
    );
    for (key, value) in
        [("p05", q["p05"]), ("median", q["p50"]), ("p95", q["p95"]), ("p99", q["p99"]), ("top_from", loves)]
    {
        s.record(&format!("u{unit}_{key}"), value);
    }
    let marks = [
        (0.0, "zero".to_string()),
        (q["p05"], format!("5th percentile {:.2}", q["p05"])),
        (q["p50"], format!("median {:.2}", q["p50"])),
        (q["p95"], format!("95th percentile {:.2}", q["p95"])),
        (loves, format!("the top {} photos: above {loves:.2}", ex.top_k)),
    ];
    let title = format!("{}:{unit}: spatial mean over {} sampled views", units[0].layer, ex.sample);
    let chart = ChartSpec::new(&title, "activation (mean over positions)", "views", (720, 380))
        .legend(SeriesLabelPosition::UpperLeft);
    let h = &scores.histogram;
    let img = histogram_chart(&h.counts, (h.lo, h.hi), &marks, &chart, false)?;
    s.save(&img, &s.figure(m.name(), &format!("{}-{unit}", units[0].layer), "histogram"))?;

    // ANCHOR: max_mean
    // The strongest views by the spatial maximum (one position fires) and by the mean (the
    // whole view does).
    let rows = [band(&ex, &src, ex.unit(unit, "max")?, "max", cell)?, band(&ex, &src, scores, "max", cell)?];
    // ANCHOR_END: max_mean
    // The scores of the first and the last view shown in each row.
    for (reduction, list) in [("max", &ex.unit(unit, "max")?.bands["max"]), ("mean", &scores.bands["max"])] {
        let shown = &list[..list.len().min(SHOWN)];
        s.record(&format!("u{unit}_by_{reduction}_first"), shown.first().map_or(f32::NAN, |e| e.score));
        s.record(&format!("u{unit}_by_{reduction}_last"), shown.last().map_or(f32::NAN, |e| e.score));
    }
    let spec = GridSpec::new(cell)
        .title(&format!("Top views of {} by two scores", what(unit)))
        .rows(&["spatial max", "spatial mean"])
        .photo();
    s.save_grid(&rows, &spec, (m.name(), &format!("{}-{unit}", units[0].layer), "max-vs-mean"))?;

    if let Some(p) = chosen.polysemantic.filter(|_| args.unit.is_empty()) {
        let u = parse_unit(m, p)?;
        let top = &ex.unit(u.unit, "max")?.bands["max"];
        s.record(&format!("u{}_by_max_first", u.unit), top.first().map_or(f32::NAN, |e| e.score));
        s.record(&format!("u{}_by_max_last", u.unit), top.last().map_or(f32::NAN, |e| e.score));
        let panels = crops(&ex, &src, top, top.len(), cell)?;
        let spec =
            GridSpec::new(cell).title(&format!("Top {} photos of {}", top.len(), what(u.unit))).photo();
        s.save_grid(&in_rows(panels, 5), &spec, (m.name(), &p.replace(':', "-"), "polysemantic"))?;
    }
    s.finish()
}
