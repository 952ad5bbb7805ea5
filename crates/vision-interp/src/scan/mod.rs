//! Dataset examples at scale: stream a dataset through a model once and keep, for every
//! channel of a layer, the views that drive it most and least, the views closest to zero on
//! either side, and a uniform sample for its histogram and quantiles.
//!
//! * **Pass 1** ([`Scan::run`]) decodes images on worker threads while the model runs, keeps
//!   bounded lists per channel ([`state`]), checkpoints atomically every few batches and
//!   resumes where it stopped; a run killed at any moment and resumed gives the same bytes as
//!   one that was never stopped.
//! * **Sharding**: the views are cut into batches, and `--shard k/n` takes the `k`-th of `n`
//!   contiguous runs of batches. Every batch is the same in a sharded and an unsharded run,
//!   so the model computes the same numbers, and [`merge`] of the shards' states is the state
//!   of one run.
//! * **Pass 2** ([`write_images`]) decodes only the images that were kept and writes each
//!   example's view and its crop.
//! * Results: `examples.json` ([`Examples`]), read by chapter 4's figures and the unit atlas.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::{Model, Taps};

pub mod source;
pub mod state;

pub use crate::shard::Shard;
pub use source::{view, Source};
pub use state::{State, REDUCTIONS, VALUE_BANDS};

/// The file of a scan's state (its checkpoint while it runs, its result for `merge` after).
pub const STATE_FILE: &str = "scan-state.safetensors";
/// The file of a scan's results.
pub const EXAMPLES_FILE: &str = "examples.json";

/// Everything that decides a scan's result. Two runs with equal configurations give the same
/// bytes; `merge` accepts only shards of equal configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanConfig {
    pub model: String,
    /// `--weights`, where given.
    pub weights: Option<String>,
    pub layer: String,
    /// Channels `start..end` of the layer.
    pub channels: (usize, usize),
    pub top_k: usize,
    pub views_per_image: usize,
    /// Views in the uniform sample.
    pub sample: usize,
    /// Side of the square views, in pixels.
    pub size: usize,
    pub batch: usize,
    pub seed: u64,
    /// The images: [`Source::spec`].
    pub source: String,
    /// [`Source::fingerprint`] of the images.
    pub fingerprint: String,
    pub images: usize,
}

/// What a scan knows about the layer's geometry: the activation map's size for the views,
/// and the receptive field of one position, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    pub map: (usize, usize),
    pub receptive_field: usize,
}

/// What the state file records besides the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    config: ScanConfig,
    shard: Option<Shard>,
    /// Batches `start..end` are this run's; `next` is the first not yet scanned.
    start: usize,
    end: usize,
    next: usize,
    geometry: Geometry,
}

/// A scan of one layer over one source.
pub struct Scan<'a> {
    pub model: &'a dyn Model,
    pub source: &'a Source,
    pub config: ScanConfig,
    pub device: Device,
}

/// A finished scan (or shard), as `examples.json` and `merge` need it.
pub struct ScanResult {
    pub config: ScanConfig,
    pub shard: Option<Shard>,
    pub geometry: Geometry,
    pub state: State,
}

