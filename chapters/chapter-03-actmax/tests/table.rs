//! Chapter 3's table: a row for every model of the zoo, every lookalike a unit of its model.
use chapter_03_actmax::LOOKALIKES;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn lookalikes_are_units_of_their_models() {
    LOOKALIKES.check_rows().unwrap();
    for (name, units) in LOOKALIKES.0.iter().filter(|(_, units)| !units.is_empty()) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        for u in *units {
            parse_unit(m.as_ref(), u).unwrap_or_else(|err| panic!("{name}: lookalike {u}: {err:#}"));
        }
    }
}
