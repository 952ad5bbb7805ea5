//! What a scan keeps while it streams: per channel and score, four bounded lists (the most
//! negative, the closest to zero from below and from above, the most positive), and one
//! uniform sample of views shared by all channels. All of it is bounded (memory does not grow
//! with the dataset), independent of the order views arrive in, and *mergeable*: the state of
//! two shards merged is the state of one run over both, bit for bit.
use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

/// One view's score for one channel, and the position in the activation map where the crop
/// goes (the spatial argmax for the positive side, the argmin for the negative side).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub score: f32,
    pub view: u64,
    pub at: u32,
}

/// The two ways of turning a channel's activation map into one score per view.
pub const REDUCTIONS: [&str; 2] = ["max", "mean"];
/// The four bands chosen by value.
pub const VALUE_BANDS: [&str; 4] = ["min", "below_zero", "above_zero", "max"];

// ANCHOR: bounded
/// The best hits of `k` different images seen so far, best first, one per image (views
/// `v` with equal `v / per_image` are crops of one image). "Best" is the largest score (or
/// the smallest, for `smallest`), ties going to the lower view number, so the result does not
/// depend on the order hits are offered in. An offer that cannot enter costs one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded {
    k: usize,
    smallest: bool,
    per_image: u64,
    pub hits: Vec<Hit>,
}

impl Bounded {
    pub fn new(k: usize, smallest: bool, per_image: u64) -> Self {
        Self { k, smallest, per_image: per_image.max(1), hits: Vec::with_capacity(k + 1) }
    }

    /// Whether `a` ranks before `b`.
    fn before(&self, a: &Hit, b: &Hit) -> bool {
        let by_score = if self.smallest { a.score.total_cmp(&b.score) } else { b.score.total_cmp(&a.score) };
        by_score.then(a.view.cmp(&b.view)).is_lt()
    }

    pub fn offer(&mut self, hit: Hit) {
        // ANCHOR: solution-bounded-offer Keep the k best hits, at most one per image (view / per_image), ordered by `before`
        if self.hits.len() == self.k && !self.before(&hit, self.hits.last().expect("k > 0")) {
            return;
        }
        let image = hit.view / self.per_image;
        if let Some(i) = self.hits.iter().position(|h| h.view / self.per_image == image) {
            if !self.before(&hit, &self.hits[i]) {
                return;
            }
            self.hits.remove(i);
        }
        let at = self.hits.partition_point(|h| self.before(h, &hit));
        self.hits.insert(at, hit);
        self.hits.truncate(self.k);
        // ANCHOR_END: solution-bounded-offer
    }
}
// ANCHOR_END: bounded

/// One view in the uniform sample: its scores for every channel of the scan, both reductions
/// (`scores[2c + r]`), and the argmax and argmin positions (`at[2c]`, `at[2c + 1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scores: Vec<f32>,
    pub at: Vec<u32>,
}

// ANCHOR: sample
/// A uniform sample of `cap` views without replacement. Each view gets a pseudo-random
/// priority from its number and the seed, and the sample keeps the `cap` views of lowest
/// priority: every set of `cap` views is equally likely to be kept, whatever the dataset's
/// size or order, and two shards' samples merge into the sample of the whole. (The course's
/// "reservoir" replaced a random element of a full list at every step, so it kept mostly the
/// last views it saw.)
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub cap: usize,
    pub seed: u64,
    pub rows: BTreeMap<(u64, u64), Row>,
}

impl Sample {
    pub fn new(cap: usize, seed: u64) -> Self {
        Self { cap, seed, rows: BTreeMap::new() }
    }