impl<'a> Scan<'a> {
    /// Checks the request against the model and the data.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'a dyn Model,
        weights: Option<&Path>,
        source: &'a Source,
        layer: &str,
        channels: Option<(usize, usize)>,
        top_k: usize,
        views_per_image: usize,
        sample: usize,
        batch: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let info = model.layer(layer)?;
        let (start, end) = channels.unwrap_or((0, info.channels));
        ensure!(
            start < end && end <= info.channels,
            "{}: layer `{layer}` has channels 0..{}; {start}..{end} is not a range of them",
            model.name(),
            info.channels
        );
        ensure!(
            top_k >= 1 && views_per_image >= 1 && batch >= 1,
            "--top-k, --views and --batch must be at least 1"
        );
        let total = source.items.len() * views_per_image;
        ensure!(
            top_k <= total,
            "--top-k {top_k} is more than the {total} views of the data ({} images × {views_per_image} views)",
            source.items.len()
        );
        let config = ScanConfig {
            model: model.name().to_owned(),
            weights: weights.map(|w| w.display().to_string()),
            layer: layer.to_owned(),
            channels: (start, end),
            top_k,
            views_per_image,
            sample,
            size: model.input_size(),
            batch,
            seed,
            source: source.spec.clone(),
            fingerprint: source.fingerprint(),
            images: source.items.len(),
        };
        Ok(Self { model, source, config, device: device.clone() })
    }

    fn total_views(&self) -> u64 {
        (self.config.images * self.config.views_per_image) as u64
    }

    /// Batches `start..end` of shard `shard` (all batches without one).
    pub fn batches(&self, shard: Option<Shard>) -> (usize, usize) {
        let all = (self.total_views() as usize).div_ceil(self.config.batch);
        shard.unwrap_or(Shard::ALL).run_of(all)
    }

    fn geometry(&self) -> Result<Geometry> {
        let size = self.config.size;
        let x = Tensor::zeros((1, 3, size, size), candle_core::DType::F32, &self.device)?;
        let acts =
            self.model.forward_taps(&self.model.preprocess(&x)?, &Taps::layers(&[&self.config.layer]))?;
        let a = acts.get(&self.config.layer)?;
        ensure!(
            a.rank() == 4,
            "layer `{}` has no spatial positions; scan a convolutional layer",
            self.config.layer
        );
        let (_, _, h, w) = a.dims4()?;
        let mut rng = crate::rng::seeded(self.config.seed);
        let (rf, _) = crate::attribution::receptive_field(
            self.model,
            &self.config.layer,
            size,
            &self.device,
            &mut rng,
        )?;
        Ok(Geometry { map: (h, w), receptive_field: rf })
    }

    /// The state file in `out`, if it belongs to this scan and shard; a damaged or foreign
    /// one is reported and ignored (the scan starts afresh).
    fn resume(&self, path: &Path, shard: Option<Shard>) -> Option<(State, Meta)> {
        let bytes = std::fs::read(path).ok()?;
        let (c, k) = (self.config.channels.1 - self.config.channels.0, self.config.top_k);
        match State::from_bytes(&bytes, c, k).and_then(|(s, m)| Ok((s, serde_json::from_str::<Meta>(&m)?))) {
            Ok((s, m)) if m.config == self.config && m.shard == shard => Some((s, m)),
            Ok(_) => {
                eprintln!("warning: {} is from another scan; starting afresh", path.display());
                None
            }
            Err(e) => {
                eprintln!("warning: the checkpoint {} is damaged ({e:#}); starting afresh", path.display());
                None
            }
        }
    }

    // ANCHOR: pass1
    /// Pass 1 over this run's batches, checkpointing to `out/scan-state.safetensors` every
    /// `every` batches and resuming from it.
    pub fn run(&self, shard: Option<Shard>, out: &Path, every: usize) -> Result<ScanResult> {
        let c = &self.config;
        anyhow::ensure!(
            c.top_k > 0 && c.views_per_image > 0 && c.batch > 0 && c.size > 0 && every > 0,
            "a scan needs at least one of each: top-k {}, views per image {}, batch {}, size {}, checkpoint interval {every}",
            c.top_k,
            c.views_per_image,
            c.batch,
            c.size
        );
        let path = out.join(STATE_FILE);
        let (start, end) = self.batches(shard);
        let (mut state, mut meta) = match self.resume(&path, shard) {
            Some(found) => found,
            None => {
                let c = self.config.channels.1 - self.config.channels.0;
                let cfg = &self.config;
                let state = State::new(c, cfg.top_k, cfg.sample, cfg.seed, cfg.views_per_image as u64);
                let meta = Meta {
                    config: self.config.clone(),
                    shard,
                    start,
                    end,
                    next: start,
                    geometry: self.geometry()?,
                };
                (state, meta)
            }
        };
        if meta.next == end && meta.next > start {
            // Inside the workspace, relative to it: the line lands in the book's output.txt.
            let root = crate::workspace_root();
            let shown = out.strip_prefix(&root).unwrap_or(out);
            println!("reusing the finished scan in {} ({} views)", shown.display(), state.views);
        } else if meta.next > start {
            println!("resuming at batch {} of {start}..{end} ({} views done)", meta.next, state.views);
        }
        let save = |state: &State, meta: &Meta| {
            let bytes = state.to_bytes(&serde_json::to_string(meta)?)?;
            crate::atomic::write_with(&path, |f| Ok(std::fs::write(f.path(), &bytes)?))
        };
        let b = self.config.batch as u64;
        let views_left = ((end as u64 * b).min(self.total_views())).saturating_sub(meta.next as u64 * b);
        let bar = crate::progress::bar(views_left, "scanning");
        let clock = std::time::Instant::now();
        let (tx, rx) = sync_channel::<(usize, Result<Batch>)>(2);
        std::thread::scope(|scope| -> Result<()> {
            // Decoding and cropping on worker threads, a batch or two ahead of the model.
            let (first, source, config) = (meta.next, self.source, &self.config);
            scope.spawn(move || {
                for batch in first..end {
                    if tx.send((batch, decode(source, config, batch))).is_err() {
                        break;
                    }
                }
            });
            for (batch, decoded) in rx {
                let decoded = decoded?;
                // One warning per unreadable image (its views may fall in several batches).
                for (key, e) in decoded.unreadable {
                    if let std::collections::btree_map::Entry::Vacant(slot) = state.unreadable.entry(key) {
                        bar.suspend(|| eprintln!("warning: skipped {}: {e}", slot.key()));
                        slot.insert(e);
                    }
                }
                if !decoded.views.is_empty() {
                    let (scores, at) = self.reduce(&decoded.pixels, decoded.views.len())?;
                    let w = 2 * (self.config.channels.1 - self.config.channels.0);
                    for (i, &v) in decoded.views.iter().enumerate() {
                        state.add(v, &scores[i * w..(i + 1) * w], &at[i * w..(i + 1) * w]);
                    }
                }
                bar.inc(decoded.count as u64);
                meta.next = batch + 1;
                if (meta.next - start) % every.max(1) == 0 || meta.next == end {
                    save(&state, &meta)?;
                }
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        let secs = clock.elapsed().as_secs_f64();
        if meta.next == start {
            save(&state, &meta)?;
        }
        let shard_note = shard.map_or(String::new(), |s| format!(" (shard {s})"));
        if views_left > 0 {
            println!(
                "scanned {} views of {} images{shard_note} at {}: {} unreadable, {:.1} views/s this run",
                state.views,
                self.config.images,
                self.config.layer,
                state.unreadable.len(),
                views_left as f64 / secs.max(1e-9)
            );
        }
        ensure!(
            state.views > 0 || meta.start == meta.end,
            "none of the images could be read ({} tried): {}",
            state.unreadable.len(),
            state.unreadable.iter().take(3).map(|(k, e)| format!("{k}: {e}")).collect::<Vec<_>>().join("; ")
        );
        Ok(ScanResult { config: self.config.clone(), shard, geometry: meta.geometry, state })
    }
    // ANCHOR_END: pass1

    /// The model up to the layer, and per view and channel the spatial max and mean, argmax
    /// and argmin: `scores[2c + r]`, `at[2c]` (argmax), `at[2c + 1]` (argmin).
    fn reduce(&self, pixels: &[f32], n: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        let s = self.config.size;
        let x = Tensor::from_slice(pixels, (n, 3, s, s), &self.device)?;
        let layer = &self.config.layer;
        let acts = self.model.forward_taps(&self.model.preprocess(&x)?, &Taps::layers(&[layer]))?;
        let (c0, c1) = self.config.channels;
        let a =
            acts.get(layer)?.narrow(1, c0, c1 - c0)?.flatten_from(2)?.to_dtype(candle_core::DType::F32)?;
        let a = a.to_vec3::<f32>()?;
        let (mut scores, mut at) =
            (Vec::with_capacity(n * 2 * (c1 - c0)), Vec::with_capacity(n * 2 * (c1 - c0)));
        for (i, view) in a.iter().enumerate() {
            for (c, map) in view.iter().enumerate() {
                let (mut hi, mut lo, mut sum) = (0usize, 0usize, 0f64);
                for (j, &v) in map.iter().enumerate() {
                    ensure!(!v.is_nan(), "{layer}:{} is NaN for view {} of batch", c0 + c, i);
                    hi = if v > map[hi] { j } else { hi };
                    lo = if v < map[lo] { j } else { lo };
                    sum += v as f64;
                }
                scores.extend([map[hi], (sum / map.len() as f64) as f32]);
                at.extend([hi as u32, lo as u32]);
            }
        }
        Ok((scores, at))
    }
}

/// Decodes batch `batch`: its views as `(N, 3, S, S)` pixels in [0, 1], the views' numbers,
/// and the images that could not be read.
fn decode(source: &Source, config: &ScanConfig, batch: usize) -> Result<Batch> {
    let (b, vpi) = (config.batch as u64, config.views_per_image as u64);
    let views: Vec<u64> = (batch as u64 * b
        ..((batch as u64 + 1) * b).min((config.images * config.views_per_image) as u64))
        .collect();
    let size = config.size as u32;
    // The views of one image are consecutive: decode each image of the batch once, then cut
    // its views.
    let groups: Vec<&[u64]> = views.chunk_by(|a, b| a / vpi == b / vpi).collect();
    let made: Vec<(u64, Result<Vec<f32>, String>)> = groups
        .par_iter()
        .flat_map_iter(|vs| {
            let item = (vs[0] / vpi) as usize;
            let key = &source.items[item].key;
            let img = source.image(item).map_err(|e| format!("{e:#}"));
            vs.iter()
                .map(|&v| {
                    let px = img.as_ref().map_err(Clone::clone);
                    (v, px.map(|img| view_pixels(&view(img, key, (v % vpi) as usize, size, config.seed))))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out = Batch { count: views.len(), ..Default::default() };
    for (v, r) in made {
        match r {
            Ok(px) => {
                out.views.push(v);
                out.pixels.extend(px);
            }
            Err(e) => {
                out.unreadable.insert(source.items[(v / vpi) as usize].key.clone(), e);
            }
        }
    }
    Ok(out)
}

/// One decoded batch.
#[derive(Default)]
struct Batch {
    /// Views in the batch, readable or not.
    count: usize,
    views: Vec<u64>,
    pixels: Vec<f32>,
    unreadable: BTreeMap<String, String>,
}

/// An 8-bit RGB view → planar f32 in [0, 1].
fn view_pixels(img: &image::RgbImage) -> Vec<f32> {
    let n = (img.width() * img.height()) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = p.0[c] as f32 / 255.0;
        }
    }
    out
}

impl ScanResult {
    /// Reads a finished run's state from its output folder.
    pub fn load(out: &Path) -> Result<Self> {
        let path = out.join(STATE_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        // The shapes come from the metadata, which is checked against the tensors.
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).context("not a scan state file")?;
        let meta_json = header.metadata().as_ref().and_then(|m| m.get("scan")).context("no scan metadata")?;
        let saved: serde_json::Value = serde_json::from_str(meta_json)?;
        let meta: Meta = serde_json::from_str(saved["meta"].as_str().context("no scan metadata")?)
            .with_context(|| format!("{}: damaged metadata", path.display()))?;
        let c = meta.config.channels.1.saturating_sub(meta.config.channels.0);
        let (state, _) = State::from_bytes(&bytes, c, meta.config.top_k)
            .with_context(|| format!("{} is damaged", path.display()))?;
        ensure!(
            meta.next == meta.end,
            "{}: the scan stopped at batch {} of {}..{}; run it again to finish",
            path.display(),
            meta.next,
            meta.start,
            meta.end
        );
        Ok(Self { config: meta.config, shard: meta.shard, geometry: meta.geometry, state })
    }

    /// Writes `examples.json` (and, for a merge, the merged state) to `out`.
    pub fn save(&self, out: &Path, source: &Source) -> Result<Examples> {
        let examples = self.examples(source)?;
        let json = serde_json::to_string_pretty(&examples)? + "\n";
        crate::atomic::write_with(&out.join(EXAMPLES_FILE), |f| Ok(std::fs::write(f.path(), &json)?))?;
        Ok(examples)
    }

    fn write_state(&self, out: &Path) -> Result<()> {
        let (start, end) = (0, 0);
        let meta = Meta {
            config: self.config.clone(),
            shard: self.shard,
            start,
            end,
            next: end,
            geometry: self.geometry,
        };
        let bytes = self.state.to_bytes(&serde_json::to_string(&meta)?)?;
        crate::atomic::write_with(&out.join(STATE_FILE), |f| Ok(std::fs::write(f.path(), &bytes)?))
    }

    /// The key of view `view` (the image's key, with `#v` when images give several views).
    fn key(&self, keys: &[String], view: u64) -> String {
        let vpi = self.config.views_per_image as u64;
        let key = &keys[(view / vpi) as usize];
        if vpi == 1 {
            key.clone()
        } else {
            format!("{key}#{}", view % vpi)
        }
    }

    /// The crop box `[x0, y0, x1, y1]` of the receptive field around map position `at`.
    fn crop_box(&self, at: u32) -> [u32; 4] {
        let ((h, w), s) = (self.geometry.map, self.config.size as f32);
        let (y, x) = ((at as usize / w) as f32, (at as usize % w) as f32);
        let (cx, cy) = ((x + 0.5) * s / w as f32, (y + 0.5) * s / h as f32);
        let half = self.geometry.receptive_field as f32 / 2.0;
        let clip = |v: f32| v.round().clamp(0.0, s) as u32;
        [clip(cx - half), clip(cy - half), clip(cx + half), clip(cy + half)]
    }

    /// The results, as `examples.json` holds them (`source` gives the images' keys).
    pub fn examples(&self, source: &Source) -> Result<Examples> {
        let keys: Vec<String> = source.items.iter().map(|i| i.key.clone()).collect();
        ensure!(
            keys.len() == self.config.images,
            "the source has {} images, the scan {}",
            keys.len(),
            self.config.images
        );
        let k = self.config.top_k;
        let example = |h: &state::Hit| Example {
            key: self.key(&keys, h.view),
            score: h.score,
            crop: self.crop_box(h.at),
        };
        let rows: Vec<(&(u64, u64), &state::Row)> = self.state.sample.rows.iter().collect();
        let mut units = Vec::new();
        for (c, bands) in self.state.bands.iter().enumerate() {
            let mut by = BTreeMap::new();
            for (r, name) in REDUCTIONS.iter().enumerate() {
                let mut bands_out: BTreeMap<String, Vec<Example>> = BTreeMap::new();
                for (b, band) in VALUE_BANDS.iter().enumerate() {
                    bands_out.insert(band.to_string(), bands[r][b].hits.iter().map(example).collect());
                }
                // The sample, sorted by this channel's score.
                let mut sample: Vec<(f32, u64, u32, u32)> = rows
                    .iter()
                    .map(|((_, v), row)| (row.scores[2 * c + r], *v, row.at[2 * c], row.at[2 * c + 1]))
                    .collect();
                sample.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let n = sample.len();
                let q = |p: f32| sample[((p * (n as f32 - 1.0)).round() as usize).min(n - 1)].0;
                let quantiles: BTreeMap<String, f32> = if n == 0 {
                    BTreeMap::new()
                } else {
                    [1, 5, 10, 25, 50, 75, 90, 95, 99]
                        .iter()
                        .map(|p| (format!("p{p:02}"), q(*p as f32 / 100.0)))
                        .collect()
                };
                // `k` sample views of different images, taken in `order` (indices into the
                // sorted sample), listed in ascending score.
                let vpi = self.config.views_per_image as u64;
                let pick = |order: &mut dyn Iterator<Item = usize>, negative: bool| -> Vec<Example> {
                    let mut seen = std::collections::BTreeSet::new();
                    let mut chosen: Vec<usize> =
                        order.filter(|&i| seen.insert(sample[i].1 / vpi)).take(k).collect();
                    chosen.sort_unstable();
                    let example = |&(s, v, hi, lo): &(f32, u64, u32, u32)| Example {
                        key: self.key(&keys, v),
                        score: s,
                        crop: self.crop_box(if negative { lo } else { hi }),
                    };
                    chosen.iter().map(|&i| example(&sample[i])).collect()
                };
                // Indices nearest to `c` first, alternating below and above.
                let around = |c: usize| {
                    (0..2 * n)
                        .map(move |j| if j % 2 == 0 { c + j / 2 } else { c.wrapping_sub(j / 2 + 1) })
                        .filter(move |&i| i < n)
                };
                let at = |p: f32| ((p * n as f32) as usize).min(n.saturating_sub(1));
                let (i5, i50, i95) = (at(0.05), at(0.5), at(0.95));
                bands_out.insert("p05".into(), pick(&mut around(i5), true));
                bands_out.insert("below_median".into(), pick(&mut (0..i50).rev(), true));
                bands_out.insert("above_median".into(), pick(&mut (i50..n), false));
                bands_out.insert("p95".into(), pick(&mut around(i95), false));
                let histogram = Histogram::of(&sample.iter().map(|s| s.0).collect::<Vec<_>>(), 40);
                let views = self.state.views.max(1) as f32;
                by.insert(
                    name.to_string(),
                    UnitScores {
                        negative_fraction: self.state.negative[c][r] as f32 / views,
                        quantiles,
                        histogram,
                        bands: bands_out,
                    },
                );
            }
            units.push(UnitExamples { unit: self.config.channels.0 + c, scores: by });
        }
        Ok(Examples {
            model: self.config.model.clone(),
            layer: self.config.layer.clone(),
            source: self.config.source.clone(),
            fingerprint: self.config.fingerprint.clone(),
            images: self.config.images,
            views_per_image: self.config.views_per_image,
            top_k: self.config.top_k,
            views: self.state.views,
            size: self.config.size,
            seed: self.config.seed,
            shard: self.shard.map(|s| s.to_string()),
            map: self.geometry.map,
            receptive_field: self.geometry.receptive_field,
            sample: self.state.sample.rows.len(),
            unreadable: self.state.unreadable.clone(),
            units,
        })
    }
}

// ANCHOR: merge
/// Merges the states of the shards of one scan (every `k/n` exactly once, equal
/// configurations) into the state of an unsharded run, and writes it with its
/// `examples.json` to `out`.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Examples> {
    ensure!(!shards.is_empty(), "merge: give the output folders of the shards");
    let mut results: Vec<ScanResult> = shards.iter().map(|p| ScanResult::load(p)).collect::<Result<_>>()?;
    let first = &results[0];
    let n = first.shard.map(|s| s.n).context("merge: the first folder holds an unsharded scan")?;
    for (r, p) in results.iter().zip(shards) {
        if r.config != first.config || r.geometry != first.geometry {
            let (a, b) = (serde_json::to_value(&first.config)?, serde_json::to_value(&r.config)?);
            let diff: Vec<String> = a
                .as_object()
                .expect("a struct")
                .iter()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, v)| {
                    format!("{k}: {v} in {}, {} in {}", shards[0].display(), b[k.as_str()], p.display())
                })
                .collect();
            bail!(
                "merge: {} and {} are shards of different scans ({})",
                shards[0].display(),
                p.display(),
                diff.join("; ")
            );
        }
        ensure!(r.shard.is_some_and(|s| s.n == n), "merge: {} is not a shard of {n}", p.display());
    }
    results.sort_by_key(|r| r.shard.map(|s| s.k));
    let ks: Vec<usize> = results.iter().filter_map(|r| r.shard.map(|s| s.k)).collect();
    ensure!(ks == (1..=n).collect::<Vec<_>>(), "merge: need shards 1..{n} once each, got {ks:?}");
    let mut results = results.into_iter();
    let mut merged = results.next().expect("non-empty");
    for r in results {
        merged.state.merge(r.state);
    }
    merged.shard = None;
    let source = Source::open(&merged.config.source)
        .with_context(|| format!("merge: the images ({}) are needed for their keys", merged.config.source))?;
    ensure!(
        source.fingerprint() == merged.config.fingerprint,
        "merge: the images at {} are not the ones the shards scanned",
        merged.config.source
    );
    std::fs::create_dir_all(out)?;
    merged.write_state(out)?;
    merged.save(out, &source)
}
// ANCHOR_END: merge

/// A scan's results, as written to `examples.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Examples {
    pub model: String,
    pub layer: String,
    pub source: String,
    pub fingerprint: String,
    pub images: usize,
    pub views_per_image: usize,
    /// Examples kept per band.
    pub top_k: usize,
    /// Views scanned (readable ones).
    pub views: u64,
    pub size: usize,
    pub seed: u64,
    /// `k/n` for one shard's results; none for a whole (or merged) scan.
    pub shard: Option<String>,
    /// The layer's activation map for one view, and one position's receptive field (pixels).
    pub map: (usize, usize),
    pub receptive_field: usize,
    /// Views in the uniform sample.
    pub sample: usize,
    pub unreadable: BTreeMap<String, String>,
    pub units: Vec<UnitExamples>,
}

