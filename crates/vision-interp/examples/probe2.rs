use candle_core::{Device, Tensor, Var};
use std::time::Instant;
fn t(name: &str, f: impl Fn() -> candle_core::Result<Tensor>) {
    let _ = f().unwrap();
    let s = Instant::now();
    for _ in 0..5 {
        f().unwrap();
    }
    println!("{name}: {:?}", s.elapsed() / 5);
}
fn main() {
    let d = Device::Cpu;
    let mut rng = vision_interp::rng::seeded(0);
    let x = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (1, 3, 225, 225), 0.0, 1.0, &d).unwrap())
        .unwrap();
    let w = vision_interp::rng::randn(&mut rng, (32, 3, 3, 3), 0.0, 1.0, &d).unwrap();
    t("stem conv fwd+bwd", || {
        let y = x.as_tensor().conv2d(&w, 0, 2, 1, 1)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(x.as_tensor()).unwrap().clone())
    });
    let a = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (1, 96, 112, 112), 0.0, 1.0, &d).unwrap())
        .unwrap();
    t("clamp fwd+bwd 96x112²", || {
        let y = vision_interp::ops::relu6(a.as_tensor())?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(a.as_tensor()).unwrap().clone())
    });
    let b = vision_interp::rng::randn(&mut rng, (1, 96, 1, 1), 0.0, 1.0, &d).unwrap();
    t("bias fwd+bwd 96x112²", || {
        let y = a.as_tensor().broadcast_add(&b)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(a.as_tensor()).unwrap().clone())
    });
    t("pad fwd+bwd 96x112²", || {
        let y = vision_interp::ops::pad_same(a.as_tensor(), 3, 2)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(a.as_tensor()).unwrap().clone())
    });
    let wd = vision_interp::rng::randn(&mut rng, (96, 1, 3, 3), 0.0, 1.0, &d).unwrap();
    t("dw fwd+bwd 96x112²", || {
        let y = vision_interp::ops::depthwise_conv2d(a.as_tensor(), &wd, 1)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(a.as_tensor()).unwrap().clone())
    });
    let wp = vision_interp::rng::randn(&mut rng, (24, 96, 1, 1), 0.0, 1.0, &d).unwrap();
    t("pw fwd+bwd 96x112²", || {
        let y = vision_interp::ops::pointwise_conv2d(a.as_tensor(), &wp)?;
        let g = y.sum_all()?.backward()?;
        Ok(g.get(a.as_tensor()).unwrap().clone())
    });
}
