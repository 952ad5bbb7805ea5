//! Labelled image datasets for training: the offline Fashion-MNIST subset in `assets/`, and
//! Imagenette (downloaded and cached on first use), with seeded shuffling and training
//! augmentation.
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, IndexOp, Tensor};
use rand::{rngs::StdRng, seq::SliceRandom, Rng};

use crate::download::Remote;

/// Images `(N, 3, H, W)` in [0, 1] (on the CPU), their labels and the class names.
pub struct Dataset {
    pub name: String,
    pub images: Tensor,
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
    /// How training batches are randomised (see [`Augment`]).
    pub augment: Augment,
}

/// The training augmentation a dataset calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augment {
    /// Images are used as stored (evaluation sets).
    None,
    /// Pad by an eighth of the side with zeros, cut a random crop of the original size, flip
    /// half the images (see [`augment`]); the scale does not change.
    PadCrop,
    /// Cut a random `size` × `size` crop out of the larger stored images and flip half of
    /// them: the course's `Resize(size + 32) → RandomCrop(size) → RandomHorizontalFlip`.
    RandomCrop(usize),
}

/// Training or evaluation part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Eval,
}

/// The ten Fashion-MNIST classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{} is not a gzip file", path.display()))?;
    Ok(bytes)
}

/// Reads an IDX file of `u8` images `(N, rows, cols)` (magic 2051) or labels `(N)` (magic 2049).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let b = read_gz(path)?;
    ensure!(b.len() >= 8, "{} is too short for an IDX file", path.display());
    let word = |i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as usize;
    let rank = match word(0) {
        2049 => 1,
        2051 => 3,
        m => bail!("{}: unknown IDX magic number {m}", path.display()),
    };
    let header = 4 * (1 + rank);
    ensure!(b.len() >= header, "{} is too short for its IDX header", path.display());
    let dims: Vec<usize> = (1..=rank).map(word).collect();
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    ensure!(
        count == Some(b.len() - header),
        "{}: {} bytes of data for shape {dims:?}",
        path.display(),
        b.len() - header
    );
    Ok((dims, b[header..].to_vec()))
}

