//! Images as `(3, H, W)` f32 tensors with values in [0, 1].
//!
//! Any format the `image` crate reads (PNG, JPEG) is accepted; greyscale becomes RGB by
//! repeating the channel. Files are written atomically: to a temporary file, then renamed.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use image::{imageops::FilterType, RgbImage};

/// Reads an image file as an 8-bit RGB image.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {} (readable formats: PNG, JPEG)", path.display()))?;
    Ok(img.to_rgb8())
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

/// One of the book's photos (`assets/photos/NAME`), prepared as by [`load_photo`].
pub fn photo(name: &str, size: usize, device: &Device) -> Result<Tensor> {
    load_photo(&crate::asset(&format!("photos/{name}")), size as u32, device)
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

/// Writes a PNG atomically (temporary file in the same folder, then rename), creating folders.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .suffix(".png.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    img.write_to(&mut std::io::BufWriter::new(tmp.as_file()), image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    // Temporary files are private (0600); a figure is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Saves a `(3, H, W)` tensor in [0, 1] as a PNG.
pub fn save_tensor_png(t: &Tensor, path: &Path) -> Result<()> {
    save_png(&to_rgb_image(t)?, path)
}
