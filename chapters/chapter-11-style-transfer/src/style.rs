//! Style transfer's losses (Gatys, Ecker and Bethge, 2016), as Lucid's style-transfer notebook
//! writes them: one batch holds the image being optimised (image 0), the content photo and the
//! style painting, so that all three take the same random transformations and share the
//! forward pass, and the losses compare image 0's activations with the others'.
use anyhow::{ensure, Result};
use candle_core::{Tensor, D};

use rand::rngs::StdRng;

use vision_interp::models::Activations;
use vision_interp::optvis::{objective, ImageParam, ImageSpec, Objective};

// ANCHOR: gram
/// The Gram matrices of activations `a` `(B, C, H, W)`: for each image, `G = F Fᵀ / (H W)`
/// with `F` its `C × HW` activations, `(B, C, C)`. Entry `(i, j)` is how strongly channels
/// `i` and `j` fire *together*, averaged over positions: where they fire is summed away,
/// which is why it describes texture and style and not layout.
pub fn gram_matrix(a: &Tensor) -> Result<Tensor> {
    // ANCHOR: solution-gram Return F Fᵀ / (H·W) for every image, F its activations as a C × HW matrix
    let (b, c, h, w) = a.dims4()?;
    let f = a.reshape((b, c, h * w))?;
    Ok((f.matmul(&f.transpose(1, 2)?)? / (h * w) as f64)?)
    // ANCHOR_END: solution-gram
}
// ANCHOR_END: gram

/// Each channel's mean and standard deviation over positions, `(B, 2C)`: the statistics that
/// adaptive instance normalisation (Huang and Belongie, 2017) transfers, a style description
/// without the channels' correlations. The variance is the population one, plus 1e-5.
pub fn mean_std(a: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = a.dims4()?;
    let f = a.reshape((b, c, h * w))?;
    let mean = f.mean_keepdim(D::Minus1)?;
    let var = f.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(Tensor::cat(&[mean.squeeze(D::Minus1)?, (var + 1e-5)?.sqrt()?.squeeze(D::Minus1)?], 1)?)
}

/// What the style loss compares at each style layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleStatistic {
    /// The Gram matrix [`gram_matrix`] (Gatys et al., Lucid).
    Gram,
    /// Each channel's mean and standard deviation, [`mean_std`].
    MeanStd,
}

impl StyleStatistic {
    fn of(self, a: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gram => gram_matrix(a),
            Self::MeanStd => mean_std(a),
        }
    }
}

// ANCHOR: losses
/// The content loss: `Σ_l mean |φ_l(x₀) − φ_l(x_c)|` over `layers`, image 0 against image
/// `content` of the batch (Lucid's `activation_difference` with its `mean_L1`).
pub fn content_loss(layers: &[&str], content: usize) -> Objective {
    activation_difference("content", layers, content, None)
}

/// The style loss: `Σ_l mean |S(φ_l(x₀)) − S(φ_l(x_s))|` over `layers`, image 0 against image
/// `style`, where `S` is the statistic (Lucid's: the Gram matrix).
pub fn style_loss(layers: &[&str], style: usize, statistic: StyleStatistic) -> Objective {
    activation_difference("style", layers, style, Some(statistic))
}
// ANCHOR_END: losses

// ANCHOR: recipe
/// Lucid's style-transfer objective on a batch (transfer, content, style), to minimise:
/// `w_c · content_loss(content layers) + w_s · style_loss(style layers)` (Lucid: `w_c` = 100,
/// `w_s` = 1, Gram matrices).
pub fn transfer_objective(
    content: &[&str],
    style: &[&str],
    content_weight: f64,
    style_weight: f64,
    statistic: StyleStatistic,
) -> Objective {
    content_weight * content_loss(content, 1) + style_weight * style_loss(style, 2, statistic)
}

/// The batch that style transfer optimises: image 0 a Fourier image with decorrelated colour
/// (Lucent's default) at the photo's size; images 1 and 2 the photo and the painting
/// `(1, 3, H, W)`, fixed, in the batch so that all three take the same random transformations
/// and share one forward pass.
pub fn transfer_batch(
    photo: &Tensor,
    painting: &Tensor,
    rng: &mut StdRng,
    device: &candle_core::Device,
) -> Result<ImageParam> {
    let (_, _, h, w) = photo.dims4()?;
    let (_, _, ph, pw) = painting.dims4()?;
    ensure!(
        (ph, pw) == (h, w),
        "the painting is {ph}×{pw} px and the photo {h}×{w}: a batch holds images of one size (load both with load_square at one size)"
    );
    let spec = ImageSpec { height: h, width: w, ..ImageSpec::square(h) };
    ImageParam::new(&spec, rng, device)?.with_fixed(&Tensor::cat(&[photo, painting], 0)?)
}
// ANCHOR_END: recipe

/// Lucid's `activation_difference`: the mean absolute difference between image 0's
/// activations and image `to`'s (or a statistic of each), summed over `layers`. Image `to`'s
/// side is held fixed: its image is a photo, and only image 0 is being optimised.
fn activation_difference(
    what: &str,
    layers: &[&str],
    to: usize,
    statistic: Option<StyleStatistic>,
) -> Objective {
    let names: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
    let (kind, listed) = (what.to_owned(), layers.join(", "));
    let label = match statistic {
        Some(StyleStatistic::MeanStd) => format!("{what} (mean and std) {listed}"),
        _ => format!("{what} {listed}"),
    };
    objective::custom(&label, layers, move |acts: &Activations, _| {
        ensure!(!names.is_empty(), "the {kind} loss needs at least one layer");
        let mut total: Option<Tensor> = None;
        for l in &names {
            let a = acts.get(l)?;
            let n = a.dim(0)?;
            ensure!(
                to > 0 && to < n,
                "the {kind} loss compares image 0 with image {to} of the batch, which holds {n}; the {kind} image must be another image of the batch"
            );
            let (x, t) = (a.narrow(0, 0, 1)?, a.narrow(0, to, 1)?.detach());
            let (x, t) = match statistic {
                Some(s) => (s.of(&x)?, s.of(&t)?),
                None => (x, t),
            };
            let d = (x - t)?.abs()?.mean_all()?;
            total = Some(match total {
                Some(sum) => (sum + d)?,
                None => d,
            });
        }
        Ok(total.expect("at least one layer, checked above"))
    })
}
