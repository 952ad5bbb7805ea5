//! Chapter 9's choices for each model of the zoo.
use vision_interp::models::PerModel;

/// The chapter's units, `layer:unit`.
#[derive(Debug)]
pub struct Interaction {
    /// Channels shown negative and positive (the notebook's `mixed4a:492`, `mixed4a:104`,
    /// `mixed4b:154`).
    pub negative: &'static [&'static str],
    /// Pairs rendered alone and combined (the notebook's `mixed4b:111` and `mixed4a:476`).
    pub pairs: &'static [(&'static str, &'static str)],
    /// Pairs of one layer interpolated from the first to the second (the notebook's
    /// `mixed4a:476` → `mixed4a:465`, …).
    pub interpolations: &'static [(&'static str, &'static str)],
}

/// The units after Lucent's neuron-interaction notebook, where they were chosen; elsewhere
/// the showcase unit and the next channel of its layer.
pub const INTERACTION: PerModel<Option<Interaction>> = PerModel(&[
    // Units of chapter 8's diversity recipes, whose renders are known to differ; each
    // interpolation stays within one layer, and the pair shares one so that its direction can
    // be rendered.
    (
        "efficientnet-lite0",
        Some(Interaction {
            negative: &["stage5:12", "stage4:17", "stage5:55"],
            pairs: &[("stage5:12", "stage5:55")],
            interpolations: &[("stage5:12", "stage5:55"), ("stage4:17", "stage4:3")],
        }),
    ),
    ("efficientnet-lite1", None),
    ("efficientnet-lite2", None),
    ("mobilenet-v2", None),
    // The neuron-interaction notebook's units.
    (
        "inceptionv1",
        Some(Interaction {
            negative: &["mixed4a:492", "mixed4a:104", "mixed4b:154"],
            pairs: &[("mixed4b:111", "mixed4a:476")],
            interpolations: &[
                ("mixed4a:476", "mixed4a:465"),
                ("mixed4a:476", "mixed4a:455"),
                ("mixed4a:460", "mixed4a:501"),
            ],
        }),
    ),
    ("googlenet", None),
    ("resnet18", None),
    ("resnet50", None),
    ("vgg16", None),
]);
