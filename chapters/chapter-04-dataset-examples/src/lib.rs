//! Chapter 4's choices for each model of the zoo, and its scan of one layer over the photo
//! collection ([`DatasetScan`]), which chapter 8 and the atlas reuse; the dataset scan itself
//! is the library's (`vision_interp::scan`), which the `dataset-scan` binary shares.
use std::path::Path;

use anyhow::Result;
use candle_core::Device;
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

/// Chapter 4's scan of one layer over the offline photo collection: the settings of the
/// chapter's run (full or quick), kept in the working folder (`target/vision-interp/`) so that
/// chapter 8, the atlas and a second run of the chapter reuse it; made on the spot, by the same
/// code, when chapter 4 has not run.
#[derive(Debug, Clone, Copy)]
pub struct DatasetScan {
    pub quick: bool,
    pub seed: u64,
}

impl DatasetScan {
    /// Views per photo: 16 (quick: the centre crop only), so the 212 photos give 3,392 views
    /// (quick: 212).
    pub fn views_per_image(&self) -> usize {
        if self.quick {
            1
        } else {
            16
        }
    }

    /// The dataset examples of `layer` (every channel), from the working folder when this scan
    /// has run before (a scan that was stopped resumes), otherwise scanned now.
    pub fn examples(
        &self,
        model: &dyn vision_interp::models::Model,
        weights: Option<&Path>,
        layer: &str,
        device: &Device,
    ) -> Result<(vision_interp::scan::Examples, vision_interp::scan::Source)> {
        use vision_interp::scan::{Scan, Source};
        let source = Source::open("collection")?;
        let scan = Scan::new(
            model,
            weights,
            &source,
            layer,
            None,
            9,
            self.views_per_image(),
            4096,
            16,
            self.seed,
            device,
        )?;
        let mode = if self.quick { "quick" } else { "full" };
        let tag = format!("{}-{}-{mode}-seed{}", model.name(), layer, self.seed);
        let dir = vision_interp::work_dir().join("scans").join(tag);
        std::fs::create_dir_all(&dir)?;
        let examples = scan.run(None, &dir, 20)?.save(&dir, &source)?;
        Ok((examples, source))
    }
}
