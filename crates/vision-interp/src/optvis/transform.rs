//! Random transformations applied to the image before every step ("transformation
//! robustness"), with Lucent's exact semantics; all differentiable and drawn from a seeded
//! generator.
use anyhow::Result;
use candle_core::Tensor;
use rand::{rngs::StdRng, seq::IndexedRandom, Rng};

use crate::ops;

/// One transformation of a batch `(B, C, H, W)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Pad every side by `width` with a constant.
    Pad { width: usize, value: f64 },
    /// Pad every side by `width` with the image mirrored at its border, the edge pixel not
    /// repeated (torch's `reflect`, Lucent's default `pad` mode); `width` must be smaller than
    /// the image.
    PadReflect(usize),
    /// Move the content right and down by whole pixels in `0..d`, zero fill, same size.
    Jitter(usize),
    /// Resize by a factor from the list (bilinear, corners aligned) to `ceil(s·H)`; pad with
    /// zeros back up when smaller.
    Scale(Vec<f64>),
    /// Rotate about the centre by an angle in degrees from the list (counter-clockwise for
    /// positive angles), bilinear, zero fill, same size.
    Rotate(Vec<f64>),
}

// ANCHOR: standard
/// Lucent's `standard_transforms`: pad 12 (0.5), jitter 8, scale 0.90…1.10, rotate −10…10°
/// (with five extra 0°), jitter 4.
pub fn standard() -> Vec<Transform> {
    vec![
        Transform::Pad { width: 12, value: 0.5 },
        Transform::Jitter(8),
        Transform::Scale((0..11).map(|i| 1.0 + (i as f64 - 5.0) / 50.0).collect()),
        Transform::Rotate((-10..=10).map(f64::from).chain([0.0; 5]).collect()),
        Transform::Jitter(4),
    ]
}
// ANCHOR_END: standard

// ANCHOR: extended
/// The stronger suite of Lucent's tutorial notebook: reflect pad 16, jitter 8, scale
/// 0.80…1.19, rotations from three overlapping ranges (small angles most often), jitter 2.
pub fn extended() -> Vec<Transform> {
    let angles = (-10..10).chain(-5..5).chain((0..10).flat_map(|_| -2..2));
    vec![
        Transform::PadReflect(16),
        Transform::Jitter(8),
        Transform::Scale((80..120).map(|n| f64::from(n) / 100.0).collect()),
        Transform::Rotate(angles.map(f64::from).collect()),
        Transform::Jitter(2),
    ]
}
// ANCHOR_END: extended

// ANCHOR: inversion
/// The feature-inversion notebook's suite: pad 8 (0.5), jitter 8, scale 0.90, 0.95, 1.05 or 1.10
/// (or 1, as often as all of them), rotate −5…4° (or 0°, half the time), jitter 2.
pub fn inversion() -> Vec<Transform> {
    vec![
        Transform::Pad { width: 8, value: 0.5 },
        Transform::Jitter(8),
        Transform::Scale(vec![0.9, 0.95, 1.05, 1.1, 1.0, 1.0, 1.0, 1.0]),
        Transform::Rotate((-5..5).map(f64::from).chain([0.0; 5]).collect()),
        Transform::Jitter(2),
    ]
}
// ANCHOR_END: inversion

// ANCHOR: scaled
/// `transforms` with their pixel amounts (pads and jitters) scaled from an image of `from`
/// pixels to one of `to`, rounded, a jitter keeping at least one pixel of movement; scales and
/// angles are relative already and stay. Lucent's recipe was tuned on 128-pixel images; on a
/// 32-pixel image its jitter of 8 moves the content by a quarter of the image (Lucent issue
/// #10), `scaled(&standard(), 128, 32)` by one pixel in 16.
pub fn scaled(transforms: &[Transform], from: usize, to: usize) -> Vec<Transform> {
    let px = |n: usize| (n as f64 * to as f64 / from as f64).round() as usize;
    transforms
        .iter()
        .map(|t| match t {
            Transform::Pad { width, value } => Transform::Pad { width: px(*width), value: *value },
            Transform::PadReflect(width) => Transform::PadReflect(px(*width)),
            Transform::Jitter(d) => Transform::Jitter(px(*d).max(2)),
            other => other.clone(),
        })
        .collect()
}
// ANCHOR_END: scaled

impl Transform {
    /// The kind's name: `pad`, `jitter`, `scale` or `rotate`.
    pub fn kind(&self) -> &'static str {
        match self {
            Transform::Pad { .. } | Transform::PadReflect(_) => "pad",
            Transform::Jitter(_) => "jitter",
            Transform::Scale(_) => "scale",
            Transform::Rotate(_) => "rotate",
        }
    }

    // ANCHOR: apply
    pub fn apply(&self, x: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        Ok(match self {
            Transform::Pad { width: p, value: v } => {
                ((x - *v)?.pad_with_zeros(2, *p, *p)?.pad_with_zeros(3, *p, *p)? + *v)?
            }
            Transform::PadReflect(p) => pad_reflect(x, *p)?,
            Transform::Jitter(d) => {
                let (dx, dy) = (rng.random_range(0..*d), rng.random_range(0..*d));
                translate(x, dx, dy)?
            }
            Transform::Scale(scales) => {
                let s = *scales.choose(rng).expect("scales");
                let (nh, nw) = ((s * h as f64).ceil() as usize, (s * w as f64).ceil() as usize);
                let y = ops::resize_bilinear_aligned(x, nh, nw)?;
                // Lucent pads a smaller result back with zeros, `ceil((H − h')/2)` on each side.
                let py = (h.saturating_sub(nh)).div_ceil(2);
                let px = (w.saturating_sub(nw)).div_ceil(2);
                y.pad_with_zeros(2, py, py)?.pad_with_zeros(3, px, px)?
            }
            Transform::Rotate(angles) => {
                let a = *angles.choose(rng).expect("angles");
                rotate(x, a)?
            }
        })
    }
    // ANCHOR_END: apply
}

