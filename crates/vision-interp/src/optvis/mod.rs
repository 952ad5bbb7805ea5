//! Feature visualisation by optimisation (Olah et al., 2017), with the semantics of Lucid and
//! Lucent: image parametrisations ([`param`]), random transformations ([`transform`]),
//! objectives with their algebra ([`objective`]) and the render loop ([`render`]).
pub mod accent;
pub mod atlas;
pub mod cppn;
pub mod gan_param;
pub mod grid;
pub mod objective;
pub mod param;
pub mod render;
pub mod style;
pub mod transform;

pub use accent::{accentuate, AccentConfig, Accented};
pub use gan_param::GanParam;
pub use objective::Objective;
pub use param::{ImageParam, ImageSpec, LowRes, Parametrisation, Space};
pub use render::{class_verdicts, render, render_new, score, RenderConfig, Rendered};
pub use transform::{compose, Transform};
