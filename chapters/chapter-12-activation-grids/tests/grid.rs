//! Activation grids (chapter 12): a signed layer's groups still reconstruct it, cells tile in
//! reading order, each naive cell moves towards its own position's vector, the group
//! attribution splits gradient × activation, and the refusals of input that cannot fit.
use candle_core::{Device, Tensor, Var};
use chapter_12_activation_grids::grid::{self, GridConfig};
use vision_interp::imageio::photo;
use vision_interp::models::{EfficientNetLite0, Model, Taps};
use vision_interp::optvis::{objective, tile, Transform};
use vision_interp::rng::seeded;

fn lite0() -> EfficientNetLite0 {
    EfficientNetLite0::load(None, &Device::Cpu).expect("Lite0 weights in assets/")
}

fn frobenius(t: &Tensor) -> f32 {
    t.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap()
}

fn cosine(a: &Tensor, b: &Tensor) -> f32 {
    let dot = (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    dot / (frobenius(a) * frobenius(b))
}

#[test]
fn a_signed_layers_groups_reconstruct_it_with_the_split_error() {
    let m = lite0();
    let img = photo("chelsea.png", 112, &Device::Cpu).unwrap();
    let p = grid::position_vectors(&m, &img, "stage4").unwrap();
    assert_eq!((p.rows, p.cols, p.vectors.dims()[1]), (7, 7, 112));
    let v = &p.vectors;
    assert!(v.min_all().unwrap().to_scalar::<f32>().unwrap() < 0.0, "Lite0's stage4 is signed");
    let f = grid::groups(v, 4, 300, &mut seeded(1)).unwrap();
    assert_eq!((f.w.dims(), f.h.dims()), (&[49, 4][..], &[4, 112][..]));
    assert!(f.w.min_all().unwrap().to_scalar::<f32>().unwrap() >= 0.0, "W stays non-negative");
    // Folded, W H = W H⁺ − W H⁻, and v − W H = (v⁺ − W H⁺) − (v⁻ − W H⁻): by the triangle
    // inequality its relative error is at most √2 times the split's (‖[v⁺, v⁻]‖ = ‖v‖).
    let err = frobenius(&(v - f.w.matmul(&f.h).unwrap()).unwrap()) / frobenius(v);
    let split_err = *f.errors.last().unwrap();
    assert!(
        err <= split_err * 2f32.sqrt() * 1.0001 && err < 0.8,
        "fold error {err}, split error {split_err}"
    );
    // Four groups explain more than one.
    let one = grid::groups(v, 1, 300, &mut seeded(1)).unwrap();
    assert!(split_err < *one.errors.last().unwrap(), "{split_err} vs one group");
}

#[test]
fn cells_tile_in_reading_order_with_their_borders_cut() {
    // Cell n is filled with the value n; a 2 × 3 grid of 6-px cells, 1 px cut from each side.
    let cells: Vec<Tensor> =
        (0..6).map(|n| Tensor::full(n as f32, (3, 6, 6), &Device::Cpu).unwrap()).collect();
    let cells = Tensor::stack(&cells, 0).unwrap();
    let t = tile(&cells, 2, 3, 1).unwrap();
    assert_eq!(t.dims(), &[3, 8, 12]);
    let v = t.get(0).unwrap().to_vec2::<f32>().unwrap();
    for (y, row) in v.iter().enumerate() {
        for (x, &val) in row.iter().enumerate() {
            assert_eq!(val, ((y / 4) * 3 + x / 4) as f32, "pixel ({y}, {x})");
        }
    }
    let e = tile(&cells, 2, 2, 1).unwrap_err().to_string();
    assert!(e.contains("6 cells do not make a 2 × 2 grid"), "{e}");
}

#[test]
fn each_naive_cell_moves_towards_its_own_positions_vector() {
    let m = lite0();
    let img = photo("chelsea.png", 112, &Device::Cpu).unwrap();
    let p = grid::position_vectors(&m, &img, "stage4").unwrap();
    // Two positions whose vectors differ most: the top-left corner and the centre.
    let targets = Tensor::stack(&[p.vectors.get(0).unwrap(), p.vectors.get(24).unwrap()], 0).unwrap();
    let cfg = GridConfig {
        cell: 48,
        steps: 24,
        lr: 0.05,
        transforms: vec![Transform::Jitter(2)],
        batch: 2,
        progress: false,
    };
    let r = grid::render_cells(&m, "stage4", &targets, &cfg, &mut seeded(4), &Device::Cpu).unwrap();
    assert!(r.losses.last().unwrap() < &(r.losses[0] - 1.0), "losses {:?}", r.losses);
    // Each rendered cell's mean vector at stage4 is closer in direction to its own target.
    let a = m.forward_taps(&m.preprocess(r.last()).unwrap(), &Taps::layers(&["stage4"])).unwrap();
    let mean = a.get("stage4").unwrap().mean((2, 3)).unwrap();
    for (own, other) in [(0, 1), (1, 0)] {
        let c_own = cosine(&mean.get(own).unwrap(), &targets.get(own).unwrap());
        let c_other = cosine(&mean.get(own).unwrap(), &targets.get(other).unwrap());
        assert!(c_own > c_other, "cell {own}: cosine {c_own} with its target, {c_other} with the other");
    }
}

#[test]
fn group_attribution_splits_gradient_times_activation() {
    let m = lite0();
    let img = photo("chelsea.png", 96, &Device::Cpu).unwrap();
    let (a, b) = ("stage3", "stage4");
    let mut rng = seeded(2);
    let fa = grid::groups(&grid::position_vectors(&m, &img, a).unwrap().vectors, 3, 200, &mut rng).unwrap();
    let fb = grid::groups(&grid::position_vectors(&m, &img, b).unwrap().vectors, 2, 200, &mut rng).unwrap();
    let att = grid::group_attribution(&m, &img, (a, &fa), (b, &fb)).unwrap();
    assert_eq!(att.dims(), &[3, 2]);
    // Summed over layer a's groups, column j is ⟨W_a H_a, ∂s_j/∂a⟩: the gradient × the
    // reconstructed activation, computed here directly.
    let x = m.preprocess(&img.unsqueeze(0).unwrap()).unwrap();
    let recon = fa.w.matmul(&fa.h).unwrap(); // (positions, C_a)
    for j in 0..2 {
        let acts = m.forward_taps(&x, &Taps::layers(&[b]).probe(a)).unwrap();
        let act_b = acts.get(b).unwrap().squeeze(0).unwrap();
        let dir = fb.h.get(j).unwrap().reshape((act_b.dim(0).unwrap(), 1, 1)).unwrap();
        let score = act_b.broadcast_mul(&dir).unwrap().sum_all().unwrap();
        let probe: &Var = acts.probe(a).unwrap();
        let g = score.backward().unwrap().get(probe.as_tensor()).unwrap().clone();
        let g = g.squeeze(0).unwrap().flatten_from(1).unwrap().t().unwrap(); // (positions, C_a)
        let want = (g * &recon).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let got = att.narrow(1, j, 1).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((got - want).abs() <= 1e-3 * want.abs().max(1.0), "group {j}: {got} against {want}");
    }
    // Groups of the wrong layer are named with both shapes.
    let e = grid::group_attribution(&m, &img, (b, &fa), (b, &fb)).unwrap_err().to_string();
    assert!(e.contains("the groups of stage4 factorise") && e.contains("positions"), "{e}");
}

#[test]
fn targets_of_the_wrong_shape_and_too_many_groups_are_refused() {
    let m = lite0();
    let img = photo("chelsea.png", 64, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let acts = m.forward_taps(&m.preprocess(&img).unwrap(), &Taps::layers(&["stage4"])).unwrap();
    let wrong = Tensor::zeros((1, 80), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = objective::dot_each("stage4", &wrong).loss(&acts, &img).unwrap_err().to_string();
    assert!(e.contains("1 images of 112 channels") && e.contains("[1, 80]"), "{e}");
    let v = Tensor::ones((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = grid::groups(&v, 6, 10, &mut seeded(0)).unwrap_err().to_string();
    assert!(e.contains("at most 3 groups"), "{e}");
}
