//! Chapter 8's table: a row for every model of the zoo, each recipe a unit of its model with
//! a positive weight.
use chapter_08_diversity::DIVERSITY;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn recipes_name_units_of_their_models() {
    DIVERSITY.check_rows().unwrap();
    for (name, recipes) in DIVERSITY.0.iter().filter(|(_, r)| !r.is_empty()) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        for d in *recipes {
            parse_unit(m.as_ref(), d.unit).unwrap_or_else(|err| panic!("{name}: diversity unit: {err:#}"));
            assert!(d.weight > 0.0, "{name}: diversity weight of {}", d.unit);
        }
    }
}
