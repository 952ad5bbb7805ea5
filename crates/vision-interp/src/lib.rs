//! Shared library of the *Vision Interpretability* book.
//!
//! Chapters hold the idea; the library holds what two chapters use, in three layers, as Candle
//! keeps `candle-core` under `candle-nn`: the kernels (`vision-interp-kernels`: the operations
//! Candle lacks, and every `unsafe` block), the zoo (`vision-interp-zoo`: models and their
//! weights) and this crate, the engine, which re-exports both so that a chapter names one crate.
//!
//! | module | layer | what |
//! |---|---|---|
//! | [`cli`], [`device`], [`flag`] | engine | the flags every chapter takes, the session they open, `--device` |
//! | [`attribution`] | engine | saliency, SmoothGrad, integrated gradients, Grad-CAM |
//! | [`optvis`] | engine | feature visualisation: parametrisations, transforms, objectives, render |
//! | [`data`], [`optim`], [`checkpoint`] | engine | datasets, Adam, resumable training checkpoints |
//! | [`imageio`], [`figure`] | engine | images, figures and charts |
//! | [`scan`], [`shard`] | engine | dataset examples at scale, `--shard k/n` |
//! | [`models`] | zoo | the model zoo with named layers and roles, the `Model` trait, hash-built weights |
//! | [`weights`], [`legacy_pth`], [`download`] | zoo | finding, downloading and reading weights and data |
//! | [`imagenet`] | zoo | ImageNet's classes and normalisation |
//! | [`atomic`], [`progress`], [`rng`] | zoo | atomic writes, progress bars, seeded randomness |
//! | [`ops`] | kernels | differentiable operations Candle lacks, and the CPU kernels |
//! | [`fast_allocator!`], [`keep_freed_memory`] | kernels | the allocator the programs run on |

pub mod attribution;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod figure;
pub mod flag;
pub mod imageio;
pub mod optim;
pub mod optvis;
pub mod scan;
pub mod shard;

pub use candle_core::{DType, Device, Tensor, Var};
/// The image crate, for chapters that handle figures' pixels.
pub use image;
pub use vision_interp_kernels::{fast_allocator, keep_freed_memory, ops};
pub use vision_interp_zoo::{
    asset, atomic, download, imagenet, legacy_pth, models, progress, rng, weights, work_dir, workspace_root,
};
