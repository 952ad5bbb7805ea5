//! Chapter 6's choices for each model of the zoo.
use vision_interp::models::PerModel;

/// Chapter 6's two units after Lucent's tutorial notebook, `layer:unit`: a second channel of
/// the showcase unit's layer, rendered beside it and added to it, and a favourite unit for the
/// grid of parametrisations and transformations (the notebook's `mixed4a:465` and
/// `mixed4d_3x3_bottleneck_pre_relu_conv:139`); where none were chosen, the showcase unit's next
/// channel and the showcase unit.
pub const TUTORIAL: PerModel<Option<(&str, &str)>> = PerModel(&[
    ("efficientnet-lite0", Some(("stage5:0", "stage3:42"))),
    ("efficientnet-lite1", None),
    ("efficientnet-lite2", None),
    ("mobilenet-v2", None),
    ("inceptionv1", Some(("mixed4a:465", "mixed4d_3x3_bottleneck_pre_relu_conv:139"))),
    ("googlenet", None),
    ("resnet18", None),
    ("resnet50", None),
    ("vgg16", None),
]);
