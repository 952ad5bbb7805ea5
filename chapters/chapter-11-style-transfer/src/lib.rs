//! Chapter 11: style transfer's losses and recipe ([`style`]), and the chapter's choices for
//! each model of the zoo.
use vision_interp::models::PerModel;

pub mod style;

/// The style transfer's layers and weight on one model.
#[derive(Debug)]
pub struct StyleLayers {
    /// Layers whose activations the transfer keeps from the photo (Lucid: `mixed3b`).
    pub content: &'static [&'static str],
    /// Layers whose Gram matrices it takes from the painting, early to late (Lucid:
    /// `conv2d2`, `mixed3a`, `mixed4a`, `mixed4b`, `mixed4c`).
    pub style: &'static [&'static str],
    /// Weight of the content loss against a style loss of weight 1 (Lucid: 100).
    pub content_weight: f64,
}

// Lucid's choice translated by resolution: content at 28 × 28 (InceptionV1's mixed3b), style
// from the stem's fine strokes (112 × 112) down to 14 × 14 (mixed4c). The content weight was
// chosen by eye at 224 px and 128 steps: Lucid's 100 leaves the photo almost untouched on
// Lite0, 1 loses the tower, 10 keeps the tower in the painting's strokes.
const LITE: StyleLayers = StyleLayers {
    content: &["stage2"],
    style: &["stem", "stage1", "stage2", "stage3", "stage4"],
    content_weight: 10.0,
};

/// The layers after Lucid's style-transfer notebook, where they were chosen (Lite1 and Lite2
/// share Lite0's layer names); elsewhere the content layer one third of the way down the
/// model's walk through depth, the first half of that walk as style layers, and a content
/// weight of 100.
pub const STYLE: PerModel<Option<StyleLayers>> = PerModel(&[
    ("efficientnet-lite0", Some(LITE)),
    ("efficientnet-lite1", Some(LITE)),
    ("efficientnet-lite2", Some(LITE)),
    ("mobilenet-v2", None),
    // Lucid's style-transfer notebook.
    (
        "inceptionv1",
        Some(StyleLayers {
            content: &["mixed3b"],
            style: &["conv2d2", "mixed3a", "mixed4a", "mixed4b", "mixed4c"],
            content_weight: 100.0,
        }),
    ),
    ("googlenet", None),
    ("resnet18", None),
    ("resnet50", None),
    ("vgg16", None),
]);
