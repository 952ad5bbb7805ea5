//! Images as `(3, H, W)` f32 tensors with values in [0, 1].
//!
//! Any format the `image` crate reads here (PNG, JPEG, WebP, GIF) is accepted; greyscale becomes RGB by
//! repeating the channel. Files are written atomically: to a temporary file, then renamed.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use image::{imageops::FilterType, RgbImage};

/// The JPEG quality of photographic figures (with 4:2:0 chroma, [`save_jpeg`]): the book's
/// figures together stay within CONTRIBUTING's 8 MB.
pub const JPEG_QUALITY: u8 = 80;

/// The largest side an image may have, in pixels. A file's header can claim any size; a
/// larger claim is refused from the header, before the decoder allocates anything.
pub const MAX_SIDE: u32 = 8192;
/// The most memory one decode may allocate (the `image` crate's limit, set explicitly).
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Reads an image file as an 8-bit RGB image. A header that claims more than [`MAX_SIDE`]
/// pixels a side is refused before decoding, the decoder may allocate at most
/// [`MAX_DECODE_BYTES`], and a JPEG cut short is an error rather than a picture with a grey
/// bottom.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open image {}", path.display()))?;
    decode_rgb(&bytes, &path.display().to_string())
}

/// Decodes an image held in memory (`what` names it in errors), as [`read_rgb`] does a file.
pub fn decode_rgb(bytes: &[u8], what: &str) -> Result<RgbImage> {
    Ok(decode(bytes, what)?.to_rgb8())
}

/// Decodes an image held in memory in its own colour type (alpha kept), with the limits and
/// checks of [`read_rgb`].
pub fn decode(bytes: &[u8], what: &str) -> Result<image::DynamicImage> {
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(bytes) {
        bail!("cannot decode image {what}: the JPEG data is truncated (no end-of-image marker)");
    }
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .with_context(|| format!("cannot read image {what}"))
    };
    const FORMATS: &str = "readable formats: PNG, JPEG, WebP, GIF";
    let (w, h) =
        reader()?.into_dimensions().with_context(|| format!("cannot decode image {what} ({FORMATS})"))?;
    if w > MAX_SIDE || h > MAX_SIDE || w == 0 || h == 0 {
        bail!("cannot decode image {what}: its header claims {w} × {h} pixels (the limit is {MAX_SIDE} a side, and at least 1)");
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().with_context(|| format!("cannot decode image {what} ({FORMATS})"))
}

/// Whether a JPEG's last end-of-image marker (`FF D9`) follows its last start-of-scan marker
/// (`FF DA`). Inside entropy-coded data a literal `FF` is followed by `00`, so the markers
/// cannot occur by chance; an EXIF thumbnail's own end marker comes before the main scan.
/// The `image` crate's decoder fills a truncated scan with grey instead of failing.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

/// The standard evaluation crop: resize the shorter side to `size / crop_fraction`
/// (bicubic), then cut the central `size × size` square.
pub fn center_crop_resized(img: &RgbImage, size: u32, crop_fraction: f32) -> RgbImage {
    let short = img.width().min(img.height()) as f32;
    let scale = (size as f32 / crop_fraction) / short;
    let w = ((img.width() as f32 * scale).round() as u32).max(size);
    let h = ((img.height() as f32 * scale).round() as u32).max(size);
    let resized = image::imageops::resize(img, w, h, FilterType::CatmullRom);
    image::imageops::crop_imm(&resized, (w - size) / 2, (h - size) / 2, size, size).to_image()
}

/// Loads a photo ready for a model with input `size`: the evaluation crop (crop fraction
/// 0.875, as in timm and torchvision) as a `(3, size, size)` tensor in [0, 1].
pub fn load_photo(path: &Path, size: u32, device: &Device) -> Result<Tensor> {
    let img = read_rgb(path)?;
    to_tensor(&center_crop_resized(&img, size, 0.875), device)
}

/// The smallest photo that [`load_square`] accepts, in pixels on its shorter side.
pub const MIN_SEED_SIDE: u32 = 32;

/// A photo as a square canvas `(1, 3, size, size)` in [0, 1]: its largest central square,
/// resized (Catmull-Rom) to `size` (Faccent's `img_to_img_tensor`), and a sentence saying what
/// was done. Grey and RGBA photos become RGB; a photo under [`MIN_SEED_SIDE`] pixels is an
/// error.
pub fn load_square(path: &Path, size: u32, device: &Device) -> Result<(Tensor, String)> {
    let img = read_rgb(path)?;
    let (w, h) = img.dimensions();
    let side = w.min(h);
    if side < MIN_SEED_SIDE {
        bail!(
            "{} is {w}×{h} px: a seed photo needs at least {MIN_SEED_SIDE} px on its shorter side",
            path.display()
        );
    }
    let square = image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    let resized = if side == size {
        square
    } else {
        image::imageops::resize(&square, size, size, FilterType::CatmullRom)
    };
    let name =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let note = match side.cmp(&size) {
        std::cmp::Ordering::Equal => format!("{name}: {w}×{h} px, central {side} px square"),
        std::cmp::Ordering::Greater => {
            format!("{name}: {w}×{h} px, central {side} px square shrunk to {size} px")
        }
        std::cmp::Ordering::Less => {
            format!("{name}: {w}×{h} px, central {side} px square enlarged to {size} px")
        }
    };
    Ok((to_tensor(&resized, device)?.unsqueeze(0)?, note))
}

/// One of the book's photos (`assets/photos/NAME`), prepared as by [`load_photo`].
pub fn photo(name: &str, size: usize, device: &Device) -> Result<Tensor> {
    load_photo(&crate::asset(&format!("photos/{name}")), size as u32, device)
}

