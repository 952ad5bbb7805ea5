//! Chapter 8's choices for each model of the zoo.
use vision_interp::models::PerModel;

/// One batch of chapter 8: a channel, minus `weight` times the diversity of its layer.
#[derive(Debug)]
pub struct DiversityRecipe {
    /// `layer:unit`.
    pub unit: &'static str,
    pub weight: f64,
    /// Colours decorrelated (the notebook's last recipe turns it off).
    pub decorrelate: bool,
    /// What the batch shows (the notebook's headings: "different curvy facets").
    pub caption: &'static str,
}

const fn recipe(unit: &'static str, weight: f64, caption: &'static str) -> DiversityRecipe {
    DiversityRecipe { unit, weight, decorrelate: true, caption }
}

/// The diversity recipes after Lucent's diversity notebook (InceptionV1's `mixed5a:9` at weight
/// 1e2, …); the first is also the unit of the weight sweep. Empty: the showcase unit at
/// weight 10.
pub const DIVERSITY: PerModel<&[DiversityRecipe]> = PerModel(&[
    // Picked by rendering batches of four at weight 10 (48 steps, 96 px) for eight units each
    // of stage4, stage5 and stage6 and keeping those whose four images differed most by eye.
    // Lite0's channel means reach about 15–30, so Lucent's weights of 1e2 and 1e3 (made for
    // InceptionV1) swamp them; 10 is this model's moderate weight and 30 its strong one.
    (
        "efficientnet-lite0",
        &[
            recipe("stage5:12", 10.0, "the showcase unit"),
            recipe("stage4:17", 30.0, "a strong weight"),
            recipe("stage5:55", 10.0, "a unit of stage5"),
            recipe("stage6:50", 10.0, "the last stage"),
            DiversityRecipe { decorrelate: false, ..recipe("stage4:3", 10.0, "colours not decorrelated") },
        ],
    ),
    ("efficientnet-lite1", &[]),
    ("efficientnet-lite2", &[]),
    ("mobilenet-v2", &[]),
    // The diversity notebook's five recipes, with its headings.
    (
        "inceptionv1",
        &[
            recipe("mixed5a:9", 1e2, "a channel of mixed5a"),
            recipe("mixed4a:97", 1e3, "different curvy facets"),
            recipe("mixed4a:143", 1e2, "different shapes with the same fur texture"),
            recipe("mixed4e:55", 1e2, "cars and cats"),
            DiversityRecipe {
                decorrelate: false,
                ..recipe("mixed4d_3x3_bottleneck_pre_relu_conv:139", 1e3, "flowers and other stuff")
            },
        ],
    ),
    ("googlenet", &[]),
    ("resnet18", &[]),
    ("resnet50", &[]),
    ("vgg16", &[]),
]);