    /// The priority of view `view` (SplitMix64 of the view and seed: uniform on u64).
    pub fn priority(&self, view: u64) -> u64 {
        let mut z = view
            .wrapping_add(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Whether view `view` would enter the sample (so the caller builds its row only then).
    pub fn wants(&self, view: u64) -> bool {
        let key = (self.priority(view), view);
        self.rows.len() < self.cap || self.rows.keys().next_back().is_some_and(|last| key < *last)
    }

    pub fn insert(&mut self, view: u64, row: Row) {
        self.insert_keyed((self.priority(view), view), row);
    }

    fn insert_keyed(&mut self, key: (u64, u64), row: Row) {
        self.rows.insert(key, row);
        if self.rows.len() > self.cap {
            self.rows.pop_last();
        }
    }
}
// ANCHOR_END: sample

/// Everything pass 1 has gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// `bands[c][r][b]`: channel `c` (counted from the scan's first channel), reduction `r`
    /// ([`REDUCTIONS`]), band `b` ([`VALUE_BANDS`]).
    pub bands: Vec<[[Bounded; 4]; 2]>,
    /// Views whose score was below zero, per channel and reduction.
    pub negative: Vec<[u64; 2]>,
    pub sample: Sample,
    /// Views scanned.
    pub views: u64,
    /// Images that could not be read: key → reason.
    pub unreadable: BTreeMap<String, String>,
}

impl State {
    /// An empty state for `channels` channels, `k` examples per band, a sample of `sample`
    /// views, images of `per_image` views each.
    pub fn new(channels: usize, k: usize, sample: usize, seed: u64, per_image: u64) -> Self {
        let band = || VALUE_BANDS.map(|b| Bounded::new(k, b == "min" || b == "above_zero", per_image));
        let bands = |_| [band(), band()];
        Self {
            bands: (0..channels).map(bands).collect(),
            negative: vec![[0; 2]; channels],
            sample: Sample::new(sample, seed),
            views: 0,
            unreadable: BTreeMap::new(),
        }
    }

    // ANCHOR: update
    /// Adds one view: `scores[2c + r]` and `at[2c]` (argmax), `at[2c + 1]` (argmin) per channel.
    pub fn add(&mut self, view: u64, scores: &[f32], at: &[u32]) {
        for (c, bands) in self.bands.iter_mut().enumerate() {
            for (r, bands) in bands.iter_mut().enumerate() {
                let score = scores[2 * c + r];
                let (high, low) =
                    (Hit { score, view, at: at[2 * c] }, Hit { score, view, at: at[2 * c + 1] });
                bands[0].offer(low);
                bands[3].offer(high);
                if score < 0.0 {
                    bands[1].offer(low);
                    self.negative[c][r] += 1;
                } else {
                    bands[2].offer(high);
                }
            }
        }
        if self.sample.wants(view) {
            self.sample.insert(view, Row { scores: scores.to_vec(), at: at.to_vec() });
        }
        self.views += 1;
    }
    // ANCHOR_END: update

    /// Adds another shard's state: the result is the state of one run over both.
    pub fn merge(&mut self, other: State) {
        for (mine, theirs) in self.bands.iter_mut().zip(other.bands) {
            for (mine, theirs) in mine.iter_mut().zip(theirs) {
                for (mine, theirs) in mine.iter_mut().zip(theirs) {
                    theirs.hits.into_iter().for_each(|h| mine.offer(h));
                }
            }
        }
        for (mine, theirs) in self.negative.iter_mut().zip(other.negative) {
            mine[0] += theirs[0];
            mine[1] += theirs[1];
        }
        for (key, row) in other.sample.rows {
            self.sample.insert_keyed(key, row);
        }
        self.views += other.views;
        self.unreadable.extend(other.unreadable);
    }

