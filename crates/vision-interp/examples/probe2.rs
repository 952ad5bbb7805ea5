use candle_core::{DType, Device, Tensor, Var};
use std::time::Instant;
fn t(name: &str, f: impl Fn() -> candle_core::Result<()>) {
    f().unwrap();
    let s = Instant::now();
    for _ in 0..5 {
        f().unwrap();
    }
    println!("{name}: {:?}", s.elapsed() / 5);
}
fn main() {
    let d = Device::Cpu;
    let mut rng = vision_interp::rng::seeded(0);
    let x = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (32, 3, 32, 32), 0.0, 1.0, &d).unwrap())
        .unwrap();
    let w1 =
        Var::from_tensor(&vision_interp::rng::randn(&mut rng, (32, 3, 3, 3), 0.0, 0.1, &d).unwrap()).unwrap();
    let a1 = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (32, 32, 32, 32), 0.0, 1.0, &d).unwrap())
        .unwrap();
    let w2 = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (64, 32, 3, 3), 0.0, 0.1, &d).unwrap())
        .unwrap();
    let a2 = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (32, 64, 16, 16), 0.0, 1.0, &d).unwrap())
        .unwrap();
    let w3 = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (128, 64, 3, 3), 0.0, 0.1, &d).unwrap())
        .unwrap();
    t("conv1 fwd+bwd", || {
        let y = vision_interp::ops::conv2d_same_stride1(x.as_tensor(), w1.as_tensor(), 1)?;
        y.sum_all()?.backward()?;
        Ok(())
    });
    t("conv2 fwd+bwd", || {
        let y = vision_interp::ops::conv2d_same_stride1(a1.as_tensor(), w2.as_tensor(), 1)?;
        y.sum_all()?.backward()?;
        Ok(())
    });
    t("conv3 fwd+bwd", || {
        let y = vision_interp::ops::conv2d_same_stride1(a2.as_tensor(), w3.as_tensor(), 1)?;
        y.sum_all()?.backward()?;
        Ok(())
    });
    t("conv2 fwd only", || {
        let _y = a1.as_tensor().conv2d(w2.as_tensor(), 1, 1, 1, 1)?;
        Ok(())
    });
    t("maxpool ours fwd+bwd 32x32x32", || {
        let y = vision_interp::ops::max_pool2d(a1.as_tensor(), 2, 2, 0, false)?;
        y.sum_all()?.backward()?;
        Ok(())
    });
    t("augment", || {
        let _ = vision_interp::data::augment(x.as_tensor(), &mut vision_interp::rng::seeded(1)).unwrap();
        Ok(())
    });
    let _ = DType::F32;
    let _ = Tensor::zeros(1, DType::F32, &d);
}
