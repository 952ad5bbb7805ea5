//! Adam (Kingma & Ba, 2015) with a state that can be checkpointed.
//!
//! Candle's `AdamW` keeps its moment estimates private, so a run resumed from a checkpoint
//! would restart them and end with different weights. This Adam is the same algorithm as
//! PyTorch's `torch.optim.Adam` (no weight decay; Candle's `AdamW` decays by default) and can
//! save and restore its moments and step count.
use std::collections::HashMap;

use anyhow::Result;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use candle_nn::VarMap;

use crate::ops::cpu::{f32_slice, f32_slice_mut};

pub struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub step: usize,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// Optimises every variable of `varmap` except BatchNorm's running statistics.
    pub fn new(varmap: &VarMap, lr: f64) -> Result<Self> {
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .filter(|(name, _)| !name.contains("running_"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |vars: &[(String, Var)]| vars.iter().map(|(_, v)| v.as_tensor().zeros_like()).collect();
        let m: candle_core::Result<Vec<Tensor>> = zeros(&vars);
        let v: candle_core::Result<Vec<Tensor>> = zeros(&vars);
        Ok(Self { m: m?, v: v?, vars, step: 0, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 })
    }

    /// Optimises the given named variables (feature visualisation's image parameters).
    pub fn from_vars(vars: Vec<(String, Var)>, lr: f64) -> Result<Self> {
        let zeros = |vars: &[(String, Var)]| vars.iter().map(|(_, v)| v.as_tensor().zeros_like()).collect();
        let m: candle_core::Result<Vec<Tensor>> = zeros(&vars);
        let v: candle_core::Result<Vec<Tensor>> = zeros(&vars);
        Ok(Self { m: m?, v: v?, vars, step: 0, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 })
    }

    /// The same optimiser with other decay rates of the moment estimates (DCGAN: β₁ = 0.5).
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        (self.beta1, self.beta2) = (beta1, beta2);
        self
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = self.gradients(loss)?;
        self.step_with(&grads)
    }

    /// The gradients of `loss` with respect to this optimiser's variables (`None` where the loss
    /// does not depend on one), to be summed over mini-batches ([`Adam::add`]) before one
    /// [`Adam::step_with`].
    pub fn gradients(&self, loss: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let grads = loss.backward()?;
        Ok(self.vars.iter().map(|(_, v)| grads.get(v.as_tensor()).cloned()).collect())
    }

    /// `sum += grads`, variable by variable (a sum of mini-batches' [`Adam::gradients`]).
    pub fn add(sum: &mut Vec<Option<Tensor>>, grads: Vec<Option<Tensor>>) -> Result<()> {
        if sum.is_empty() {
            *sum = grads;
            return Ok(());
        }
        for (s, g) in sum.iter_mut().zip(grads) {
            *s = match (s.take(), g) {
                (Some(a), Some(b)) => Some((a + b)?),
                (a, b) => a.or(b),
            };
        }
        Ok(())
    }

    /// One update from gradients given variable by variable, in the order of the variables.
    pub fn step_with(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        anyhow::ensure!(
            grads.len() == self.vars.len(),
            "{} gradients for {} variables",
            grads.len(),
            self.vars.len()
        );
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.step as i32);
        let c2 = 1.0 - b2.powi(self.step as i32);
        for (i, g) in grads.iter().enumerate() {
            let var = self.vars[i].1.clone();
            let Some(g) = g else { continue };
            if crate::ops::cpu_kernels(var.as_tensor()) {
                self.update_cpu(i, &var, g, c1, c2)?;
                continue;
            }
            self.m[i] = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            self.v[i] = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&self.m[i] / c1)? / ((&self.v[i] / c2)?.sqrt()? + self.eps)?)?;
            var.set(&(var.as_tensor() - (update * self.lr)?)?)?;
        }
        Ok(())
    }

    /// The same update in place, in three passes over the values (on the CPU, a chain of tensor
    /// operations allocates and walks each parameter a dozen times).
    fn update_cpu(&mut self, i: usize, var: &Var, g: &Tensor, c1: f64, c2: f64) -> Result<()> {
        let g = g.contiguous()?;
        self.m[i].inplace_op2(&g, &Moment { beta: self.beta1 as f32, square: false })?;
        self.v[i].inplace_op2(&g, &Moment { beta: self.beta2 as f32, square: true })?;
        let step = Step { lr: self.lr as f32, c1: c1 as f32, c2: c2 as f32, eps: self.eps as f32 };
        var.as_tensor().inplace_op3(&self.m[i], &self.v[i], &step)?;
        Ok(())
    }

    /// The moment estimates, named `adam.m.<variable>` and `adam.v.<variable>`. On the CPU they
    /// share storage with the optimiser, which updates them in place: save or copy them before
    /// the next step.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores the moment estimates saved by [`Adam::state`] and the step count.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for (i, (name, _)) in self.vars.iter().enumerate() {
            let get = |kind: &str| {
                state
                    .get(&format!("adam.{kind}.{name}"))
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("checkpoint has no optimiser state `adam.{kind}.{name}`"))
            };
            self.m[i] = get("m")?.to_device(self.m[i].device())?;
            self.v[i] = get("v")?.to_device(self.v[i].device())?;
        }
        self.step = step;
        Ok(())
    }
}

/// A moment estimate, in place: `m ← β m + (1 − β) g` (or `g²` with `square`).
struct Moment {
    beta: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (m, g) = (f32_slice_mut(s1, l1, "moment")?, f32_slice(s2, l2, "gradient")?);
        if m.len() != g.len() {
            candle_core::bail!("adam: {} moments for {} gradients", m.len(), g.len());
        }
        let b = self.beta;
        if self.square {
            m.iter_mut().zip(g).for_each(|(m, &g)| *m = b * *m + (1.0 - b) * g * g);
        } else {
            m.iter_mut().zip(g).for_each(|(m, &g)| *m = b * *m + (1.0 - b) * g);
        }
        Ok(())
    }
}

/// The parameter step, in place: `w ← w − lr · (m / c1) / (√(v / c2) + ε)`.
struct Step {
    lr: f32,
    c1: f32,
    c2: f32,
    eps: f32,
}

impl InplaceOp3 for Step {
    fn name(&self) -> &'static str {
        "adam-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let (w, m, v) =
            (f32_slice_mut(s1, l1, "parameter")?, f32_slice(s2, l2, "moment")?, f32_slice(s3, l3, "moment")?);
        if w.len() != m.len() || w.len() != v.len() {
            candle_core::bail!("adam: {} values, {} and {} moments", w.len(), m.len(), v.len());
        }
        for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
            *w -= self.lr * (m / self.c1) / ((v / self.c2).sqrt() + self.eps);
        }
        Ok(())
    }
}