    /// The state as safetensors tensors (scores, views, positions) plus the metadata `meta`.
    pub fn to_bytes(&self, meta: &str) -> Result<Vec<u8>> {
        let (c, k) = (self.bands.len(), self.bands.first().map_or(0, |b| b[0][0].k));
        let (mut score, mut view, mut at) = (Vec::new(), Vec::new(), Vec::new());
        for bands in self.bands.iter().flatten().flatten() {
            for i in 0..k {
                let h = bands.hits.get(i);
                score.push(h.map_or(f32::NAN, |h| h.score));
                view.push(h.map_or(-1, |h| h.view as i64));
                at.push(h.map_or(0, |h| h.at));
            }
        }
        let negative: Vec<i64> = self.negative.iter().flat_map(|n| n.map(|v| v as i64)).collect();
        let prio: Vec<i64> = self.sample.rows.keys().map(|(p, _)| *p as i64).collect();
        let sview: Vec<i64> = self.sample.rows.keys().map(|(_, v)| *v as i64).collect();
        let sscore: Vec<f32> = self.sample.rows.values().flat_map(|r| r.scores.iter().copied()).collect();
        let sat: Vec<u32> = self.sample.rows.values().flat_map(|r| r.at.iter().copied()).collect();
        let n = self.sample.rows.len();
        let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
            ("bands.score", f32::DTYPE, vec![c, 2, 4, k], Le::encode(&score)),
            ("bands.view", i64::DTYPE, vec![c, 2, 4, k], Le::encode(&view)),
            ("bands.at", u32::DTYPE, vec![c, 2, 4, k], Le::encode(&at)),
            ("negative", i64::DTYPE, vec![c, 2], Le::encode(&negative)),
            ("sample.priority", i64::DTYPE, vec![n], Le::encode(&prio)),
            ("sample.view", i64::DTYPE, vec![n], Le::encode(&sview)),
            ("sample.score", f32::DTYPE, vec![n, 2 * c], Le::encode(&sscore)),
            ("sample.at", u32::DTYPE, vec![n, 2 * c], Le::encode(&sat)),
        ];
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(name, dt, shape, data)| Ok((*name, TensorView::new(*dt, shape.clone(), data)?)))
            .collect::<Result<_>>()?;
        let per_image = self.bands.first().map_or(1, |b| b[0][0].per_image);
        let extra = Saved {
            meta: meta.to_owned(),
            views: self.views,
            unreadable: self.unreadable.clone(),
            sample_cap: self.sample.cap,
            seed: self.sample.seed,
            per_image,
        };
        let metadata = std::collections::HashMap::from([("scan".to_owned(), serde_json::to_string(&extra)?)]);
        Ok(safetensors::serialize(views, Some(metadata))?)
    }

    /// Reads what [`State::to_bytes`] wrote, checking every shape against `channels` and `k`;
    /// returns the state and its metadata string.
    pub fn from_bytes(bytes: &[u8], channels: usize, k: usize) -> Result<(Self, String)> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).context("not a scan state file")?;
        let st = safetensors::SafeTensors::deserialize(bytes).context("not a scan state file")?;
        let saved: Saved = serde_json::from_str(
            header
                .metadata()
                .as_ref()
                .and_then(|m| m.get("scan"))
                .context("the file holds no scan metadata")?,
        )
        .context("the scan metadata is damaged")?;
        let n = st.tensor("sample.view").map(|t| t.shape().first().copied().unwrap_or(0)).unwrap_or(0);
        ensure!(
            n <= saved.sample_cap,
            "the sample holds {n} views, more than its capacity {}",
            saved.sample_cap
        );
        let score: Vec<f32> = read(&st, "bands.score", &[channels, 2, 4, k])?;
        let view: Vec<i64> = read(&st, "bands.view", &[channels, 2, 4, k])?;
        let at: Vec<u32> = read(&st, "bands.at", &[channels, 2, 4, k])?;
        let negative: Vec<i64> = read(&st, "negative", &[channels, 2])?;
        let prio: Vec<i64> = read(&st, "sample.priority", &[n])?;
        let sview: Vec<i64> = read(&st, "sample.view", &[n])?;
        let sscore: Vec<f32> = read(&st, "sample.score", &[n, 2 * channels])?;
        let sat: Vec<u32> = read(&st, "sample.at", &[n, 2 * channels])?;
        let mut state = State::new(channels, k, saved.sample_cap, saved.seed, saved.per_image);
        let mut i = 0;
        for bands in state.bands.iter_mut().flatten().flatten() {
            for _ in 0..k {
                if view[i] >= 0 {
                    bands.hits.push(Hit { score: score[i], view: view[i] as u64, at: at[i] });
                }
                i += 1;
            }
        }
        for (c, n) in state.negative.iter_mut().enumerate() {
            *n = [negative[2 * c] as u64, negative[2 * c + 1] as u64];
        }
        let w = 2 * channels;
        for j in 0..n {
            let row =
                Row { scores: sscore[j * w..(j + 1) * w].to_vec(), at: sat[j * w..(j + 1) * w].to_vec() };
            state.sample.rows.insert((prio[j] as u64, sview[j] as u64), row);
        }
        state.views = saved.views;
        state.unreadable = saved.unreadable;
        Ok((state, saved.meta))
    }
}