/// One channel's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitExamples {
    pub unit: usize,
    /// By reduction: `max` (the spatial maximum) and `mean`.
    pub scores: BTreeMap<String, UnitScores>,
}

/// One channel's results for one reduction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitScores {
    /// Share of views whose score is below zero.
    pub negative_fraction: f32,
    /// `p01` … `p99` of the sample.
    pub quantiles: BTreeMap<String, f32>,
    pub histogram: Histogram,
    /// By value over every view: `min`, `below_zero`, `above_zero`, `max` (best first); by
    /// quantile of the sample: `p05`, `below_median`, `above_median`, `p95` (ascending).
    pub bands: BTreeMap<String, Vec<Example>>,
}

/// A dataset example: the view's key, its score, and the crop box `[x0, y0, x1, y1]` of the
/// receptive field around the position that decided the score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    pub key: String,
    pub score: f32,
    pub crop: [u32; 4],
}

/// Counts of the sample's scores in equal bins from `lo` to `hi`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<u32>,
}

impl Histogram {
    pub fn of(values: &[f32], bins: usize) -> Self {
        let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut counts = vec![0u32; bins];
        if values.is_empty() {
            return Self { lo: 0.0, hi: 0.0, counts };
        }
        for &v in values {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            counts[((t * bins as f32) as usize).min(bins - 1)] += 1;
        }
        Self { lo, hi, counts }
    }
}

