//! Figures: colour maps, heat-map overlays, labelled image grids and line charts.
//!
//! Text is drawn with plotters' `ab_glyph` backend and the DejaVu Sans font embedded in the
//! binary, so figures render identically on machines with no fonts installed.
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use image::{imageops::FilterType, ImageBuffer, Luma, Rgb, RgbImage};
pub use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

static FONT: Once = Once::new();

/// Registers the embedded font as plotters' "sans-serif" (idempotent).
pub fn register_fonts() {
    FONT.call_once(|| {
        // The font is a valid TTF compiled into the binary; registration cannot fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Colour maps. Sequential maps (`Viridis`, `Inferno`) for magnitudes, a diverging map
/// (`BlueWhiteRed`) for signed values, and `Jet`, shown once as what many tools use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colormap {
    Viridis,
    Inferno,
    BlueWhiteRed,
    Jet,
}

// Ten evenly spaced samples of matplotlib's viridis and inferno, and ColorBrewer's RdBu.
const VIRIDIS: [u32; 10] =
    [0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e, 0x1f9e89, 0x35b779, 0x6ece58, 0xb5de2b, 0xfde725];
const INFERNO: [u32; 10] =
    [0x000004, 0x1b0c41, 0x4a0c6b, 0x781c6d, 0xa52c60, 0xcf4446, 0xed6925, 0xfb9b06, 0xf7d13d, 0xfcffa4];
const BLUE_WHITE_RED: [u32; 9] =
    [0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7, 0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b];

fn lerp_table(table: &[u32], t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (table.len() - 1) as f32;
    let i = (x.floor() as usize).min(table.len() - 2);
    let f = x - i as f32;
    let ch = |c: u32, s: u32| ((c >> s) & 0xff) as f32;
    let mut out = [0u8; 3];
    for (k, s) in [16, 8, 0].into_iter().enumerate() {
        out[k] = (ch(table[i], s) * (1.0 - f) + ch(table[i + 1], s) * f).round() as u8;
    }
    out
}

impl Colormap {
    /// Colour of a value in [0, 1] (values outside are clamped).
    pub fn rgb(self, t: f32) -> [u8; 3] {
        match self {
            Colormap::Viridis => lerp_table(&VIRIDIS, t),
            Colormap::Inferno => lerp_table(&INFERNO, t),
            Colormap::BlueWhiteRed => lerp_table(&BLUE_WHITE_RED, t),
            Colormap::Jet => {
                let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
                let f = |x: f32| ((1.5 - (4.0 * t - x).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
                [f(3.0), f(2.0), f(1.0)]
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Inferno => "inferno",
            Colormap::BlueWhiteRed => "blue-white-red",
            Colormap::Jet => "jet",
        }
    }
}

/// A 2-D map of values (row-major), e.g. a saliency or Grad-CAM map.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Map {
    /// From a `(H, W)` tensor.
    pub fn from_tensor(t: &candle_core::Tensor) -> Result<Self> {
        let (height, width) = t.dims2()?;
        let data = t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { width, height, data })
    }

    /// Divides by the maximum (a map that is zero everywhere stays zero).
    pub fn normalize_max(&self) -> Self {
        let m = self.data.iter().cloned().fold(0.0f32, f32::max);
        self.map(|v| if m > 0.0 { v / m } else { 0.0 })
    }

    /// Clips at the `q`-quantile of the values, then scales to [0, 1] (q = 0.99 clips the top
    /// 1 %, so that a few extreme pixels do not hide the rest).
    pub fn normalize_quantile(&self, q: f32) -> Self {
        let mut sorted: Vec<f32> = self.data.iter().map(|v| v.abs()).collect();
        sorted.sort_by(f32::total_cmp);
        let idx = ((sorted.len() - 1) as f32 * q).round() as usize;
        let hi = sorted[idx].max(f32::MIN_POSITIVE);
        self.map(|v| (v / hi).clamp(-1.0, 1.0))
    }

    /// Signed values to [0, 1] for a diverging map: 0.5 is zero, ±(q-quantile of |v|) the ends.
    pub fn normalize_signed(&self, q: f32) -> Self {
        self.normalize_quantile(q).map(|v| 0.5 + 0.5 * v)
    }

    pub fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        Self { width: self.width, height: self.height, data: self.data.iter().map(|&v| f(v)).collect() }
    }

    /// The `p`-th percentile of the values (0–100, nearest rank).
    pub fn percentile(&self, p: f32) -> f32 {
        let mut sorted = self.data.clone();
        sorted.sort_by(f32::total_cmp);
        let idx = ((sorted.len().saturating_sub(1)) as f32 * (p / 100.0).clamp(0.0, 1.0)).round() as usize;
        sorted.get(idx).copied().unwrap_or(0.0)
    }

    /// Gaussian blur with standard deviation `sigma` pixels (the `image` crate's `blur`).
    pub fn blur(&self, sigma: f32) -> Self {
        let buf: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(self.width as u32, self.height as u32, self.data.clone())
                .expect("map buffer size");
        let r = image::imageops::blur(&buf, sigma);
        Self { width: self.width, height: self.height, data: r.into_raw() }
    }

    /// Bilinear resize (for putting a coarse Grad-CAM map over the image).
    pub fn resize(&self, width: u32, height: u32) -> Self {
        let buf: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(self.width as u32, self.height as u32, self.data.clone())
                .expect("map buffer size");
        let r = image::imageops::resize(&buf, width, height, FilterType::Triangle);
        Self { width: width as usize, height: height as usize, data: r.into_raw() }
    }

    /// Colours a map whose values are already in [0, 1].
    pub fn colorize(&self, cmap: Colormap) -> RgbImage {
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            Rgb(cmap.rgb(self.data[y as usize * self.width + x as usize]))
        })
    }
}

