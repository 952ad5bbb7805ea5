//! Shared library of the *Vision Interpretability* book.
//!
//! Chapters hold the idea; this crate holds what two chapters use:
//!
//! | module | what |
//! |---|---|
//! | [`cli`], [`device`] | the flags every chapter takes, the session they open, `--device` |
//! | [`models`] | the model zoo with named layers and roles, the `Model` trait, hash-built weights |
//! | [`weights`], [`legacy_pth`], [`download`] | finding, downloading and reading weights and data |
//! | [`attribution`] | saliency, SmoothGrad, integrated gradients, Grad-CAM |
//! | [`optvis`] | feature visualisation: parametrisations, transforms, objectives, render |
//! | [`ops`] | differentiable operations Candle lacks, and the CPU kernels |
//! | [`data`], [`optim`], [`checkpoint`] | datasets, Adam, resumable training checkpoints |
//! | [`imageio`], [`figure`], [`imagenet`] | images, figures and charts, ImageNet's classes and normalisation |
//! | [`scan`] | dataset examples at scale |
//! | [`atomic`], [`progress`], [`rng`], [`shard`] | atomic writes, progress bars, seeded randomness, `--shard k/n` |

pub mod atomic;
pub mod attribution;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod download;
pub mod figure;
pub mod flag;
pub mod imageio;
pub mod imagenet;
pub mod legacy_pth;
pub mod models;
pub mod ops;
pub mod optim;
pub mod optvis;
pub mod progress;
pub mod rng;
pub mod scan;
pub mod shard;
pub mod weights;

pub use candle_core::{DType, Device, Tensor, Var};
/// The image crate, for chapters that handle figures' pixels.
pub use image;
#[doc(hidden)]
pub use mimalloc;

/// Makes mimalloc the program's allocator. Tensors are large, short-lived buffers; the system
/// allocator hands each one back to the kernel and faults fresh pages in for the next, which
/// cost more than the arithmetic in a CPU training step (a 3×3 convolution of a 32-image batch:
/// 12.4 ms with the system allocator, 2.7 ms with mimalloc). Put it once in each binary:
/// `vision_interp::fast_allocator!();`
#[macro_export]
macro_rules! fast_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::mimalloc::MiMalloc = $crate::mimalloc::MiMalloc;
    };
}

/// Keeps the memory of freed tensors in the process for the next ones. By default mimalloc
/// hands freed memory back to the kernel after a delay (a second), and a training or render step, whose
/// tensors are megabytes each and live for one step, then faults every page in again and has
/// the kernel zero it: on Lite0's style transfer (`bench style`) 19,700 page faults in 24 steps
/// with the default, 455 without purging, and a tenth of the CPU time spent zeroing
/// pages. The price is that the process keeps its peak memory until it exits. Called by
/// [`cli::Session::start`] and the benchmarks; a no-op unless mimalloc is the allocator
/// ([`fast_allocator!`]).
pub fn keep_freed_memory() {
    // `mi_option_purge_delay` of mimalloc 3's `mimalloc.h` (delay in ms; -1: never purge),
    // which the Rust bindings do not name.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one of mimalloc's global options; any value is valid for this one.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// Root of the workspace (the folder holding `book.toml`): `VISION_INTERP_ROOT` if set, else
/// the one this crate was built in.
pub fn workspace_root() -> std::path::PathBuf {
    if let Some(root) = std::env::var_os("VISION_INTERP_ROOT") {
        return root.into();
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = manifest.parent().and_then(|p| p.parent()).unwrap_or(manifest);
    if built.join("assets").is_dir() {
        return built.to_path_buf();
    }
    // A binary copied to another machine: the nearest folder at or above the current one
    // that holds the book (`book.toml` and `assets/`).
    let here = std::env::current_dir().unwrap_or_default();
    here.ancestors()
        .find(|d| d.join("book.toml").is_file() && d.join("assets").is_dir())
        .map_or_else(|| built.to_path_buf(), std::path::Path::to_path_buf)
}

/// Working folder for checkpoints and trained weights: `target/vision-interp/` in the
/// workspace (never committed; a fresh clone starts without it).
pub fn work_dir() -> std::path::PathBuf {
    workspace_root().join("target").join("vision-interp")
}

/// Path of a file under `assets/` in the workspace.
pub fn asset(rel: &str) -> std::path::PathBuf {
    workspace_root().join("assets").join(rel)
}
