//! Where a scan's images come from: a folder of images (recursive, JPEG/PNG/WebP, any size),
//! WebDataset `.tar` shards (the format of `timm/imagenet-1k-wds`), the book's offline photo
//! collection, or Imagenette; and the *views* a scan feeds the model: every image gives one or
//! more square crops, chosen from the image's name and the seed alone, so that any machine
//! and any shard of a run makes the same view of the same image.
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use image::{imageops::FilterType, RgbImage};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// File types a scan reads as images.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];
/// The largest image file a scan reads (a larger tar member is an error, not an allocation).
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Where one image is.
#[derive(Debug, Clone)]
enum Loc {
    File(PathBuf),
    /// A member of the `tar`-th shard: its data's byte range.
    Tar {
        tar: usize,
        offset: u64,
        size: u64,
    },
}

/// One image of a source: its key (path relative to the source's root; for a tar member,
/// `shard.tar/__key__`) and where its bytes are.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    loc: Loc,
    len: u64,
}

/// The images of a scan, sorted by key.
#[derive(Debug)]
pub struct Source {
    /// What was asked for: `collection`, `imagenette`, or the folder's absolute path; opening
    /// it again gives the same images (`merge` does).
    pub spec: String,
    /// What the images are, for captions.
    pub description: String,
    pub items: Vec<Item>,
    tars: Vec<PathBuf>,
}

impl Source {
    /// Opens `spec`: `collection` (the book's photos, `assets/photos/collection/`),
    /// `imagenette` (chapter 1's download, validation split; needs the network once), or a
    /// folder (searched recursively for images and `.tar` shards) or a single `.tar` file.
    pub fn open(spec: &str) -> Result<Self> {
        let (root, description) = match spec {
            "collection" => (crate::asset("photos/collection"), "the book's photo collection".to_owned()),
            "imagenette" => {
                // Where chapter 1 keeps it (see chapter 1's `ScratchRun::dataset`).
                let cache = crate::weights::cache_dir().join("datasets");
                let dir = crate::data::imagenette_dir(&crate::data::imagenette_remote(), &cache)?;
                (dir.join("val"), "Imagenette (validation split)".to_owned())
            }
            path => {
                let p = PathBuf::from(path);
                let abs =
                    std::fs::canonicalize(&p).with_context(|| format!("{path}: no such file or folder"))?;
                (abs.clone(), abs.display().to_string())
            }
        };
        let mut source = Self::from_path(&root, description)?;
        source.spec = if matches!(spec, "collection" | "imagenette") {
            spec.to_owned()
        } else {
            source.description.clone()
        };
        Ok(source)
    }

    fn from_path(root: &Path, description: String) -> Result<Self> {
        ensure!(root.exists(), "{}: no such file or folder", root.display());
        let (mut items, mut tars) = (Vec::new(), Vec::new());
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
            if entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
        for path in files {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel =
                if rel.as_os_str().is_empty() { path.file_name().map(Path::new).unwrap_or(rel) } else { rel };
            let rel = rel.to_string_lossy().replace('\\', "/");
            match extension(&path).as_deref() {
                Some("tar") => {
                    let members = index_tar(&path, tars.len())
                        .with_context(|| format!("cannot read the tar shard {}", path.display()))?;
                    items.extend(members.into_iter().map(|(key, loc, len)| Item {
                        key: format!("{rel}/{key}"),
                        loc,
                        len,
                    }));
                    tars.push(path);
                }
                Some(e) if IMAGE_EXTENSIONS.contains(&e) => {
                    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    items.push(Item { key: rel, loc: Loc::File(path), len });
                }
                _ => {}
            }
        }
        items.sort_by(|a, b| a.key.cmp(&b.key));
        if items.is_empty() {
            bail!(
                "{}: no images (.jpg, .jpeg, .png, .webp) and no WebDataset .tar shards were found there",
                root.display()
            );
        }
        Ok(Self { spec: description.clone(), description, items, tars })
    }

    /// A digest of every key and file size: two runs over the same images agree on it, and
    /// `merge` refuses shards whose sources differ.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for it in &self.items {
            h.update(format!("{}\t{}\n", it.key, it.len));
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes of item `i`.
    fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        let item = &self.items[i];
        match &item.loc {
            Loc::File(p) => {
                ensure!(
                    item.len <= MAX_IMAGE_BYTES,
                    "{} is {} bytes, larger than any photo",
                    p.display(),
                    item.len
                );
                Ok(std::fs::read(p)?)
            }
            Loc::Tar { tar, offset, size } => {
                let mut f = std::fs::File::open(&self.tars[*tar])?;
                f.seek(SeekFrom::Start(*offset))?;
                let mut buf = Vec::with_capacity(*size as usize);
                f.take(*size).read_to_end(&mut buf)?;
                ensure!(buf.len() as u64 == *size, "the tar shard ends inside this member");
                Ok(buf)
            }
        }
    }

    /// Decodes item `i`.
    pub fn image(&self, i: usize) -> Result<RgbImage> {
        let key = &self.items[i].key;
        crate::imageio::decode_rgb(&self.bytes(i).with_context(|| format!("cannot read {key}"))?, key)
    }
}

