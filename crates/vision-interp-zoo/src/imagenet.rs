//! ImageNet-1k: class names, in the standard order of the 1000 logits, and the channel
//! normalisation of torchvision's models.
use anyhow::Result;
use candle_core::Tensor;

/// The 1000 class names (WordNet synonyms, comma-separated, as in the ILSVRC label list).
pub fn classes() -> Vec<String> {
    include_str!("../../../assets/imagenet_classes.txt").lines().map(str::to_owned).collect()
}

/// The first synonym of a class name: `"tabby, tabby cat"` → `"tabby"`.
pub fn short_name(name: &str) -> &str {
    name.split(',').next().unwrap_or(name).trim()
}

/// ImageNet channel means and standard deviations (torchvision's normalisation, the course's).
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `(x − μ) / σ` per channel for `(N, 3, H, W)` images in [0, 1].
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let mean = Tensor::new(&MEAN, x.device())?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&STD, x.device())?.reshape((1, 3, 1, 1))?;
    Ok(x.broadcast_sub(&mean)?.broadcast_div(&std)?)
}
