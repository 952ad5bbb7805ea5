//! Chapter 5: feature accentuation ([`accent`]), and the chapter's choices for each model of
//! the zoo.
use vision_interp::models::PerModel;

pub mod accent;

/// Where feature accentuation keeps the image close to its seed, on one model.
#[derive(Debug)]
pub struct Accent {
    /// The early layer of the regulariser for a class logit (Faccent's demo on InceptionV1:
    /// `mixed3a`).
    pub class_reg: &'static str,
    /// Latent accentuation: a channel `layer:unit`, the layer of its regulariser and α
    /// (Faccent's demo: `mixed4a:475`, `conv2d2`, 0.5).
    pub latent: (&'static str, &'static str, f64),
}

/// Feature accentuation's layers, where they were chosen; elsewhere the chapter asks for
/// `--reg-layer` and then stops with an error, as its latent accentuation has no unit there.
pub const ACCENT: PerModel<Option<Accent>> = PerModel(&[
    ("efficientnet-lite0", Some(Accent { class_reg: "stage2", latent: ("stage5:12", "stage1", 0.5) })),
    ("efficientnet-lite1", None),
    ("efficientnet-lite2", None),
    ("mobilenet-v2", None),
    ("inceptionv1", Some(Accent { class_reg: "mixed3a", latent: ("mixed4a:475", "conv2d2", 0.5) })),
    ("googlenet", None),
    ("resnet18", None),
    ("resnet50", None),
    ("vgg16", None),
]);