impl Examples {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a scan's examples.json", path.display()))
    }

    /// The results of `unit`, for reduction `reduction` (`max` or `mean`).
    pub fn unit(&self, unit: usize, reduction: &str) -> Result<&UnitScores> {
        let u = self.units.iter().find(|u| u.unit == unit).with_context(|| {
            let (a, b) = (self.units.first().map_or(0, |u| u.unit), self.units.last().map_or(0, |u| u.unit));
            format!("the scan of {} covers units {a}..={b}, not {unit}", self.layer)
        })?;
        u.scores.get(reduction).with_context(|| format!("no `{reduction}` scores (known: max, mean)"))
    }
}

/// A view of the scan's source, by the key `examples.json` gives it.
pub fn view_of(
    source: &Source,
    key: &str,
    views_per_image: usize,
    size: usize,
    seed: u64,
) -> Result<image::RgbImage> {
    let (image_key, v) = match key.rsplit_once('#') {
        Some((k, v)) if views_per_image > 1 => (k, v.parse::<usize>().context("a view number after #")?),
        _ => (key, 0),
    };
    let i = source
        .items
        .binary_search_by(|it| it.key.as_str().cmp(image_key))
        .map_err(|_| anyhow::anyhow!("{} holds no image `{image_key}`", source.description))?;
    Ok(view(&source.image(i)?, image_key, v, size as u32, seed))
}

