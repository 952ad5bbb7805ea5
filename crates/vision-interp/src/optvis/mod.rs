//! Feature visualisation by optimisation (Olah et al., 2017), with the semantics of Lucid and
//! Lucent: image parametrisations ([`param`]), random transformations ([`transform`]),
//! objectives with their algebra ([`objective`]) and the render loop ([`render`]).
pub mod accent;
pub mod atlas;
pub mod cppn;
pub mod grid;
pub mod objective;
pub mod param;
pub mod render;
pub mod style;
pub mod transform;

pub use accent::{accentuate, AccentConfig, Accented};
pub use objective::Objective;
pub use param::{ImageParam, ImageSpec, LowRes, Space};
pub use render::{render, render_new, score, RenderConfig, Rendered};
pub use transform::{compose, Transform};
