//! Progress bars for loops a reader waits for.
use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a rate and an ETA; hidden when stderr is not a terminal (CI logs stay short).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A bar for a download of `len` bytes (a spinner when the size is unknown).
pub fn bytes_bar(len: Option<u64>, what: &str) -> ProgressBar {
    let pb = match len {
        Some(len) => {
            let pb = ProgressBar::new(len);
            pb.set_style(
                ProgressStyle::with_template(
                    "{msg:>14} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb
        }
        None => {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{msg:>14} {spinner} {bytes} ({bytes_per_sec})")
                    .expect("valid template"),
            );
            pb
        }
    };
    pb.set_message(what.to_string());
    pb
}