/// The crop of example `ex` (its receptive field around the deciding position), from its view.
pub fn crop(examples: &Examples, source: &Source, ex: &Example) -> Result<image::RgbImage> {
    let img = view_of(source, &ex.key, examples.views_per_image, examples.size, examples.seed)?;
    let [x0, y0, x1, y1] = ex.crop;
    Ok(image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image())
}

/// The crops of `unit`'s `n` top examples by the spatial maximum, each resized to `size` ×
/// `size` pixels, with their scores: the dataset examples a figure shows beside a render.
pub fn top_crops(
    examples: &Examples,
    source: &Source,
    unit: usize,
    n: usize,
    size: u32,
) -> Result<Vec<(image::RgbImage, f32)>> {
    let filter = image::imageops::FilterType::CatmullRom;
    examples.unit(unit, "max")?.bands["max"]
        .iter()
        .take(n)
        .map(|e| Ok((image::imageops::resize(&crop(examples, source, e)?, size, size, filter), e.score)))
        .collect()
}

/// The mean of every channel of `layer` over the evaluation crops (view 0) of the first
/// `limit` images of `source` (all of them when `None`), and how many images that was: how
/// strongly each unit is on, on average, in these photos. Unreadable images are skipped.
/// Batches of 16, summed in a fixed order, so the result is the same on every run.
pub fn channel_means(
    model: &dyn Model,
    source: &Source,
    layer: &str,
    limit: Option<usize>,
    device: &Device,
) -> Result<(Vec<f32>, usize)> {
    let n = limit.map_or(source.items.len(), |l| l.min(source.items.len()));
    let size = model.input_size() as u32;
    let taps = Taps::layers(&[layer]);
    let (mut sums, mut count) = (Vec::<f64>::new(), 0usize);
    for start in (0..n).step_by(16) {
        let views: Vec<Tensor> = (start..(start + 16).min(n))
            .filter_map(|i| source.image(i).ok())
            .map(|img| {
                crate::imageio::to_tensor(&crate::imageio::center_crop_resized(&img, size, 0.875), device)
            })
            .collect::<Result<_>>()?;
        if views.is_empty() {
            continue;
        }
        let x = model.preprocess(&Tensor::stack(&views, 0)?)?;
        // (N, C, H, W) → the spatial mean of each channel of each view, (N, C).
        let acts = model.forward_taps(&x, &taps)?.get(layer)?.mean((2, 3))?.to_vec2::<f32>()?;
        for row in acts {
            if sums.is_empty() {
                sums = vec![0.0; row.len()];
            }
            for (s, v) in sums.iter_mut().zip(row) {
                *s += f64::from(v);
            }
            count += 1;
        }
    }
    ensure!(count > 0, "no readable image in {}", source.description);
    Ok((sums.iter().map(|s| (s / count as f64) as f32).collect(), count))
}