/// The lower-case extension of a path.
fn extension(p: &Path) -> Option<String> {
    p.extension().map(|e| e.to_string_lossy().to_lowercase())
}

/// The image members of a WebDataset shard: `(__key__, where, size)`. A sample's key is its
/// member path without the extension; the first image member of a key is taken. Only the
/// headers are read (the reader seeks past the data).
/// A shard cut short (inside a header or inside a member's data) is an error that names the
/// byte offset where the missing part starts.
fn index_tar(path: &Path, tar: usize) -> Result<Vec<(String, Loc, u64)>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut archive = tar::Archive::new(file);
    let mut out: Vec<(String, Loc, u64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Where the last complete member's data ends (a tar header is 512 bytes).
    let mut end = 0u64;
    for entry in archive.entries_with_seek()? {
        let entry = entry.with_context(|| {
            format!("the shard is truncated or corrupt at byte {end} (a member's header should start there; the file has {len} bytes)")
        })?;
        let (start, size) = (entry.raw_file_position(), entry.size());
        ensure!(
            start + size <= len,
            "the shard is truncated at byte {len}: member {} starts at byte {start} and needs {size} bytes",
            entry.path()?.display()
        );
        end = start + size.div_ceil(512) * 512;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let p = entry.path()?.to_string_lossy().into_owned();
        let Some((key, ext)) = p.rsplit_once('.') else { continue };
        if !IMAGE_EXTENSIONS.contains(&ext.to_lowercase().as_str()) || !seen.insert(key.to_owned()) {
            continue;
        }
        let offset = start;
        ensure!(size <= MAX_IMAGE_BYTES, "member {p} is {size} bytes, larger than any photo");
        out.push((key.to_owned(), Loc::Tar { tar, offset, size }, size));
    }
    Ok(out)
}

// ANCHOR: view
/// View `v` of an image, as a `size × size` crop. View 0 is the standard evaluation crop (the
/// centre, after resizing the shorter side to `size / 0.875`). Every other view is a random
/// resized crop, as in training on ImageNet: a tenth to all of the image's area, aspect ratio
/// between 3:4 and 4:3, drawn from a generator seeded by the image's key, `v` and `seed`.
pub fn view(img: &RgbImage, key: &str, v: usize, size: u32, seed: u64) -> RgbImage {
    if v == 0 {
        return crate::imageio::center_crop_resized(img, size, 0.875);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(crate::rng::fnv1a(&format!("{seed}/{key}/{v}")));
    let (w, h) = (img.width() as f32, img.height() as f32);
    for _ in 0..10 {
        let area = w * h * rng.random_range(0.1..=1.0f32);
        let aspect = rng.random_range((0.75f32).ln()..=(4.0f32 / 3.0).ln()).exp();
        let (cw, ch) = ((area * aspect).sqrt().round(), (area / aspect).sqrt().round());
        if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
            let x = rng.random_range(0..=(w - cw) as u32);
            let y = rng.random_range(0..=(h - ch) as u32);
            let crop = image::imageops::crop_imm(img, x, y, cw as u32, ch as u32).to_image();
            return image::imageops::resize(&crop, size, size, FilterType::CatmullRom);
        }
    }
    crate::imageio::center_crop_resized(img, size, 0.875)
}
// ANCHOR_END: view

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, shade: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(40, 30, image::Rgb([shade, 0, 0])).save(path).unwrap();
    }

    #[test]
    fn folders_are_searched_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("b/two.png"), 2);
        write_png(&dir.path().join("a.PNG"), 1);
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let s = Source::from_path(dir.path(), "test".into()).unwrap();
        let keys: Vec<&str> = s.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["a.PNG", "b/two.png"]);
        assert_eq!(s.image(1).unwrap().get_pixel(0, 0).0, [2, 0, 0]);
    }

    #[test]
    fn webdataset_shards_are_read_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut png = Vec::new();
        RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let mut b = tar::Builder::new(std::fs::File::create(dir.path().join("shard-0000.tar")).unwrap());
        for (name, data) in [("n01_1.cls", b"3".as_slice()), ("n01_1.png", &png), ("n01_2.png", &png)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        let s = Source::from_path(dir.path(), "test".into()).unwrap();
        let keys: Vec<&str> = s.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["shard-0000.tar/n01_1", "shard-0000.tar/n01_2"]);
        assert_eq!(s.image(1).unwrap().dimensions(), (8, 8));
    }

    #[test]
    fn empty_folders_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.md"), "no images").unwrap();
        let err = Source::from_path(dir.path(), "test".into()).unwrap_err().to_string();
        assert!(err.contains("no images"), "{err}");
    }

    #[test]
    fn views_depend_only_on_key_index_and_seed() {
        let img = RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let a = view(&img, "k", 3, 64, 0);
        assert_eq!(a, view(&img, "k", 3, 64, 0));
        assert_ne!(a, view(&img, "k", 4, 64, 0));
        assert_ne!(a, view(&img, "other", 3, 64, 0));
        assert_eq!(view(&img, "k", 0, 64, 0).dimensions(), (64, 64));
    }
}