/// Pads height and width by `p` on every side with the mirrored image (torch's `reflect`):
/// padded index `i` reads source index `|i − p|`, folded back at the far edge. One gather per
/// axis ([`ops::select::select`]), so the gradient of a border pixel sums its reflections.
pub fn pad_reflect(x: &Tensor, p: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    anyhow::ensure!(p < h && p < w, "a reflect pad of {p} needs an image larger than {p} px, not {h}×{w}");
    let rows = |n: usize| -> Vec<Option<u32>> {
        (0..n + 2 * p)
            .map(|i| {
                // ANCHOR: solution-reflect-index Map padded index i to the source index it mirrors: |i − p|, folded back at the far edge (n − 1)
                let j = i as i64 - p as i64;
                let j = if j < 0 {
                    -j
                } else if j >= n as i64 {
                    2 * (n as i64 - 1) - j
                } else {
                    j
                };
                Some(j as u32)
                // ANCHOR_END: solution-reflect-index
            })
            .collect()
    };
    let y = ops::select::select(&x.contiguous()?, &rows(h), 2)?;
    Ok(ops::select::select(&y, &rows(w), 3)?)
}

/// Moves the content right by `dx` and down by `dy` pixels, zero fill, same size.
pub fn translate(x: &Tensor, dx: usize, dy: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    Ok(x.pad_with_zeros(3, dx, 0)?.narrow(3, 0, w)?.pad_with_zeros(2, dy, 0)?.narrow(2, 0, h)?)
}

/// Rotation by `degrees` about the centre `((W−1)/2, (H−1)/2)`, counter-clockwise for positive
/// angles (OpenCV/kornia convention, y pointing down): `dst(p) = src(M⁻¹ p)`, bilinear, zero
/// outside. Built from four gathers ([`ops::select::select`]), so the gradient reaches every
/// source pixel.
pub fn rotate(x: &Tensor, degrees: f64) -> Result<Tensor> {
    if degrees == 0.0 {
        return Ok(x.clone());
    }
    let (b, c, h, w) = x.dims4()?;
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let n = h * w;
    let mut idx = vec![vec![None; n]; 4];
    let mut wts = vec![vec![0f32; n]; 4];
    for y in 0..h {
        for xx in 0..w {
            // ANCHOR: solution-rotate-sample For output pixel (xx, y): its source point (sx, sy) = M⁻¹ (xx − cx, y − cy) + (cx, cy), with sx = cos·dx − sin·dy + cx, sy = sin·dx + cos·dy + cy; for each of its four neighbours k (x0 + ox, y0 + oy) inside the image, set idx[k][y·w + xx] to the neighbour's flat index and wts[k][y·w + xx] to its bilinear weight
            let (dx, dy) = (xx as f64 - cx, y as f64 - cy);
            let sx = cos * dx - sin * dy + cx;
            let sy = sin * dx + cos * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let p = y * w + xx;
            for (k, (ox, oy, wt)) in [
                (0, 0, (1.0 - fx) * (1.0 - fy)),
                (1, 0, fx * (1.0 - fy)),
                (0, 1, (1.0 - fx) * fy),
                (1, 1, fx * fy),
            ]
            .into_iter()
            .enumerate()
            {
                let (px, py) = (x0 as i64 + ox, y0 as i64 + oy);
                if px >= 0 && py >= 0 && (px as usize) < w && (py as usize) < h {
                    idx[k][p] = Some((py as usize * w + px as usize) as u32);
                    wts[k][p] = wt as f32;
                }
            }
            // ANCHOR_END: solution-rotate-sample
        }
    }
    let flat = x.contiguous()?.reshape((b * c, n))?;
    let mut out: Option<Tensor> = None;
    for k in 0..4 {
        let wt = Tensor::from_vec(wts[k].clone(), (1, n), x.device())?.to_dtype(x.dtype())?;
        let term = ops::select::select(&flat, &idx[k], 1)?.broadcast_mul(&wt)?;
        out = Some(match out {
            None => term,
            Some(o) => (o + term)?,
        });
    }
    Ok(out.expect("four taps").reshape((b, c, h, w))?)
}

/// Applies `transforms` left to right.
pub fn compose(transforms: &[Transform], x: &Tensor, rng: &mut StdRng) -> Result<Tensor> {
    let mut x = x.clone();
    for t in transforms {
        x = t.apply(&x, rng)?;
    }
    Ok(x)
}
