//! Chapter 12: activation grids ([`grid`]) and the factorisation they group positions by
//! ([`nmf`]), and the chapter's choices for each model of the zoo.
use vision_interp::models::PerModel;

pub mod grid;
pub mod nmf;

/// The layers `(grid, earlier)`: the layer whose activation grid is drawn (the notebook's
/// `mixed4d`, 14 × 14 positions at 224 px) and an earlier layer whose groups are attributed to
/// the grid layer's; elsewhere the chapter asks for `--layer` and `--below`.
pub const GRID: PerModel<Option<(&str, &str)>> = PerModel(&[
    // The deepest stage at 14 × 14 (InceptionV1's mixed4d is too), fed by the one before it;
    // Lite1 and Lite2 share Lite0's layer names.
    ("efficientnet-lite0", Some(("stage4", "stage3"))),
    ("efficientnet-lite1", Some(("stage4", "stage3"))),
    ("efficientnet-lite2", Some(("stage4", "stage3"))),
    ("mobilenet-v2", None),
    // The activation-grid notebook's layer, and Building Blocks' earlier one.
    ("inceptionv1", Some(("mixed4d", "mixed4a"))),
    ("googlenet", None),
    ("resnet18", None),
    ("resnet50", None),
    ("vgg16", None),
]);
