//! The scanner's contract, checked from outside: for the same inputs, one run, two shards
//! merged, a run killed and resumed, and a run over a damaged checkpoint all write the same
//! `examples.json`, byte for byte; bad input is refused with one clear message.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_dataset-scan");

/// 24 photos of the collection and one truncated JPEG, in a fresh folder.
fn images() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/photos/collection/objects");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    photos.sort();
    for (i, p) in photos.iter().take(24).enumerate() {
        let sub = dir.path().join(if i % 2 == 0 { "a" } else { "b/c" });
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(p, sub.join(p.file_name().unwrap())).unwrap();
    }
    let bytes = std::fs::read(&photos[0]).unwrap();
    std::fs::write(dir.path().join("broken.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    dir
}

/// The scanner on `images`, with the test's settings; a flag in `extra` replaces the setting.
fn scan(images: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--device", "cpu", "--images"]).arg(images).arg("--out").arg(out);
    let settings =
        [("--layer", "stage1"), ("--top-k", "3"), ("--views", "2"), ("--batch", "4"), ("--sample", "16")];
    for (flag, value) in settings.iter().chain(&[("--checkpoint-every", "1")]) {
        if !extra.contains(flag) {
            c.args([flag, value]);
        }
    }
    c.args(extra).env_remove("SLURM_ARRAY_TASK_ID").env_remove("JOB_COMPLETION_INDEX");
    c
}

fn ok(mut c: Command) -> String {
    let out: Output = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{c:?} failed:\n{text}");
    text
}

fn refused(mut c: Command, expected: &str) {
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{c:?} should fail; said:\n{text}");
    assert!(text.contains(expected), "{c:?}: no `{expected}` in:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
}

fn examples(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("examples.json")).unwrap()
}

#[test]
fn one_run_shards_merged_and_a_killed_run_resumed_agree_byte_for_byte() {
    let imgs = images();
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);

    let said = ok(scan(imgs.path(), &w("one"), &[]));
    assert!(said.contains("scanned 48 views of 25 images"), "{said}");
    assert!(said.contains("1 unreadable"), "{said}");
    assert_eq!(said.matches("warning: skipped broken.jpg").count(), 1, "one warning that names it: {said}");
    let one = examples(&w("one"));
    let json: serde_json::Value = serde_json::from_slice(&one).unwrap();
    assert!(json["unreadable"]["broken.jpg"].as_str().unwrap().contains("truncated"));
    assert_eq!(json["units"].as_array().unwrap().len(), 24, "stage1 has 24 channels");
    // Pass 2 wrote each kept example's view and crop.
    assert!(w("one/examples/stage1-u0000/max-00.crop.jpg").is_file());
    assert!(w("one/examples/stage1-u0023/min-02.view.jpg").is_file());

    // Two shards, the second from the Slurm variables, merged.
    ok(scan(imgs.path(), &w("s1"), &["--shard", "1/2"]));
    let mut second = scan(imgs.path(), &w("s2"), &["--no-images"]);
    second
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2");
    assert!(ok(second).contains("(shard 2/2)"));
    assert_ne!(examples(&w("s1")), one, "a shard alone sees half the views");
    let mut merge = Command::new(BIN);
    merge.args(["merge", "--out"]).arg(w("merged")).arg(w("s2")).arg(w("s1"));
    ok(merge);
    assert!(examples(&w("merged")) == one, "two shards merged differ from one run");

    // Killed as soon as its first checkpoint is on disk, then run again.
    let mut child = scan(imgs.path(), &w("killed"), &["--no-images"]).spawn().unwrap();
    let state = w("killed/scan-state.safetensors");
    while !state.exists() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().ok();
    child.wait().unwrap();
    assert!(!w("killed/examples.json").exists() || examples(&w("killed")) == one);
    let said = ok(scan(imgs.path(), &w("killed"), &["--no-images"]));
    assert!(said.contains("resuming at batch"), "{said}");
    assert!(examples(&w("killed")) == one, "a killed and resumed run differs from one run");

    // A damaged checkpoint: a warning and a fresh start, to the same result.
    std::fs::create_dir_all(w("damaged")).unwrap();
    std::fs::write(w("damaged/scan-state.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
        .unwrap();
    let said = ok(scan(imgs.path(), &w("damaged"), &["--no-images"]));
    assert!(said.contains("damaged") && said.contains("starting afresh"), "{said}");
    assert!(examples(&w("damaged")) == one);

    // Shards of different scans are not merged.
    ok(scan(imgs.path(), &w("other"), &["--shard", "2/2", "--no-images", "--seed", "1"]));
    let mut bad = Command::new(BIN);
    bad.args(["merge", "--out"]).arg(w("bad")).arg(w("s1")).arg(w("other"));
    refused(bad, "shards of different scans");
    let mut missing = Command::new(BIN);
    missing.args(["merge", "--out"]).arg(w("bad")).arg(w("s1"));
    refused(missing, "need shards 1..2 once each");
    assert!(!w("bad/examples.json").exists(), "nothing written by a refused merge");
}

#[test]
fn bad_input_is_refused_with_one_message() {
    let imgs = images();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let empty = tempfile::tempdir().unwrap();
    refused(scan(empty.path(), &out, &[]), "no images");
    refused(scan(imgs.path(), &out, &["--layer", "stage9"]), "closest: stage0");
    refused(scan(imgs.path(), &out, &["--channels", "20..30"]), "channels 0..24");
    refused(scan(imgs.path(), &out, &["--top-k", "100"]), "more than the 50 views");
    refused(scan(imgs.path(), &out, &["--shard", "3/2"]), "k must be between 1 and n");
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("x.jpg"), b"\xFF\xD8 not really").unwrap();
    refused(scan(broken.path(), &out, &["--top-k", "1", "--views", "1"]), "none of the images could be read");
    assert!(!out.join("examples.json").exists(), "nothing written after a refusal");
    let mut k8s = scan(imgs.path(), &out, &[]);
    k8s.env("JOB_COMPLETION_INDEX", "0");
    refused(k8s, "DATASET_SCAN_SHARDS is not");
}