/// The state's scalars, in the file's metadata.
#[derive(Serialize, Deserialize)]
struct Saved {
    meta: String,
    views: u64,
    unreadable: BTreeMap<String, String>,
    sample_cap: usize,
    seed: u64,
    per_image: u64,
}

/// The numbers of a state file: each is stored little-endian under one safetensors dtype.
trait Le: Copy + Sized {
    const DTYPE: Dtype;
    const SIZE: usize;
    fn to_le(self) -> Vec<u8>;
    fn from_le(b: &[u8]) -> Self;
    fn encode(v: &[Self]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le()).collect()
    }
}

macro_rules! le {
    ($t:ty, $dtype:ident, $size:literal) => {
        impl Le for $t {
            const DTYPE: Dtype = Dtype::$dtype;
            const SIZE: usize = $size;
            fn to_le(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("chunks of the type's size"))
            }
        }
    };
}
le!(f32, F32, 4);
le!(i64, I64, 8);
le!(u32, U32, 4);

/// The tensor `name` of a state file as numbers of type `T`, after checking its dtype and shape.
fn read<T: Le>(st: &safetensors::SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<T>> {
    let t = st.tensor(name).with_context(|| format!("the file has no `{name}`"))?;
    ensure!(
        t.dtype() == T::DTYPE && t.shape() == shape,
        "`{name}` is {:?} {:?}, expected {:?} {shape:?}",
        t.dtype(),
        t.shape(),
        T::DTYPE
    );
    Ok(t.data().chunks(T::SIZE).map(T::from_le).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_views(n: u64, channels: usize, seed: u64) -> Vec<(u64, Vec<f32>, Vec<u32>)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|v| {
                let scores = (0..2 * channels).map(|_| (rng.random_range(-40..40) as f32) / 8.0).collect();
                let at = (0..2 * channels).map(|_| rng.random_range(0..49)).collect();
                (v, scores, at)
            })
            .collect()
    }

    #[test]
    fn bounded_keeps_the_k_best_whatever_the_order() {
        let views = random_views(500, 1, 1);
        let mut forward = Bounded::new(5, false, 1);
        let mut backward = Bounded::new(5, false, 1);
        views.iter().for_each(|(v, s, a)| forward.offer(Hit { score: s[0], view: *v, at: a[0] }));
        views.iter().rev().for_each(|(v, s, a)| backward.offer(Hit { score: s[0], view: *v, at: a[0] }));
        assert_eq!(forward, backward);
        let mut all: Vec<(f32, u64)> = views.iter().map(|(v, s, _)| (s[0], *v)).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let want: Vec<(f32, u64)> = all[..5].to_vec();
        let got: Vec<(f32, u64)> = forward.hits.iter().map(|h| (h.score, h.view)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_example_per_image() {
        // Views 0-2 are one image, 3-5 another: the best two images, each by its best view,
        // in any order of arrival.
        let scores = [5.0, 9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 0.5, 0.1];
        for order in [[0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1, 0], [3, 1, 8, 0, 5, 2, 7, 4, 6]] {
            let mut b = Bounded::new(2, false, 3);
            order.iter().for_each(|&v| b.offer(Hit { score: scores[v], view: v as u64, at: 0 }));
            let got: Vec<u64> = b.hits.iter().map(|h| h.view).collect();
            assert_eq!(got, [1, 3], "order {order:?}");
        }
    }

    #[test]
    fn bands_split_at_zero() {
        let mut s = State::new(1, 2, 4, 0, 1);
        for (v, x) in [-3.0f32, -0.5, -0.1, 0.0, 0.2, 4.0].iter().enumerate() {
            s.add(v as u64, &[*x, *x], &[1, 2]);
        }
        let scores = |b: usize| -> Vec<f32> { s.bands[0][0][b].hits.iter().map(|h| h.score).collect() };
        assert_eq!(scores(0), [-3.0, -0.5]);
        assert_eq!(scores(1), [-0.1, -0.5]);
        assert_eq!(scores(2), [0.0, 0.2]);
        assert_eq!(scores(3), [4.0, 0.2]);
        assert_eq!(s.negative[0], [3, 3]);
        // The crop goes to the argmin on the negative side, the argmax on the positive side.
        assert_eq!(s.bands[0][0][0].hits[0].at, 2);
        assert_eq!(s.bands[0][0][3].hits[0].at, 1);
    }

    #[test]
    fn the_sample_is_uniform() {
        // Keep 100 of 1000 views, 400 times with different seeds: each view should be kept
        // about 40 times, the first views as often as the last (a biased reservoir keeps the
        // last ones).
        let mut kept = vec![0u32; 1000];
        for seed in 0..400 {
            let mut s = Sample::new(100, seed);
            for v in 0..1000 {
                if s.wants(v) {
                    s.insert(v, Row { scores: vec![], at: vec![] });
                }
            }
            assert_eq!(s.rows.len(), 100);
            s.rows.keys().for_each(|(_, v)| kept[*v as usize] += 1);
        }
        let first: u32 = kept[..500].iter().sum();
        let last: u32 = kept[500..].iter().sum();
        assert!((first as f64 / last as f64 - 1.0).abs() < 0.05, "first half {first}, second {last}");
        assert!(
            kept.iter().all(|&k| (15..75).contains(&k)),
            "min {:?} max {:?}",
            kept.iter().min(),
            kept.iter().max()
        );
    }

    #[test]
    fn two_halves_merged_equal_one_run_and_survive_a_round_trip() {
        let views = random_views(300, 3, 2);
        let mut whole = State::new(3, 4, 32, 7, 3);
        views.iter().for_each(|(v, s, a)| whole.add(*v, s, a));
        let (mut a, mut b) = (State::new(3, 4, 32, 7, 3), State::new(3, 4, 32, 7, 3));
        views[..170].iter().for_each(|(v, s, at)| a.add(*v, s, at));
        views[170..].iter().for_each(|(v, s, at)| b.add(*v, s, at));
        b.unreadable.insert("x.jpg".into(), "broken".into());
        a.merge(b);
        whole.unreadable.insert("x.jpg".into(), "broken".into());
        assert_eq!(a, whole);
        let bytes = whole.to_bytes("meta").unwrap();
        let (back, meta) = State::from_bytes(&bytes, 3, 4).unwrap();
        assert_eq!(meta, "meta");
        assert_eq!(back, whole);
        assert_eq!(back.to_bytes("meta").unwrap(), bytes);
    }

    #[test]
    fn damaged_state_files_are_errors() {
        let mut s = State::new(2, 3, 8, 0, 1);
        random_views(20, 2, 3).iter().for_each(|(v, sc, a)| s.add(*v, sc, a));
        let bytes = s.to_bytes("m").unwrap();
        for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(State::from_bytes(&bytes[..cut], 2, 3).is_err(), "cut at {cut}");
        }
        let err = State::from_bytes(&bytes, 5, 3).unwrap_err().to_string();
        assert!(err.contains("bands.score"), "{err}");
    }
}
