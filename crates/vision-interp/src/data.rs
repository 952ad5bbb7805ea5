//! Labelled image datasets for training: the offline Fashion-MNIST subset in `assets/`, with
//! seeded shuffling and the course's training augmentation.
use std::io::Read;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, IndexOp, Tensor};
use rand::{rngs::StdRng, seq::SliceRandom, Rng};

/// Images `(N, 3, H, W)` in [0, 1] (on the CPU), their labels and the class names.
pub struct Dataset {
    pub name: String,
    pub images: Tensor,
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
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
    let dims: Vec<usize> = match word(0) {
        2049 => vec![word(1)],
        2051 => vec![word(1), word(2), word(3)],
        m => bail!("{}: unknown IDX magic number {m}", path.display()),
    };
    let header = 4 * (1 + dims.len());
    let count: usize = dims.iter().product();
    ensure!(
        b.len() == header + count,
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
