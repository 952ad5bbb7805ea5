//! Chapter 12's table: a row for every model of the zoo; the earlier layer comes before the
//! grid layer.
use chapter_12_activation_grids::GRID;
use vision_interp::models::entry;
use vision_interp::Device;

#[test]
fn the_earlier_layer_comes_before_the_grid_layer() {
    GRID.check_rows().unwrap();
    for (name, (grid, earlier)) in GRID.0.iter().filter_map(|(name, g)| Some((name, (*g)?))) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let index = |l: &str| m.layers().iter().position(|x| x.name == l);
        let g = index(grid).unwrap_or_else(|| panic!("{name}: activation-grid layer {grid}"));
        let e = index(earlier).unwrap_or_else(|| panic!("{name}: activation-grid layer {earlier}"));
        assert!(e < g, "{name}: {earlier} comes before {grid}");
    }
}
