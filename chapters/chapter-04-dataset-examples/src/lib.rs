//! Chapter 4's choices for each model of the zoo; the dataset scan itself is the library's
//! (`vision_interp::scan`), which chapter 8 and the `dataset-scan` binary share.
use vision_interp::models::PerModel;

/// The units of one layer whose dataset examples and activation spectra the chapter shows.
#[derive(Debug)]
pub struct Spectrum {
    /// `layer:unit`, all of one layer, which the chapter scans (before its activation function,
    /// where [`Model::pre_activation`](vision_interp::models::Model::pre_activation) names one).
    pub units: &'static [&'static str],
    /// A unit of that layer whose top dataset examples fall into visibly different groups,
    /// where one was found.
    pub polysemantic: Option<&'static str>,
}

const fn units(units: &'static [&'static str]) -> Spectrum {
    Spectrum { units, polysemantic: None }
}

// ANCHOR: spectrum
/// Every model's spectrum units (chapter 8 draws its diverse renders beside the same scan).
pub const SPECTRUM: PerModel<Spectrum> = PerModel(&[
    // Chapter 3's lookalikes, checked against photos; 57's top photos are fish heads and
    // measuring instruments (from the full scan of the photo collection).
    (
        "efficientnet-lite0",
        Spectrum {
            units: &["stage3:0", "stage3:3", "stage3:39", "stage3:49", "stage3:11"],
            polysemantic: Some("stage3:57"),
        },
    ),
    ("efficientnet-lite1", units(&["stage3:0"])),
    ("efficientnet-lite2", units(&["stage3:0"])),
    ("mobilenet-v2", units(&["features_10:0"])),
    // The showcase unit, then the first units the course's Segment 3 drew.
    ("inceptionv1", units(&["mixed4a:476", "mixed4a:0", "mixed4a:1", "mixed4a:2"])),
    ("googlenet", units(&["inception4a:107"])),
    ("resnet18", units(&["layer3_1:7"])),
    ("resnet50", units(&["layer3_3:7"])),
    ("vgg16", units(&["features_22:7"])),
]);
// ANCHOR_END: spectrum
