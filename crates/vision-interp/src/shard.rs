//! `--shard k/n`: one machine's part of a job that many machines split without talking to each
//! other (the unit atlas, the dataset scan), given on the command line or by the scheduler.
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// The `k`-th of `n` parts of a job, `k` from 1 (`--shard k/n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (k, n) = s.split_once('/').with_context(|| format!("`{s}` is not of the form k/n (e.g. 2/8)"))?;
        let (k, n): (usize, usize) = (k.trim().parse()?, n.trim().parse()?);
        ensure!(n >= 1 && (1..=n).contains(&k), "shard `{s}`: k must be between 1 and n");
        Ok(Self { k, n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

// ANCHOR: shard_env
impl Shard {
    /// The shard a scheduler gives this process: a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` + 1 of `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` + 1 of `DATASET_SCAN_SHARDS`, which the
    /// manifest sets to the Job's `completions`); none outside a scheduler.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let num = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| v.trim().parse().with_context(|| format!("{name}={v} is not a number")))
                .transpose()
        };
        if let (Some(id), Some(count)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return Ok(Some(format!("{}/{count}", id + 1 - min.min(id)).parse()?));
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("DATASET_SCAN_SHARDS")?.context(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but DATASET_SCAN_SHARDS is not: \
                 set it to the Job's completions, or pass --shard k/n",
            )?;
            return Ok(Some(format!("{}/{count}", index + 1).parse()?));
        }
        Ok(None)
    }
}
// ANCHOR_END: shard_env

impl Shard {
    /// The whole job, in one part.
    pub const ALL: Shard = Shard { k: 1, n: 1 };

    /// `--shard` if given, else the scheduler's ([`Shard::from_env`]), else the whole job.
    pub fn or_from_env(given: Option<Shard>) -> Result<Shard> {
        match given {
            Some(s) => Ok(s),
            None => Ok(Shard::from_env(|v| std::env::var(v).ok())?.unwrap_or(Shard::ALL)),
        }
    }

    /// Whether item `i` is this shard's when items are dealt out in turn (`i mod n = k − 1`).
    pub fn deals(&self, i: usize) -> bool {
        i % self.n == self.k - 1
    }

    /// This shard's contiguous run `start..end` of `len` items.
    pub fn run_of(&self, len: usize) -> (usize, usize) {
        ((self.k - 1) * len / self.n, self.k * len / self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_deal_and_split() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.k, s.n, s.to_string()), (2, 3, "2/3".to_string()));
        for bad in ["0/3", "4/3", "1/0", "x", "1-2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!((0..7).filter(|&i| s.deals(i)).collect::<Vec<_>>(), [1, 4]);
        let runs: Vec<_> = (1..=3).map(|k| Shard { k, n: 3 }.run_of(10)).collect();
        assert_eq!(runs, [(0, 3), (3, 6), (6, 10)]);
    }

    #[test]
    fn schedulers_give_the_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(Shard::from_env(slurm).unwrap(), Some(Shard { k: 8, n: 8 }));
        let slurm1 = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(Shard::from_env(slurm1).unwrap(), Some(Shard { k: 1, n: 4 }));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3"), ("DATASET_SCAN_SHARDS", "4")]);
        assert_eq!(Shard::from_env(k8s).unwrap(), Some(Shard { k: 4, n: 4 }));
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "3")])).is_err());
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
    }
}
