//! Every file reader on truncated and corrupted input: a clear error, never a panic or an
//! allocation that the file cannot back. Readers: weights (legacy and zip `.pth`, safetensors),
//! images (PNG, JPEG), IDX datasets, training checkpoints.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use vision_interp::weights::WeightStore;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs `read` on `bytes` written to a file; a panic fails the test with the variant's name.
fn read_bytes<T>(
    dir: &Path,
    ext: &str,
    bytes: &[u8],
    what: &str,
    read: &dyn Fn(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let path = dir.join(format!("input.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path))) {
        Ok(r) => r,
        Err(_) => panic!("{what}: the reader panicked"),
    }
}

/// Cut points: every length for small files, else about 200 spread over the file and its start.
fn cuts(len: usize) -> Vec<usize> {
    if len <= 2048 {
        return (0..len).collect();
    }
    let mut c: Vec<usize> = (0..64).chain((0..150).map(|i| i * len / 150)).filter(|&n| n < len).collect();
    c.dedup();
    c
}

/// Truncations must fail; corruptions (8 bytes of 0xFF or 0x7F at spread positions) may load
/// or fail, but never panic.
fn hammer<T>(file: &Path, ext: &str, read: &dyn Fn(&Path) -> anyhow::Result<T>) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(file).unwrap();
    read_bytes(dir.path(), ext, &bytes, "the intact file", read).unwrap_or_else(|e| panic!("{e:#}"));
    let mut checked = 0;
    for n in cuts(bytes.len()) {
        let r = read_bytes(dir.path(), ext, &bytes[..n], &format!("{} cut at {n}", file.display()), read);
        assert!(r.is_err(), "{} cut at {n} of {} bytes was accepted", file.display(), bytes.len());
        checked += 1;
    }
    for at in cuts(bytes.len()) {
        for fill in [0xFF, 0x7F] {
            let mut b = bytes.clone();
            let end = (at + 8).min(b.len());
            b[at..end].fill(fill);
            let _ =
                read_bytes(dir.path(), ext, &b, &format!("{} with {fill:#x} at {at}", file.display()), read);
            checked += 1;
        }
    }
    checked
}

fn load_weights(path: &Path) -> anyhow::Result<usize> {
    Ok(WeightStore::load(path, &Device::Cpu)?.names().count())
}

#[test]
fn legacy_and_zip_state_dicts_load_exactly() {
    for name in ["legacy-tiny.pth", "zip-tiny.pth"] {
        let store = WeightStore::load(&fixture(name), &Device::Cpu).unwrap();
        let conv = store.get("conv.weight", &[2, 3, 1, 1]).unwrap().flatten_all().unwrap();
        assert_eq!(conv.to_vec1::<f32>().unwrap(), [0., 1., 2., 3., 4., 5.], "{name}");
        // Stored transposed (strides (1, 2)): read back in row-major order.
        let fc = store.get("fc.weight", &[2, 3]).unwrap();
        assert_eq!(fc.to_vec2::<f32>().unwrap(), [[0., 1., 2.], [3., 4., 5.]], "{name}");
    }
}

/// Candle's pickle reader panics on this file (a tensor rebuilt from two arguments instead of
/// six); the loader reports it.
#[test]
fn a_crafted_pickle_is_an_error_not_a_panic() {
    let err =
        format!("{:#}", WeightStore::load(&fixture("crafted-short-args.pth"), &Device::Cpu).err().unwrap());
    assert!(err.contains("not a readable PyTorch state dict") && err.contains("malformed data"), "{err}");
}

#[test]
fn a_storage_count_larger_than_the_file_is_an_error_not_an_allocation() {
    let mut bytes = std::fs::read(fixture("legacy-tiny.pth")).unwrap();
    // The first storage header follows the pickles: 8 bytes of count, then 6 floats.
    let at = bytes.len() - (8 + 24) - (8 + 24) - (8 + 8);
    assert_eq!(&bytes[at..at + 8], &6u64.to_le_bytes());
    for count in [u64::MAX, 1 << 60, 1 << 40, 7] {
        bytes[at..at + 8].copy_from_slice(&count.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let err = read_bytes(dir.path(), "pth", &bytes, "huge count", &load_weights).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("storage") && msg.contains("claims"), "{count}: {msg}");
    }
}

#[test]
fn truncated_or_corrupted_weights_are_errors() {
    let n = hammer(&fixture("legacy-tiny.pth"), "pth", &load_weights);
    let m = hammer(&fixture("zip-tiny.pth"), "pth", &load_weights);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("small.safetensors");
    let t = Tensor::arange(0f32, 600., &Device::Cpu).unwrap().reshape((20, 30)).unwrap();
    candle_core::safetensors::save(
        &[("w", t), ("b", Tensor::ones(5, DType::F32, &Device::Cpu).unwrap())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        &st,
    )
    .unwrap();
    let k = hammer(&st, "safetensors", &load_weights);
    println!("weights: {n} legacy, {m} zip and {k} safetensors variants, no panic");
}

#[test]
fn truncated_or_corrupted_images_are_errors() {
    let read = |p: &Path| vision_interp::imageio::read_rgb(p).map(|i| i.width());
    for photo in ["coffee.png", "grace_hopper.jpg"] {
        let ext = photo.rsplit('.').next().unwrap();
        let n = hammer(&vision_interp::asset(&format!("photos/{photo}")), ext, &read);
        println!("{photo}: {n} variants, no panic");
    }
}

#[test]
fn truncated_or_corrupted_idx_files_are_errors() {
    // A 3-image IDX file of 2 × 2 pixels, gzipped as the dataset's are.
    use std::io::Write;
    let mut raw = Vec::new();
    for w in [2051u32, 3, 2, 2] {
        raw.extend_from_slice(&w.to_be_bytes());
    }
    raw.extend(0u8..12);
    let dir = tempfile::tempdir().unwrap();
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let path = dir.path().join("images.gz");
    std::fs::write(&path, gz(&raw)).unwrap();
    let read = |p: &Path| vision_interp::data::read_idx(p);
    assert_eq!(read(&path).unwrap().0, [3, 2, 2]);
    hammer(&path, "gz", &read);
    // Decompressed but short or lying headers.
    for n in 0..raw.len() {
        let r = read_bytes(dir.path(), "gz", &gz(&raw[..n]), &format!("idx cut at {n}"), &read);
        assert!(r.is_err(), "an IDX file cut at {n} was accepted");
    }
    let mut huge = raw.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(read_bytes(dir.path(), "gz", &gz(&huge), "huge dims", &read).is_err());
}

#[test]
fn grey_and_rgba_photos_are_read_as_rgb() {
    let dir = std::env::temp_dir().join(format!("vi-photos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let grey = image::GrayImage::from_fn(5, 3, |x, _| image::Luma([(x * 50) as u8]));
    let rgba = image::RgbaImage::from_fn(5, 3, |x, y| image::Rgba([x as u8, y as u8, 7, 128]));
    grey.save(dir.join("grey.png")).unwrap();
    rgba.save(dir.join("rgba.png")).unwrap();
    let g = vision_interp::imageio::read_rgb(&dir.join("grey.png")).unwrap();
    assert_eq!(g.get_pixel(2, 1).0, [100, 100, 100], "grey is copied into R, G and B");
    let c = vision_interp::imageio::read_rgb(&dir.join("rgba.png")).unwrap();
    assert_eq!(c.get_pixel(4, 2).0, [4, 2, 7], "alpha is dropped");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_chart_with_an_infinite_point_is_an_error_not_an_endless_loop() {
    use vision_interp::figure::{line_chart, Series};
    let good = Series { label: "log p".into(), points: vec![(1.0, -8.0), (2.0, -0.5)] };
    assert!(line_chart(std::slice::from_ref(&good), "t", "step", "log p", (200, 120)).is_ok());
    let bad = Series { label: "log p".into(), points: vec![(1.0, f32::NEG_INFINITY), (2.0, -0.5)] };
    let err = format!("{:#}", line_chart(&[bad], "t", "step", "log p", (200, 120)).unwrap_err());
    assert!(err.contains("cannot be drawn"), "{err}");
}

/// CRC-32 (IEEE), for the crafted PNG header below.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn an_image_whose_header_claims_a_huge_size_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &Path| vision_interp::imageio::read_rgb(p).map(|i| i.width());
    // A valid 8 × 8 image of each format, its header then made to claim 60,000 × 50,000 pixels.
    let small = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50]));
    let encode = |f: image::ImageFormat| {
        let mut b = Vec::new();
        small.write_to(&mut std::io::Cursor::new(&mut b), f).unwrap();
        b
    };
    let mut png = encode(image::ImageFormat::Png);
    // IHDR: length (4), "IHDR" (4), width (4), height (4), …, CRC over type and data (13 bytes).
    png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let mut jpeg = encode(image::ImageFormat::Jpeg);
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG");
    jpeg[sof + 5..sof + 7].copy_from_slice(&50_000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    for (ext, bytes) in [("png", &png), ("jpg", &jpeg)] {
        let e =
            read_bytes(dir.path(), ext, bytes, ext, &read).err().unwrap_or_else(|| panic!("{ext} accepted"));
        let msg = format!("{e:#}");
        assert!(msg.contains("claims 60000 × 50000 pixels") && msg.contains("8192"), "{ext}: {msg}");
    }
}

#[test]
fn a_truncated_webdataset_shard_is_an_error_naming_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut png = Vec::new();
    image::RgbImage::from_pixel(32, 32, image::Rgb([9, 90, 9]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let path = dir.path().join("shard-0000.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for name in ["a.png", "b.png"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(png.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, png.as_slice()).unwrap();
    }
    b.into_inner().unwrap();
    let whole = std::fs::read(&path).unwrap();
    vision_interp::scan::Source::open(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    // Cut inside the second member's data, and inside its header.
    let second = 512 + png.len().div_ceil(512) * 512;
    for cut in [second + 512 + 10, second + 100] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let e = vision_interp::scan::Source::open(path.to_str().unwrap()).expect_err("a cut shard accepted");
        let msg = format!("{e:#}");
        assert!(msg.contains("shard-0000.tar") && msg.contains("truncated"), "cut at {cut}: {msg}");
        assert!(
            msg.contains(&format!("byte {}", if cut > second + 512 { cut } else { second })),
            "cut at {cut}: {msg}"
        );
    }
}