/// Overlays a map with values in [0, 1] on an image: `(1 − α)·image + α·colour(map)`, the map
/// resized bilinearly to the image.
pub fn overlay(img: &RgbImage, map: &Map, cmap: Colormap, alpha: f32) -> RgbImage {
    let heat = map.resize(img.width(), img.height()).colorize(cmap);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (a, b) = (img.get_pixel(x, y), heat.get_pixel(x, y));
        Rgb(std::array::from_fn(|c| ((1.0 - alpha) * a[c] as f32 + alpha * b[c] as f32).round() as u8))
    })
}

/// One cell of a grid: an image and a caption under it (may be empty).
#[derive(Clone)]
pub struct Panel {
    pub image: RgbImage,
    pub label: String,
}

// ANCHOR: panels
impl Panel {
    pub fn new(image: RgbImage, label: impl Into<String>) -> Self {
        Self { image, label: label.into() }
    }

    /// A `(3, H, W)` image in [0, 1].
    pub fn image(img: &candle_core::Tensor, label: impl Into<String>) -> Result<Self> {
        Ok(Self::new(crate::imageio::to_rgb_image(img)?, label))
    }

    /// A map of magnitudes `(H, W)`: clipped at its 99th percentile, drawn with inferno.
    pub fn magnitude(map: &candle_core::Tensor, label: impl Into<String>) -> Result<Self> {
        let map = Map::from_tensor(map)?.normalize_quantile(0.99);
        Ok(Self::new(map.colorize(Colormap::Inferno), label))
    }

    /// A signed map `(H, W)`: ±(99th percentile of |v|) to blue and red, zero to white.
    pub fn signed(map: &candle_core::Tensor, label: impl Into<String>) -> Result<Self> {
        let map = Map::from_tensor(map)?.normalize_signed(0.99);
        Ok(Self::new(map.colorize(Colormap::BlueWhiteRed), label))
    }

    /// A coarse map `(h, w)` over an image: divided by its maximum, upsampled bilinearly,
    /// inferno at α = 0.5 (the Grad-CAM convention).
    pub fn overlay(
        img: &candle_core::Tensor,
        map: &candle_core::Tensor,
        label: impl Into<String>,
    ) -> Result<Self> {
        let photo = crate::imageio::to_rgb_image(img)?;
        let map = Map::from_tensor(map)?.normalize_max();
        Ok(Self::new(overlay(&photo, &map, Colormap::Inferno, 0.5), label))
    }
}
// ANCHOR_END: panels

