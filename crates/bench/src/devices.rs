//! `bench devices --device cuda|metal`: the same computations on the CPU and on the chosen
//! device, and how far apart their results are ([`tools::devcheck`]). On a GPU the
//! book's CPU kernels are replaced by Candle operations, so this checks that both paths agree:
//! forward passes and input gradients of InceptionV1 and Lite0, a short render, and SimpleCNN
//! training steps. Exits with an error when a difference is above the tolerance.
use anyhow::{bail, Result};
use candle_core::Device;
use tools::devcheck;

#[derive(clap::Args)]
pub struct Args {
    /// Largest relative difference accepted (‖a − b‖ / ‖a‖; at least 5e-2 for the render)
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    /// Steps of the render compared
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// Input size of the models
    #[arg(long, default_value_t = 224)]
    size: usize,
}

pub fn run(a: &Args, device: &Device) -> Result<()> {
    if matches!(device, Device::Cpu) {
        bail!("bench devices compares the CPU with another device: pass --device cuda or --device metal");
    }
    let on_cpu = devcheck::computations(&Device::Cpu, a.size, a.steps)?;
    let on_device = devcheck::computations(device, a.size, a.steps)?;
    println!("\n{:<52} {:>12}", "CPU against the device", "‖a − b‖/‖a‖");
    let mut above = Vec::new();
    for (what, r) in devcheck::compare(&on_cpu, &on_device)? {
        println!("{what:<52} {r:>12.1e}");
        if r > devcheck::tolerance(&what, a.tolerance) {
            above.push(what);
        }
    }
    if !above.is_empty() {
        bail!("above the tolerance: {}", above.join("; "));
    }
    println!("all within {:.0e}", a.tolerance);
    Ok(())
}