/// Pass 2: for `units` (all when empty), writes the view and the crop of every example of the
/// `max` score's `min` and `max` bands to `out/examples/<layer>-u<unit>/<band>-<rank>-{view,crop}.jpg`,
/// reading only the images that were kept (each once); files already there are kept, so a
/// killed pass 2 resumes. Returns the number of files written.
pub fn write_images(examples: &Examples, source: &Source, out: &Path, units: &[usize]) -> Result<usize> {
    let mut wanted: BTreeMap<String, Vec<(PathBuf, [u32; 4])>> = BTreeMap::new();
    for u in examples.units.iter().filter(|u| units.is_empty() || units.contains(&u.unit)) {
        let dir = out.join("examples").join(format!("{}-u{:04}", examples.layer, u.unit));
        for band in ["min", "max"] {
            for (rank, ex) in u.scores["max"].bands[band].iter().enumerate() {
                let stem = dir.join(format!("{band}-{rank:02}"));
                if !stem.with_extension("crop.jpg").exists() {
                    wanted.entry(ex.key.clone()).or_default().push((stem, ex.crop));
                }
            }
        }
    }
    let written: Vec<usize> = wanted
        .par_iter()
        .map(|(key, targets)| -> Result<usize> {
            let img = view_of(source, key, examples.views_per_image, examples.size, examples.seed)?;
            for (stem, [x0, y0, x1, y1]) in targets {
                crate::imageio::save_jpeg(&img, &stem.with_extension("view.jpg"), 90)?;
                let crop = image::imageops::crop_imm(&img, *x0, *y0, x1 - x0, y1 - y0).to_image();
                crate::imageio::save_jpeg(&crop, &stem.with_extension("crop.jpg"), 90)?;
            }
            Ok(2 * targets.len())
        })
        .collect::<Result<_>>()?;
    Ok(written.iter().sum())
}