/// A copy of a `(3, H, W)` image in [0, 1] with its detail blurred away: a Gaussian blur with
/// σ = 8 px per 224 px of width (the `image` crate's `blur`).
pub fn blurred(img: &Tensor) -> Result<Tensor> {
    let sigma = 8.0 * img.dim(2)? as f32 / 224.0;
    to_tensor(&image::imageops::blur(&to_rgb_image(img)?, sigma), img.device())
}

/// `RgbImage` → `(3, H, W)` f32 tensor in [0, 1].
pub fn to_tensor(img: &RgbImage, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let t = Tensor::from_vec(img.as_raw().clone(), (h as usize, w as usize, 3), device)?
        .permute((2, 0, 1))?
        .to_dtype(DType::F32)?;
    Ok((t / 255.0)?)
}

/// `(3, H, W)` (or `(1, 3, H, W)`) tensor in [0, 1] → `RgbImage`; values are clamped.
pub fn to_rgb_image(t: &Tensor) -> Result<RgbImage> {
    let t = if t.rank() == 4 { t.squeeze(0)? } else { t.clone() };
    let (c, h, w) = t.dims3()?;
    if c != 3 {
        bail!("expected 3 colour channels, got a tensor of shape {:?}", t.dims());
    }
    let bytes = (t.to_dtype(DType::F32)?.clamp(0f32, 1f32)? * 255.0)?
        .round()?
        .permute((1, 2, 0))?
        .flatten_all()?
        .to_dtype(DType::U8)?
        .to_vec1::<u8>()?;
    RgbImage::from_raw(w as u32, h as u32, bytes).context("image buffer size")
}

/// Places images side by side (same height) into one image: for inputs holding two classes.
pub fn side_by_side(left: &RgbImage, right: &RgbImage, height: u32) -> RgbImage {
    let fit = |img: &RgbImage| {
        let w = (img.width() as f32 * height as f32 / img.height() as f32).round() as u32;
        image::imageops::resize(img, w.max(1), height, FilterType::CatmullRom)
    };
    let (l, r) = (fit(left), fit(right));
    let mut out = RgbImage::new(l.width() + r.width(), height);
    image::imageops::replace(&mut out, &l, 0, 0);
    image::imageops::replace(&mut out, &r, l.width() as i64, 0);
    out
}

/// Writes a PNG atomically (see [`crate::atomic`]), creating folders, with the encoder's best
/// compression and adaptive filtering (a third smaller than its default, for figures that are
/// committed and regenerated).
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    crate::atomic::write_with(path, |tmp| {
        let w = std::io::BufWriter::new(tmp.as_file());
        Ok(img.write_with_encoder(PngEncoder::new_with_quality(
            w,
            CompressionType::Best,
            FilterType::Adaptive,
        ))?)
    })
}

/// Writes a JPEG of quality `quality` (1–100) atomically, creating folders, with the colour
/// planes at half resolution (4:2:0, as cameras and the web store photographs) and Huffman
/// tables optimised for the image: 40 % smaller than `image`'s encoder (4:4:4, standard tables)
/// at the same quality, for figures that are committed. The encoder is `jpeg-encoder` without
/// its SIMD feature, so the bytes are the same on every machine.
pub fn save_jpeg(img: &RgbImage, path: &Path, quality: u8) -> Result<()> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let (w, h) = img.dimensions();
    anyhow::ensure!(
        w <= u16::MAX as u32 && h <= u16::MAX as u32,
        "{}: {w} × {h} is too large for a JPEG",
        path.display()
    );
    crate::atomic::write_with(path, |tmp| {
        let mut encoder = Encoder::new(std::io::BufWriter::new(tmp.as_file()), quality);
        encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
        encoder.set_optimized_huffman_tables(true);
        encoder.encode(img.as_raw(), w as u16, h as u16, ColorType::Rgb)?;
        Ok(())
    })
}

/// Writes a JPEG with the `image` crate's encoder (full-resolution colour, standard Huffman
/// tables), atomically. The offline photo collection was built with it: re-encoding with
/// [`save_jpeg`] would change every photo, and with them every figure and number made from them.
pub fn save_jpeg_full_chroma(img: &RgbImage, path: &Path, quality: u8) -> Result<()> {
    crate::atomic::write_with(path, |tmp| {
        let w = std::io::BufWriter::new(tmp.as_file());
        Ok(img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(w, quality))?)
    })
}

/// Writes an animated GIF that loops forever, `delay_ms` per frame, atomically (the `image`
/// crate's encoder quantises each frame to 256 colours).
pub fn save_gif(frames: &[RgbImage], delay_ms: u32, path: &Path) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    crate::atomic::write_with(path, |tmp| {
        let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(tmp.as_file()), 10);
        enc.set_repeat(Repeat::Infinite)?;
        let delay = Delay::from_numer_denom_ms(delay_ms, 1);
        let frames = frames
            .iter()
            .map(|f| Frame::from_parts(image::DynamicImage::ImageRgb8(f.clone()).to_rgba8(), 0, 0, delay));
        enc.encode_frames(frames)?;
        Ok(())
    })
}

/// Saves a figure as PNG or JPEG, by the path's extension.
pub fn save_figure(img: &RgbImage, path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jpg" | "jpeg") => save_jpeg(img, path, JPEG_QUALITY),
        _ => save_png(img, path),
    }
}

/// Saves a `(3, H, W)` tensor in [0, 1] as a PNG.
pub fn save_tensor_png(t: &Tensor, path: &Path) -> Result<()> {
    save_png(&to_rgb_image(t)?, path)
}