/// Layout of a labelled grid: `GridSpec::new(200).title("…").columns(&[…])`.
#[derive(Debug, Clone, Default)]
pub struct GridSpec {
    pub title: String,
    pub col_titles: Vec<String>,
    pub row_titles: Vec<String>,
    /// Width of each cell in pixels; the height follows the tallest panel (at most square).
    /// Images are resized to fit.
    pub cell: u32,
    /// How the figure is stored: see [`Encoding`].
    pub encoding: Encoding,
    /// Colour bars drawn under the grid, side by side: the scale of the maps above.
    pub colorbars: Vec<Colorbar>,
}

/// The scale of a colour-mapped panel: the map from its low end to its high end, with a label
/// at each end and a title (`Colorbar::new(Colormap::Inferno, "0", "99th percentile", "saliency")`).
#[derive(Debug, Clone)]
pub struct Colorbar {
    pub cmap: Colormap,
    pub low: String,
    pub high: String,
    pub title: String,
    /// Optional label at the middle (`"0"` for a signed map).
    pub middle: Option<String>,
}

impl Colorbar {
    pub fn new(cmap: Colormap, low: &str, high: &str, title: &str) -> Self {
        Self { cmap, low: low.into(), high: high.into(), title: title.into(), middle: None }
    }

    /// The scale of [`Panel::magnitude`]: zero to the map's 99th percentile.
    pub fn magnitude(title: &str) -> Self {
        Self::new(Colormap::Inferno, "0", "99th pct.", title)
    }

    /// The scale of [`Panel::signed`]: −p99 … 0 … +p99 of |v|.
    pub fn signed(title: &str) -> Self {
        Self { middle: Some("0".into()), ..Self::new(Colormap::BlueWhiteRed, "−p99", "+p99", title) }
    }

    /// The scale of [`Panel::overlay`]: zero to the map's maximum, over the photo at α = 0.5.
    pub fn overlay(title: &str) -> Self {
        Self::new(Colormap::Inferno, "0", "max", title)
    }
}

/// Splits a row of panels into rows of at most `columns` (a figure laid out for the page).
pub fn in_rows(panels: Vec<Panel>, columns: usize) -> Vec<Vec<Panel>> {
    panels.chunks(columns.max(1)).map(<[Panel]>::to_vec).collect()
}

/// How a figure is stored. Photographs, renders and maps over photos compress five to ten
/// times better as JPEG than as PNG at no visible cost; filter mosaics, feature-map tiles and
/// charts are flat colours with sharp edges, where PNG is smaller and JPEG would ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Png,
    /// JPEG at quality [`JPEG_QUALITY`].
    Jpeg,
}

pub use crate::imageio::JPEG_QUALITY;

impl Encoding {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Png => "png",
            Encoding::Jpeg => "jpg",
        }
    }
}

