//! A generator as an image parametrisation (Lucent's `GANparam`; Nguyen et al., 2016): the
//! optimiser changes a code, and the image is what the generator makes of it.
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor, Var};
use rand::rngs::StdRng;

use vision_interp::optvis::Parametrisation;

use crate::Generator;

// ANCHOR: gan_param
/// A batch of codes, and the generator that turns them into images.
pub struct GanParam<'a> {
    generator: &'a dyn Generator,
    code: Var,
}

impl<'a> GanParam<'a> {
    /// `batch` codes drawn from N(0, sd²) (Lucent's `GANparam(batch, sd)`).
    pub fn new(
        generator: &'a dyn Generator,
        batch: usize,
        sd: f32,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Self> {
        let mut shape = vec![batch];
        shape.extend(generator.code_shape());
        let code = vision_interp::rng::randn(rng, shape.as_slice(), 0.0, sd, device)?;
        Self::from_code(generator, &code)
    }

    /// Starts from given codes `(B, …code shape)`.
    pub fn from_code(generator: &'a dyn Generator, code: &Tensor) -> Result<Self> {
        let want = generator.code_shape();
        ensure!(
            code.rank() == want.len() + 1 && code.dims()[1..] == want[..],
            "{} takes codes of shape (batch, {}), not {:?}",
            generator.name(),
            want.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            code.dims()
        );
        Ok(Self { generator, code: Var::from_tensor(code)? })
    }

    /// The current codes.
    pub fn code(&self) -> &Tensor {
        self.code.as_tensor()
    }
}

impl Parametrisation for GanParam<'_> {
    fn vars(&self) -> Vec<(String, Var)> {
        vec![("code".into(), self.code.clone())]
    }
    fn image(&self) -> Result<Tensor> {
        self.generator.images(self.code.as_tensor())
    }
}
// ANCHOR_END: gan_param
