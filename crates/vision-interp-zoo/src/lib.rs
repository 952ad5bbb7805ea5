//! The model zoo of the *Vision Interpretability* book: the models with named layers and
//! roles ([`models`]), finding, downloading and reading their weights ([`weights`],
//! [`download`], [`legacy_pth`]), ImageNet's classes ([`imagenet`]), and what these need
//! (seeded randomness, progress bars, atomic writes, the book's folders). It sits on the
//! kernels (`vision-interp-kernels`, re-exported as [`ops`]) and under the engine
//! (`vision-interp`), which re-exports every module here (`hash_init` as
//! `models::hash_init`).

pub mod atomic;
pub mod download;
pub mod hash_init;
pub mod imagenet;
pub mod legacy_pth;
pub mod models;
pub mod progress;
pub mod rng;
pub mod weights;

pub use vision_interp_kernels::ops;

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