impl GridSpec {
    pub fn new(cell: u32) -> Self {
        Self { cell, ..Self::default() }
    }

    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_owned();
        self
    }

    pub fn columns(mut self, titles: &[&str]) -> Self {
        self.col_titles = titles.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn rows(mut self, titles: &[&str]) -> Self {
        self.row_titles = titles.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Photographic content (photos, renders, maps over photos): stored as JPEG.
    pub fn photo(mut self) -> Self {
        self.encoding = Encoding::Jpeg;
        self
    }

    /// Adds a colour bar under the grid.
    pub fn colorbar(mut self, bar: Colorbar) -> Self {
        self.colorbars.push(bar);
        self
    }
}

const BAR_W: u32 = 200;
const BAR_H: u32 = 12;
/// Height of the colour-bar strip: title, bar, end labels.
const BARS_H: u32 = FONT_PX + 4 + BAR_H + FONT_PX + 10;

const PAD: u32 = 6;
const FONT_PX: u32 = 15;

fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("non-empty");
        let len = |s: &str| s.chars().count();
        if !line.is_empty() && len(line) + 1 + len(word) > max_chars {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Splits `text` at spaces into lines no wider than `max_px` in `font` (a single word wider
/// than that stays on its own line).
fn wrap_to_width(text: &str, font: &FontDesc, max_px: u32) -> Vec<String> {
    let fits = |s: &str| font.box_size(s).map(|(w, _)| w <= max_px).unwrap_or(true);
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if fits(&format!("{line} {word}")) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Draws rows of panels with an optional title, column titles and row titles.
pub fn grid(rows: &[Vec<Panel>], spec: &GridSpec) -> Result<RgbImage> {
    register_fonts();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let cell = spec.cell;
    let cell_h = rows
        .iter()
        .flatten()
        .map(|p| (cell as f32 * p.image.height() as f32 / p.image.width().max(1) as f32).ceil() as u32)
        .max()
        .unwrap_or(cell)
        .min(cell);
    let max_chars = (cell / 8).max(8) as usize;
    let label_lines = rows
        .iter()
        .flatten()
        .map(|p| if p.label.is_empty() { 0 } else { wrap(&p.label, max_chars).len() })
        .max()
        .unwrap_or(0) as u32;
    let label_h = label_lines * (FONT_PX + 3);
    let left = if spec.row_titles.is_empty() { 0 } else { 130 };
    let bars_w = spec.colorbars.len() as u32 * (BAR_W + 60);
    let width = (left + ncols * (cell + PAD) + PAD).max(bars_w + 2 * PAD);
    // A title wider than the grid is wrapped onto more lines.
    let title_font = ("sans-serif", (FONT_PX + 2) as f64).into_font();
    let title_lines = wrap_to_width(&spec.title, &title_font, width.saturating_sub(2 * PAD));
    let title_h = match title_lines.len() {
        0 => 0,
        1 => FONT_PX + 12,
        n => n as u32 * (FONT_PX + 6) + 6,
    };
    let header_h = if spec.col_titles.is_empty() {
        0
    } else {
        spec.col_titles.iter().map(|t| wrap(t, max_chars).len() as u32).max().unwrap_or(0) * (FONT_PX + 3)
            + 2 * PAD
    };
    let row_h = cell_h + label_h + PAD;
    let bars_h = if spec.colorbars.is_empty() { 0 } else { BARS_H + PAD };
    let height = title_h + header_h + rows.len() as u32 * row_h + bars_h + PAD;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let style =
            |anchor| TextStyle::from(("sans-serif", FONT_PX as f64).into_font()).color(&BLACK).pos(anchor);
        let centre = Pos::new(HPos::Center, VPos::Top);
        let draw_err = |e| anyhow!("drawing failed: {e:?}");
        for (k, line) in title_lines.into_iter().enumerate() {
            let y = 6 + k as i32 * (FONT_PX + 6) as i32;
            root.draw(&Text::new(
                line,
                ((width / 2) as i32, y),
                TextStyle::from(title_font.clone()).pos(centre),
            ))
            .map_err(draw_err)?;
        }
        for (c, t) in spec.col_titles.iter().enumerate() {
            let x = left + PAD + c as u32 * (cell + PAD) + cell / 2;
            for (k, line) in wrap(t, max_chars).into_iter().enumerate() {
                let y = title_h + PAD + k as u32 * (FONT_PX + 3);
                root.draw(&Text::new(line, (x as i32, y as i32), style(centre))).map_err(draw_err)?;
            }
        }
        for (r, row) in rows.iter().enumerate() {
            let y0 = title_h + header_h + r as u32 * row_h;
            if let Some(t) = spec.row_titles.get(r) {
                for (k, line) in wrap(t, 16).into_iter().enumerate() {
                    let y = y0 + cell_h / 2 + k as u32 * (FONT_PX + 3);
                    root.draw(&Text::new(
                        line,
                        (PAD as i32, y as i32),
                        style(Pos::new(HPos::Left, VPos::Top)),
                    ))
                    .map_err(draw_err)?;
                }
            }
            for (c, p) in row.iter().enumerate() {
                let x0 = left + PAD + c as u32 * (cell + PAD);
                let img = fit(&p.image, cell, cell_h);
                let (ox, oy) = ((cell - img.width()) / 2, (cell_h - img.height()) / 2);
                let (w, h) = img.dimensions();
                let elem = BitMapElement::with_owned_buffer(
                    ((x0 + ox) as i32, (y0 + oy) as i32),
                    (w, h),
                    img.into_raw(),
                )
                .context("panel buffer")?;
                root.draw(&elem).map_err(draw_err)?;
                for (k, line) in wrap(&p.label, max_chars).into_iter().enumerate() {
                    let y = y0 + cell_h + 2 + k as u32 * (FONT_PX + 3);
                    root.draw(&Text::new(line, ((x0 + cell / 2) as i32, y as i32), style(centre)))
                        .map_err(draw_err)?;
                }
            }
        }
        let y0 = (title_h + header_h + rows.len() as u32 * row_h + PAD) as i32;
        let n = spec.colorbars.len() as i32;
        for (k, bar) in spec.colorbars.iter().enumerate() {
            // Bars are centred as a group; each is BAR_W wide with room for its end labels.
            let slot = (BAR_W + 60) as i32;
            let x0 = (width as i32 - n * slot) / 2 + k as i32 * slot + 30;
            let font = ("sans-serif", (FONT_PX - 2) as f64).into_font();
            let small = |anchor| TextStyle::from(font.clone()).color(&BLACK).pos(anchor);
            let mid = x0 + BAR_W as i32 / 2;
            root.draw(&Text::new(bar.title.clone(), (mid, y0), small(centre))).map_err(draw_err)?;
            let yb = y0 + FONT_PX as i32 + 4;
            for i in 0..BAR_W as i32 {
                let [r, g, b] = bar.cmap.rgb(i as f32 / (BAR_W - 1) as f32);
                root.draw(&Rectangle::new(
                    [(x0 + i, yb), (x0 + i + 1, yb + BAR_H as i32)],
                    RGBColor(r, g, b).filled(),
                ))
                .map_err(draw_err)?;
            }
            root.draw(&Rectangle::new(
                [(x0, yb), (x0 + BAR_W as i32, yb + BAR_H as i32)],
                BLACK.stroke_width(1),
            ))
            .map_err(draw_err)?;
            let yl = yb + BAR_H as i32 + 2;
            root.draw(&Text::new(bar.low.clone(), (x0, yl), small(Pos::new(HPos::Left, VPos::Top))))
                .map_err(draw_err)?;
            let right = small(Pos::new(HPos::Right, VPos::Top));
            root.draw(&Text::new(bar.high.clone(), (x0 + BAR_W as i32, yl), right)).map_err(draw_err)?;
            if let Some(m) = &bar.middle {
                root.draw(&Text::new(m.clone(), (mid, yl), small(centre))).map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(width, height, buf).context("grid buffer")
}

/// Resizes to fit a `box_w × box_h` box, keeping the aspect ratio. Small maps are enlarged
/// with nearest-neighbour sampling so that their pixels stay visible.
fn fit(img: &RgbImage, box_w: u32, box_h: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = (box_w as f32 / w as f32).min(box_h as f32 / h as f32);
    let (nw, nh) = (((w as f32 * s).round() as u32).max(1), ((h as f32 * s).round() as u32).max(1));
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    let filter = if s >= 2.0 { FilterType::Nearest } else { FilterType::Triangle };
    image::imageops::resize(img, nw, nh, filter)
}

/// Tiles equally sized images into a mosaic of `cols` columns with a `gap`-pixel white border,
/// each enlarged `scale` times with nearest-neighbour sampling (filters, feature maps).
pub fn mosaic(tiles: &[RgbImage], cols: usize, scale: u32, gap: u32) -> RgbImage {
    let (tw, th) = tiles.first().map(|t| (t.width() * scale, t.height() * scale)).unwrap_or((1, 1));
    let cols = cols.max(1) as u32;
    let rows = (tiles.len() as u32).div_ceil(cols);
    let mut out =
        RgbImage::from_pixel(cols * (tw + gap) + gap, rows * (th + gap) + gap, Rgb([255, 255, 255]));
    for (i, t) in tiles.iter().enumerate() {
        let big = image::imageops::resize(t, tw, th, FilterType::Nearest);
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(
            &mut out,
            &big,
            (gap + c * (tw + gap)) as i64,
            (gap + r * (th + gap)) as i64,
        );
    }
    out
}

/// Filters `(O, 3, k, k)` as RGB tiles, normalised together by the global minimum and maximum
/// (as the course does, so that filters can be compared with each other).
pub fn filter_tiles(weight: &candle_core::Tensor) -> Result<Vec<RgbImage>> {
    let w = weight.to_dtype(candle_core::DType::F32)?;
    let (lo, hi) = (w.min_all()?.to_scalar::<f32>()?, w.max_all()?.to_scalar::<f32>()?);
    let w = ((w - lo as f64)? / (hi - lo).max(1e-12) as f64)?;
    (0..w.dim(0)?).map(|o| crate::imageio::to_rgb_image(&w.get(o)?)).collect()
}

/// Filters `(O, C, k, k)` summed over their input channels, as grey tiles normalised together
/// (0 is mid-grey). For a network trained on grey images stored as three identical channels,
/// only this sum matters: any image it sees has `R = G = B`, so the colours of its RGB filters
/// are whatever the initialisation left, not something it learned.
pub fn filter_tiles_grey(weight: &candle_core::Tensor) -> Result<Vec<RgbImage>> {
    let w = weight.to_dtype(candle_core::DType::F32)?.sum(1)?; // (O, k, k)
    let m = w.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-12);
    let w = ((w / (2.0 * m as f64))? + 0.5)?;
    (0..w.dim(0)?).map(|o| Ok(grey(&Map::from_tensor(&w.get(o)?)?))).collect()
}

/// Filters `(out, 3, k, k)` as RGB tiles, each scaled by its own largest |weight| (0 is grey):
/// for trained networks, whose filters differ in scale by orders of magnitude (BatchNorm folded
/// in), so that one global range would leave most of them grey.
pub fn filter_tiles_each(weight: &candle_core::Tensor) -> Result<Vec<RgbImage>> {
    let w = weight.to_dtype(candle_core::DType::F32)?;
    (0..w.dim(0)?)
        .map(|o| {
            let f = w.get(o)?;
            let m = f.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-12);
            crate::imageio::to_rgb_image(&((f / (2.0 * m as f64))? + 0.5)?)
        })
        .collect()
}

/// Feature maps `(C, h, w)`: the first `n` channels, each scaled to its own range, viridis.
pub fn feature_map_tiles(act: &candle_core::Tensor, n: usize) -> Result<Vec<RgbImage>> {
    (0..n.min(act.dim(0)?))
        .map(|c| {
            let m = Map::from_tensor(&act.get(c)?)?;
            let (lo, hi) = m.data.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            Ok(m.map(|v| (v - lo) / (hi - lo).max(1e-12)).colorize(Colormap::Viridis))
        })
        .collect()
}

/// One colour channel `(H, W)` in [0, 1] shown in its own colour (0 = red, 1 = green, 2 = blue).
pub fn tint(channel: &candle_core::Tensor, colour: usize) -> Result<RgbImage> {
    let m = Map::from_tensor(channel)?;
    Ok(RgbImage::from_fn(m.width as u32, m.height as u32, |x, y| {
        let v = (m.data[y as usize * m.width + x as usize].clamp(0.0, 1.0) * 255.0).round() as u8;
        let mut p = [0u8; 3];
        p[colour] = v;
        Rgb(p)
    }))
}

/// A map with values in [0, 1] in shades of grey.
pub fn grey(map: &Map) -> RgbImage {
    RgbImage::from_fn(map.width as u32, map.height as u32, |x, y| {
        let v = (map.data[y as usize * map.width + x as usize].clamp(0.0, 1.0) * 255.0).round() as u8;
        Rgb([v, v, v])
    })
}

/// Puts two images side by side (same height) with a white gap.
pub fn hstack(a: &RgbImage, b: &RgbImage, gap: u32) -> RgbImage {
    let h = a.height().max(b.height());
    let mut out = RgbImage::from_pixel(a.width() + gap + b.width(), h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut out, a, 0, 0);
    image::imageops::replace(&mut out, b, (a.width() + gap) as i64, 0);
    out
}

/// One line of a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f32, f32)>,
}

/// How a line chart is drawn: `ChartSpec::new("title", "x", "y", (720, 400)).integer_x()`.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub size: (u32, u32),
    /// Ticks only at whole numbers of x (epochs, steps), and a marker at every point where
    /// there are at most 30.
    pub integer_x: bool,
    /// A fixed y range (probabilities: `(0.0, 1.0)`); otherwise the data's, with a margin.
    pub y_range: Option<(f32, f32)>,
    /// Where the legend goes (plotters' default: upper right).
    pub legend: SeriesLabelPosition,
    /// The legend in a band under the plot instead, where it hides no curve.
    pub legend_below: bool,
}

impl ChartSpec {
    pub fn new(title: &str, x_label: &str, y_label: &str, size: (u32, u32)) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            size,
            integer_x: false,
            y_range: None,
            legend: SeriesLabelPosition::UpperRight,
            legend_below: false,
        }
    }

    pub fn legend(mut self, at: SeriesLabelPosition) -> Self {
        self.legend = at;
        self
    }

    /// The legend in a band under the plot (the chart keeps its size; the plot gets shorter),
    /// for charts whose curves fill the corners.
    pub fn legend_below(mut self) -> Self {
        self.legend_below = true;
        self
    }

    /// Whole-number x ticks with a marker at every point (for epochs).
    pub fn integer_x(mut self) -> Self {
        self.integer_x = true;
        self
    }

    pub fn y_range(mut self, lo: f32, hi: f32) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
}

