//! Feature visualisation by optimisation (Olah et al., 2017), with the semantics of Lucid and
//! Lucent: image parametrisations ([`param`]), random transformations ([`transform`]),
//! objectives with their algebra ([`objective`]) and the render loop ([`render`]).
pub mod cppn;
pub mod objective;
pub mod param;
pub mod render;
pub mod transform;

pub use objective::Objective;
pub use param::{ImageParam, ImageSpec, LowRes, Parametrisation, Space};
pub use render::{class_verdicts, render, render_new, score, RenderConfig, Rendered};
pub use transform::{compose, Transform};

/// Cell images `(rows · cols, 3, S, S)` (chapter 12's activation grids, chapter 13's sample
/// sheets) laid out row-major as one image
/// `(3, rows · (S − 2·crop), cols · (S − 2·crop))`, `crop` pixels cut from every side of each
/// cell (the notebook cuts 2, the border the transformations leave).
pub fn tile(
    cells: &candle_core::Tensor,
    rows: usize,
    cols: usize,
    crop: usize,
) -> anyhow::Result<candle_core::Tensor> {
    let (n, c, s, _) = cells.dims4()?;
    anyhow::ensure!(n == rows * cols, "{n} cells do not make a {rows} × {cols} grid");
    anyhow::ensure!(2 * crop < s, "cropping {crop} px from each side of a {s}-px cell leaves nothing");
    let k = s - 2 * crop;
    let t = cells.narrow(2, crop, k)?.narrow(3, crop, k)?;
    // (rows, cols, c, k, k) → (c, rows, k, cols, k)
    Ok(t.reshape((rows, cols, c, k, k))?.permute((2, 0, 3, 1, 4))?.reshape((c, rows * k, cols * k))?)
}
