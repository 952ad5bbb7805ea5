//! Chapter 4, dataset examples: `scan::state::Bounded::offer`, the best hits of k different
//! images whatever order they come in.
use vision_interp::scan::state::{Bounded, Hit};

/// `n` hits with pseudo-random scores (some equal), views 0..n.
fn hits(n: u64) -> Vec<Hit> {
    (0..n).map(|v| Hit { score: ((v * 7919) % 13) as f32 - 6.0, view: v, at: v as u32 }).collect()
}

/// The expected result by brute force: the best hit of each image, ranked, the first k.
fn brute_force(all: &[Hit], k: usize, smallest: bool, per_image: u64) -> Vec<Hit> {
    let rank = |a: &Hit, b: &Hit| {
        let s = if smallest { a.score.total_cmp(&b.score) } else { b.score.total_cmp(&a.score) };
        s.then(a.view.cmp(&b.view))
    };
    let mut best: Vec<Hit> = Vec::new();
    for h in all {
        match best.iter_mut().find(|b| b.view / per_image == h.view / per_image) {
            Some(b) if rank(h, b).is_lt() => *b = *h,
            Some(_) => {}
            None => best.push(*h),
        }
    }
    best.sort_by(rank);
    best.truncate(k);
    best
}

fn offer_all(order: &[Hit], k: usize, smallest: bool, per_image: u64) -> Vec<Hit> {
    let mut b = Bounded::new(k, smallest, per_image);
    for h in order {
        b.offer(*h);
    }
    b.hits
}

#[test]
fn the_k_best_hits_are_kept_best_first() {
    let all = hits(40);
    let got = offer_all(&all, 5, false, 1);
    assert_eq!(got, brute_force(&all, 5, false, 1));
    assert!(got.windows(2).all(|p| p[0].score >= p[1].score), "best first");
}

#[test]
fn each_image_gives_at_most_one_hit() {
    let all = hits(48);
    let got = offer_all(&all, 6, false, 4); // 12 images of 4 views
    assert_eq!(got, brute_force(&all, 6, false, 4));
    let mut images: Vec<u64> = got.iter().map(|h| h.view / 4).collect();
    images.dedup();
    assert_eq!(images.len(), got.len(), "two hits of one image");
}

#[test]
fn the_order_of_the_offers_does_not_matter() {
    let all = hits(60);
    let want = offer_all(&all, 7, false, 3);
    let mut reversed = all.clone();
    reversed.reverse();
    let interleaved: Vec<Hit> = all.iter().step_by(2).chain(all.iter().skip(1).step_by(2)).copied().collect();
    assert_eq!(offer_all(&reversed, 7, false, 3), want);
    assert_eq!(offer_all(&interleaved, 7, false, 3), want);
}

#[test]
fn the_smallest_band_keeps_the_lowest_scores() {
    let all = hits(30);
    assert_eq!(offer_all(&all, 4, true, 2), brute_force(&all, 4, true, 2));
}