/// Line colours: matplotlib's first five (tab10).
const LINE_COLOURS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
];

/// A line chart with a title, axis labels and a legend.
pub fn line_chart(
    series: &[Series],
    title: &str,
    x_label: &str,
    y_label: &str,
    size: (u32, u32),
) -> Result<RgbImage> {
    line_chart_with(series, &ChartSpec::new(title, x_label, y_label, size))
}

/// Two line charts side by side over the same whole-number x (one quantity each, 440 × 300
/// px each): `[(y label, series, legend position); 2]`.
pub fn chart_pair(
    title: &str,
    x_label: &str,
    charts: [(&str, Series, SeriesLabelPosition); 2],
) -> Result<RgbImage> {
    let [left, right] = charts.map(|(y, series, legend)| {
        line_chart_with(&[series], &ChartSpec::new(title, x_label, y, (440, 300)).legend(legend).integer_x())
    });
    Ok(hstack(&left?, &right?, 8))
}

/// A line chart laid out by `spec`.
pub fn line_chart_with(series: &[Series], spec: &ChartSpec) -> Result<RgbImage> {
    // plotters loops without end on an infinite axis range: refuse such a point instead.
    for s in series {
        if let Some(&(x, y)) = s.points.iter().find(|(x, y)| !x.is_finite() || !y.is_finite()) {
            anyhow::bail!(
                "chart `{}`: series `{}` has the point ({x}, {y}), which cannot be drawn",
                spec.title,
                s.label
            );
        }
    }
    register_fonts();
    let (width, height) = spec.size;
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let margin = ((y1 - y0) * 0.08).max(1e-6);
    let (ylo, yhi) = spec.y_range.unwrap_or((y0 - margin, y1 + margin));
    if spec.integer_x {
        // Half a step of room on either side, so the first and last markers are not cut.
        (x0, x1) = (x0.floor() - 0.25, x1.ceil() + 0.25);
    }
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let draw_err = |e| anyhow!("drawing failed: {e:?}");
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
        let (plot, band) = if spec.legend_below {
            let rows = legend_rows(&root, &labels, width)?;
            let (plot, band) = root.split_vertically(height.saturating_sub(22 * rows.len() as u32 + 8));
            (plot, Some((band, rows)))
        } else {
            (root.clone(), None)
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(&spec.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, ylo..yhi)
            .map_err(draw_err)?;
        let whole = |x: &f32| {
            if (x - x.round()).abs() < 1e-3 {
                format!("{}", x.round() as i64)
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&spec.x_label).y_desc(&spec.y_label).label_style(("sans-serif", 14));
        if spec.integer_x {
            // One tick per whole number up to 20 of them (plotters picks ticks at a spacing of
            // its own, so ask for about one per whole number); beyond, about ten round ones.
            // Only whole numbers are labelled.
            let span = (x1 - x0).round() as usize;
            let n = if span <= 20 { span + 1 } else { 10 };
            mesh.x_labels(n.max(2)).x_label_formatter(&whole).disable_x_mesh();
        }
        mesh.draw().map_err(draw_err)?;
        for (i, s) in series.iter().enumerate() {
            let colour = LINE_COLOURS[i % LINE_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            // Markers where the points are few enough to tell apart (epochs, not steps).
            if spec.integer_x && s.points.len() <= 30 {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                    .map_err(draw_err)?;
            }
        }
        if let Some((band, rows)) = band {
            for (r, row) in rows.iter().enumerate() {
                let y = 12 + 22 * r as i32;
                for &(i, x) in row {
                    let colour = LINE_COLOURS[i % LINE_COLOURS.len()];
                    band.draw(&PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)))
                        .map_err(draw_err)?;
                    band.draw(&Text::new(labels[i], (x + 24, y - 8), ("sans-serif", 14)))
                        .map_err(draw_err)?;
                }
            }
        } else {
            chart
                .configure_series_labels()
                .position(spec.legend.clone())
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(width, height, buf).context("chart buffer")
}

/// Lays legend entries (a line and a label) left to right, wrapping at `width`: the rows of
/// `(series index, x)`, centred.
fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &[&str],
    width: u32,
) -> Result<Vec<Vec<(usize, i32)>>> {
    let font: TextStyle = ("sans-serif", 14).into();
    let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
    let mut widths = vec![0i32];
    for (i, label) in labels.iter().enumerate() {
        let (w, _) = area.estimate_text_size(label, &font).map_err(|e| anyhow!("measuring text: {e:?}"))?;
        let entry = 24 + w as i32 + 20;
        let last = widths.len() - 1;
        if widths[last] > 0 && widths[last] + entry > width as i32 - 24 {
            rows.push(Vec::new());
            widths.push(0);
        }
        let last = widths.len() - 1;
        rows[last].push((i, widths[last]));
        widths[last] += entry;
    }
    for (row, w) in rows.iter_mut().zip(widths) {
        let left = (width as i32 - w + 20) / 2;
        for entry in row.iter_mut() {
            entry.1 += left;
        }
    }
    Ok(rows)
}

/// A histogram of counts in equal bins from `lo` to `hi`, with labelled vertical lines at
/// `marks` (`(x, label)`: band edges, zero) in the line colours, on a log count axis when
/// `log` (a long tail stays visible).
pub fn histogram_chart(
    counts: &[u32],
    (lo, hi): (f32, f32),
    marks: &[(f32, String)],
    spec: &ChartSpec,
    log: bool,
) -> Result<RgbImage> {
    register_fonts();
    let (width, height) = spec.size;
    let step = (hi - lo) / counts.len().max(1) as f32;
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let y = |c: u32| if log { (c as f32 + 1.0).log10() } else { c as f32 };
    let (x0, x1) =
        marks.iter().fold((lo - step, hi + step), |(a, b), (x, _)| (a.min(*x - step), b.max(*x + step)));
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let draw_err = |e| anyhow!("drawing failed: {e:?}");
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let ymax = y(top as u32) * 1.08;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0f32..ymax)
            .map_err(draw_err)?;
        let ticks = |v: &f32| if log { format!("{:.0}", 10f32.powf(*v) - 1.0) } else { format!("{v:.0}") };
        chart
            .configure_mesh()
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .y_label_formatter(&ticks)
            .label_style(("sans-serif", 14))
            .disable_x_mesh()
            .draw()
            .map_err(draw_err)?;
        let grey = RGBColor(0x90, 0x90, 0x90);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let a = lo + i as f32 * step;
                Rectangle::new([(a, 0.0), (a + step, y(c))], grey.filled())
            }))
            .map_err(draw_err)?;
        for (i, (x, label)) in marks.iter().enumerate() {
            let colour = LINE_COLOURS[i % LINE_COLOURS.len()];
            chart
                .draw_series(LineSeries::new([(*x, 0.0), (*x, ymax)], colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(spec.legend.clone())
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(width, height, buf).context("chart buffer")
}

/// The one place that names figure files: `<model>-<subject>-<kind>.png` (or `.jpg`, see
/// [`Encoding`]), lower case, with anything but letters, digits, `-` and `.` turned into `-`.
pub fn figure_path(dir: &Path, model: &str, subject: &str, kind: &str) -> PathBuf {
    figure_path_as(dir, model, subject, kind, Encoding::Png)
}

/// [`figure_path`] with the extension of `encoding`.
pub fn figure_path_as(dir: &Path, model: &str, subject: &str, kind: &str, encoding: Encoding) -> PathBuf {
    let clean = |s: &str| -> String {
        s.to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' })
            .collect()
    };
    dir.join(format!("{}-{}-{}.{}", clean(model), clean(subject), clean(kind), encoding.extension()))
}
