//! Chapter 3's choices for each model of the zoo, and the atlas run ([`atlas`]: every unit of a
//! layer, resumable and sharded); the technique itself (parametrisations, transformations,
//! objectives, the render loop) is the engine's, which later chapters share.
use vision_interp::models::PerModel;

pub mod atlas;

/// Units whose feature visualisations look like the curve and colour detectors of the Circuits
/// papers: a resemblance by eye, drawn by the chapter as one figure; empty where none was picked.
pub const LOOKALIKES: PerModel<&[&str]> = PerModel(&[
    // From the stage3 atlas: arcs and scallops (0, 3, 39, 49) and a blob of colours (11).
    ("efficientnet-lite0", &["stage3:0", "stage3:3", "stage3:39", "stage3:49", "stage3:11"]),
    ("efficientnet-lite1", &[]),
    ("efficientnet-lite2", &[]),
    ("mobilenet-v2", &[]),
    // Curve detectors of Cammarata et al. (2020), "Curve Detectors", Distill.
    ("inceptionv1", &["mixed3b:379", "mixed3b:385"]),
    ("googlenet", &[]),
    ("resnet18", &[]),
    ("resnet50", &[]),
    ("vgg16", &[]),
]);
