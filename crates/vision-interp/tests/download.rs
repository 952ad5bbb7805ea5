//! Downloads and Imagenette, against a small HTTP server on the loopback interface serving a
//! synthetic archive laid out like `imagenette2-160.tgz`.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vision_interp::data::{imagenette, Split, IMAGENETTE_CLASSES};
use vision_interp::download::{cached, md5_file, Remote};

/// Serves `body` to every GET request; counts the requests.
fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/imagenette2-160.tgz", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    (url, hits)
}

/// A `.tgz` with the Imagenette layout: `per_class` training and one validation JPEG per class,
/// 40 × 30 pixels, each class a different flat colour.
fn synthetic_imagenette(per_class: usize) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (label, (wnid, _)) in IMAGENETTE_CLASSES.iter().enumerate() {
        let colour = image::Rgb([(label * 25) as u8, 128, 255 - (label * 25) as u8]);
        let img = image::RgbImage::from_pixel(40, 30, colour);
        let mut jpeg = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        for (split, count) in [("train", per_class), ("val", 1)] {
            for i in 0..count {
                let mut header = tar::Header::new_gnu();
                header.set_size(jpeg.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                let path = format!("imagenette2-160/{split}/{wnid}/{wnid}_{i}.JPEG");
                tar.append_data(&mut header, path, jpeg.as_slice()).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn remote_for(url: &str, body: &[u8]) -> Remote {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), body).unwrap();
    Remote {
        url: url.into(),
        file_name: "imagenette2-160.tgz".into(),
        md5: Some(md5_file(tmp.path()).unwrap()),
    }
}

#[test]
fn imagenette_downloads_once_checks_unpacks_and_loads() {
    let body = synthetic_imagenette(2);
    let (url, hits) = serve(body.clone());
    let remote = remote_for(&url, &body);
    let cache = tempfile::tempdir().unwrap();

    let train = imagenette(Split::Train, 16, None, &remote, cache.path()).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(train.len(), 20);
    assert_eq!(train.images.dims(), &[20, 3, 20, 20], "training images keep a margin to crop from");
    assert_eq!(&train.labels[..4], &[0, 0, 1, 1]);
    assert_eq!(train.classes[9], "parachute");
    // Class 3's colour survives decoding, resizing and the move to [0, 1].
    let red: f32 = train.images.get(6).unwrap().get(0).unwrap().mean_all().unwrap().to_scalar().unwrap();
    assert!((red - 75.0 / 255.0).abs() < 0.03, "red channel of class 3: {red}");
    let mut rng = vision_interp::rng::seeded(0);
    let crops = train.augment(&train.images.narrow(0, 0, 4).unwrap(), &mut rng).unwrap();
    assert_eq!(crops.dims(), &[4, 3, 16, 16]);

    let val = imagenette(Split::Eval, 16, None, &remote, cache.path()).unwrap();
    assert_eq!(val.images.dims(), &[10, 3, 16, 16]);
    assert_eq!(val.labels, (0..10).collect::<Vec<u32>>());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the second split comes from the cache");
    assert!(cache.path().join("imagenette2-160.tgz").is_file());

    let subset = imagenette(Split::Train, 16, Some(10), &remote, cache.path()).unwrap();
    assert_eq!(subset.labels, (0..10).collect::<Vec<u32>>(), "a capped subset keeps every class");
}

#[test]
fn a_corrupted_download_is_rejected_and_not_kept() {
    let body = synthetic_imagenette(1);
    let (url, _) = serve(body.clone());
    let mut remote = remote_for(&url, &body);
    remote.md5 = Some("00000000000000000000000000000000".into());
    let cache = tempfile::tempdir().unwrap();
    let err = format!("{:#}", cached(&remote, cache.path()).unwrap_err());
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(
        err.contains(&format!("put it at {}", cache.path().join("imagenette2-160.tgz").display())),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing is left in the cache");
}

#[test]
fn without_network_the_error_says_how_to_supply_the_file() {
    // Nothing listens on port 9 of the loopback interface: the connection is refused at once.
    let remote = Remote {
        url: "http://127.0.0.1:9/imagenette2-160.tgz".into(),
        file_name: "imagenette2-160.tgz".into(),
        md5: Some("e793b78cc4c9e9a4ccc0c1155377a412".into()),
    };
    let cache = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let err = format!("{:#}", cached(&remote, cache.path()).unwrap_err());
    assert!(start.elapsed().as_secs() < 30, "gave up after {:?}", start.elapsed());
    for part in
        ["could not download imagenette2-160.tgz", "http://127.0.0.1:9/", "e793b78c", "VISION_INTERP_CACHE"]
    {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
}
