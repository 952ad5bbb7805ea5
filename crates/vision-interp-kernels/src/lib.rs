//! The bottom layer of the *Vision Interpretability* book's library: the operations Candle
//! lacks with their hand-written CPU kernels ([`ops`]), and the allocator the book's programs
//! run on. Every `unsafe` block of the book's own code is in this crate (the matrix products'
//! `gemm-common`, vendored in `vendor/` for a fixed summation order, is its dependency).
//! The zoo (`vision-interp-zoo`) builds the models on it, and the engine (`vision-interp`)
//! re-exports it.

pub mod ops;

#[doc(hidden)]
pub use mimalloc;

/// Makes mimalloc the program's allocator. Tensors are large, short-lived buffers; the system
/// allocator hands each one back to the kernel and faults fresh pages in for the next, which
/// cost more than the arithmetic in a CPU training step (a 3×3 convolution of a 32-image batch:
/// 12.4 ms with the system allocator, 2.7 ms with mimalloc). Put it once in each binary:
/// `vision_interp::fast_allocator!();` (the engine re-exports it)
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
/// `vision_interp::cli::Session::start` and the benchmarks; a no-op unless mimalloc is the allocator
/// ([`fast_allocator!`]).
pub fn keep_freed_memory() {
    // `mi_option_purge_delay` of mimalloc 3's `mimalloc.h` (delay in ms; -1: never purge),
    // which the Rust bindings do not name.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one of mimalloc's global options; any value is valid for this one.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
