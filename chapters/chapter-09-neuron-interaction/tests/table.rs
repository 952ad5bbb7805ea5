//! Chapter 9's table: a row for every model of the zoo; every unit is one of its model, and an
//! interpolation stays within one layer.
use chapter_09_neuron_interaction::INTERACTION;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn interpolations_stay_within_one_layer() {
    INTERACTION.check_rows().unwrap();
    for (name, i) in INTERACTION.0.iter().filter_map(|(name, i)| Some((name, i.as_ref()?))) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let m = m.as_ref();
        let pairs = i.pairs.iter().chain(i.interpolations);
        for u in i.negative.iter().chain(pairs.flat_map(|(a, b)| [a, b])) {
            parse_unit(m, u).unwrap_or_else(|err| panic!("{name}: interaction unit {u}: {err:#}"));
        }
        for (a, b) in i.interpolations {
            let (a, b) = (parse_unit(m, a).unwrap(), parse_unit(m, b).unwrap());
            assert_eq!(a.layer, b.layer, "{name}: an interpolation within one layer");
        }
    }
}
