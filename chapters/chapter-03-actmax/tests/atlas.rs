//! The atlas run (chapter 3's `atlas` binary): sharded batches, a run "killed" after one batch
//! and a lost file redone exactly, to the same images as one uninterrupted run.
use candle_core::Device;
use chapter_03_actmax::atlas::{self, AtlasJob, Shard};
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::optvis::{ImageSpec, RenderConfig};
use vision_interp::weights::WeightStore;

fn model() -> InceptionV1 {
    let t = hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu).unwrap();
    InceptionV1::from_store(&WeightStore::from_tensors(std::path::Path::new("hash"), t)).unwrap()
}

#[test]
fn atlas_resumes_after_an_interruption_to_the_same_images() {
    let m = model();
    let job = |out: &std::path::Path, max_batches| AtlasJob {
        layer: "mixed3a".into(),
        units: Some(0..10),
        batch: 3,
        shard: "2/2".parse().unwrap(),
        image: ImageSpec::square(24),
        render: RenderConfig { steps: 2, min_input: None, progress: false, ..Default::default() },
        seed: 5,
        out: out.to_path_buf(),
        max_batches,
    };
    assert_eq!(atlas::batches(0..10, Shard { k: 2, n: 2 }, 3), [vec![1, 3, 5], vec![7, 9]]);
    let (whole, parts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = atlas::run(&m, &job(whole.path(), None), &Device::Cpu).unwrap();
    assert_eq!((all.done, all.skipped, all.failed), (5, 0, 0));
    // "Killed" after the first batch, then one unit's file lost as well: the rerun redoes
    // exactly what is missing.
    let first = atlas::run(&m, &job(parts.path(), Some(1)), &Device::Cpu).unwrap();
    assert_eq!(first.done, 3);
    std::fs::remove_file(atlas::unit_path(parts.path(), "mixed3a", 3)).unwrap();
    let rest = atlas::run(&m, &job(parts.path(), None), &Device::Cpu).unwrap();
    assert_eq!((rest.done, rest.skipped), (3, 2));
    for u in [1, 3, 5, 7, 9] {
        let a = std::fs::read(atlas::unit_path(whole.path(), "mixed3a", u)).unwrap();
        let b = std::fs::read(atlas::unit_path(parts.path(), "mixed3a", u)).unwrap();
        assert!(a == b, "unit {u} differs after resuming");
    }
    let again = atlas::run(&m, &job(parts.path(), None), &Device::Cpu).unwrap();
    assert_eq!((again.done, again.skipped), (0, 5));
    assert!("0/2".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
}
