//! The path GPUs take, checked on the CPU: with the book's CPU kernels switched off, every
//! operation falls back to Candle operations, as on CUDA or Metal. Forward passes, input
//! gradients, a render and training steps must agree with the kernels' results.
use candle_core::Device;
use tools::devcheck;
use vision_interp::ops;

#[test]
fn candle_operations_agree_with_the_cpu_kernels() {
    let with_kernels = devcheck::computations(&Device::Cpu, 96, 4).unwrap();
    ops::set_cpu_kernels(false);
    let generic = devcheck::computations(&Device::Cpu, 96, 4).unwrap();
    ops::set_cpu_kernels(true);
    let mut failures = Vec::new();
    for (what, r) in devcheck::compare(&with_kernels, &generic).unwrap() {
        println!("{what:<52} {r:.1e}");
        if r > devcheck::tolerance(&what, 1e-4) {
            failures.push(format!("{what}: {r:.1e}"));
        }
    }
    assert!(failures.is_empty(), "the paths disagree: {failures:?}");
}