/// The Fashion-MNIST subset shipped in `assets/datasets/fashion-mnist` (12,000 training and
/// 2,000 evaluation images), grey repeated to RGB and resized bilinearly to `size` × `size`.
pub fn fashion_mnist(split: Split, size: usize) -> Result<Dataset> {
    let dir = crate::asset("datasets/fashion-mnist");
    let prefix = if split == Split::Train { "train" } else { "t10k" };
    let (dims, pixels) = read_idx(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")))?;
    let (ldims, labels) = read_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")))?;
    ensure!(dims.len() == 3 && ldims == [dims[0]], "images {dims:?} and labels {ldims:?} disagree");
    let grey = (Tensor::from_vec(pixels, (dims[0], 1, dims[1], dims[2]), &Device::Cpu)?
        .to_dtype(DType::F32)?
        / 255.0)?;
    let images = crate::ops::resize_bilinear(&grey, size, size)?.clamp(0f32, 1f32)?.repeat((1, 3, 1, 1))?;
    Ok(Dataset {
        name: "Fashion-MNIST".into(),
        images,
        labels: labels.into_iter().map(u32::from).collect(),
        classes: FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect(),
        augment: Augment::PadCrop,
    })
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` examples (for quick runs).
    pub fn take(&self, n: usize) -> Result<Self> {
        let n = n.min(self.len());
        Ok(Self {
            name: self.name.clone(),
            images: self.images.narrow(0, 0, n)?,
            labels: self.labels[..n].to_vec(),
            classes: self.classes.clone(),
            augment: self.augment,
        })
    }

    /// Indices in batches of `batch`, shuffled by `rng` when given (the last batch may be
    /// smaller).
    pub fn batches(&self, batch: usize, rng: Option<&mut StdRng>) -> Vec<Vec<usize>> {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = rng {
            idx.shuffle(rng);
        }
        idx.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
    }

    /// Images `(B, 3, H, W)` and labels `(B)` of the given examples, on `device`.
    pub fn batch(&self, idx: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        let index =
            Tensor::from_vec(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), idx.len(), &Device::Cpu)?;
        let images = self.images.index_select(&index, 0)?.to_device(device)?;
        let labels: Vec<u32> = idx.iter().map(|&i| self.labels[i]).collect();
        Ok((images, Tensor::new(labels.as_slice(), device)?))
    }

    /// Applies the dataset's training augmentation to a batch `(B, 3, H, W)`.
    pub fn augment(&self, images: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        match self.augment {
            Augment::None => Ok(images.clone()),
            Augment::PadCrop => augment(images, rng),
            Augment::RandomCrop(size) => random_crop(images, size, rng),
        }
    }
}

/// Cuts a random `size` × `size` crop out of every image and flips half of them left to right.
pub fn random_crop(images: &Tensor, size: usize, rng: &mut StdRng) -> Result<Tensor> {
    let (n, _, h, w) = images.dims4()?;
    ensure!(h >= size && w >= size, "cannot crop {size} × {size} out of {h} × {w} images");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (y, x) = (rng.random_range(0..=h - size), rng.random_range(0..=w - size));
        let crop = images.i(i)?.narrow(1, y, size)?.narrow(2, x, size)?.contiguous()?;
        out.push(if rng.random_bool(0.5) { crop.flip(&[2])? } else { crop });
    }
    Ok(Tensor::stack(&out, 0)?)
}

/// Training augmentation: pad by `size / 8` pixels of zeros, cut a random crop of the original
/// size, and flip half of the images left to right. (The course enlarges its 128-pixel images to
/// 160 before cropping; on small images whose object fills the frame, that change of scale
/// between training and evaluation costs accuracy, so the book keeps the scale.)
pub fn augment(images: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
    let (n, _, h, w) = images.dims4()?;
    let pad = (h.min(w) / 8).max(1);
    let padded = images.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (y, x) = (rng.random_range(0..=2 * pad), rng.random_range(0..=2 * pad));
        let crop = padded.i(i)?.narrow(1, y, h)?.narrow(2, x, w)?;
        out.push(if rng.random_bool(0.5) { crop.contiguous()?.flip(&[2])? } else { crop });
    }
    Ok(Tensor::stack(&out, 0)?)
}

/// The ten Imagenette classes in label (WordNet ID folder) order: `(wnid, name)`.
pub const IMAGENETTE_CLASSES: [(&str, &str); 10] = [
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
];

/// fast.ai's Imagenette v2 at 160 pixels (shorter side): 9,469 training and 3,925 validation
/// photos of ten ImageNet classes, about 94 MB.
pub fn imagenette_remote() -> Remote {
    Remote {
        url: "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz".into(),
        file_name: "imagenette2-160.tgz".into(),
        md5: Some("e793b78cc4c9e9a4ccc0c1155377a412".into()),
    }
}

/// The folder `remote` is unpacked to under `cache` (downloading and unpacking it first when
/// needed), holding `train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG`.
pub fn imagenette_dir(remote: &Remote, cache: &Path) -> Result<PathBuf> {
    let stem = remote.file_name.trim_end_matches(".tgz");
    let dir = cache.join(stem);
    if !dir.is_dir() {
        let archive = crate::download::cached(remote, cache)?;
        eprintln!("unpacking {} ...", archive.display());
        crate::download::extract_tgz(&archive, &dir)?;
    }
    // The archive holds one top folder named like the archive.
    let inner = dir.join(stem);
    Ok(if inner.is_dir() { inner } else { dir })
}

/// Imagenette with the course's transforms. Evaluation images: shorter side resized to `size`,
/// centre crop `size` × `size`. Training images: shorter side resized to `size + size / 4`
/// (the course's 128 + 32) and centre-cropped there; [`Dataset::augment`] then cuts random
/// `size` × `size` crops and flips. `n` caps the number of images (spread over the classes).
pub fn imagenette(
    split: Split,
    size: usize,
    n: Option<usize>,
    remote: &Remote,
    cache: &Path,
) -> Result<Dataset> {
    let root = imagenette_dir(remote, cache)?;
    let folder = root.join(if split == Split::Train { "train" } else { "val" });
    let mut files = Vec::new();
    for (label, (wnid, _)) in IMAGENETTE_CLASSES.iter().enumerate() {
        let class_dir = folder.join(wnid);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&class_dir)
            .with_context(|| {
                format!("{} is missing: is {} a complete Imagenette?", class_dir.display(), root.display())
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpeg") || e.eq_ignore_ascii_case("jpg"))
            })
            .collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| (p, label as u32)));
    }
    ensure!(!files.is_empty(), "no images under {}", folder.display());
    if let Some(n) = n {
        // Every k-th file keeps the classes balanced; the order is then interleaved by `batches`.
        let step = (files.len() / n.max(1)).max(1);
        files = files.into_iter().step_by(step).take(n).collect();
    }
    let side = if split == Split::Train { size + size / 4 } else { size };
    let bar = crate::progress::bar(files.len() as u64, "decoding");
    let pixels: Vec<Vec<u8>> = {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|(path, _)| {
                let img = crate::imageio::read_rgb(path)?;
                bar.inc(1);
                Ok(crate::imageio::center_crop_resized(&img, side as u32, 1.0).into_raw())
            })
            .collect::<Result<_>>()?
    };
    bar.finish_and_clear();
    let flat: Vec<u8> = pixels.concat();
    let images = Tensor::from_vec(flat, (files.len(), side, side, 3), &Device::Cpu)?
        .permute((0, 3, 1, 2))?
        .to_dtype(DType::F32)?
        .affine(1.0 / 255.0, 0.0)?
        .contiguous()?;
    Ok(Dataset {
        name: "Imagenette".into(),
        images,
        labels: files.iter().map(|(_, l)| *l).collect(),
        classes: IMAGENETTE_CLASSES.iter().map(|(_, c)| c.to_string()).collect(),
        augment: if split == Split::Train { Augment::RandomCrop(size) } else { Augment::None },
    })
}
