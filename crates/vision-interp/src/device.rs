//! Device choice: `--device auto|cpu|cuda|metal`.
use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Where tensors live. `Auto` takes CUDA if compiled in and present, else Metal, else the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

/// Opens the device the user asked for, or explains why it cannot.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    let cuda_built = cfg!(feature = "cuda");
    let metal_built = cfg!(feature = "metal");
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !cuda_built {
                bail!("--device cuda: this binary was built without CUDA; rebuild with `--features cuda`")
            }
            Device::new_cuda(0).context("--device cuda: no usable CUDA device")
        }
        DeviceChoice::Metal => {
            if !metal_built {
                bail!("--device metal: this binary was built without Metal; rebuild with `--features metal`")
            }
            Device::new_metal(0).context("--device metal: no usable Metal device")
        }
        DeviceChoice::Auto => {
            if cuda_built {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if metal_built {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            if !cuda_built && !metal_built {
                eprintln!(
                    "note: running on the CPU; build with `--features cuda` (NVIDIA) or \
                     `--features metal` (Apple) to use a GPU"
                );
            }
            Ok(Device::Cpu)
        }
    }
}

/// A short name for messages and captions.
pub fn describe(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}
