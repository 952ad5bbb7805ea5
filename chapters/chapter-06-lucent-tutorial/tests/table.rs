//! Chapter 6's table: a row for every model of the zoo; the second channel shares the
//! showcase unit's layer, and the favourite is a unit of the model.
use chapter_06_lucent_tutorial::TUTORIAL;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn the_second_channel_is_of_the_showcase_layer() {
    TUTORIAL.check_rows().unwrap();
    for (name, (second, favourite)) in TUTORIAL.0.iter().filter_map(|(name, t)| Some((name, (*t)?))) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let m = m.as_ref();
        let show = parse_unit(m, m.card().roles.showcase_unit).unwrap();
        let second = parse_unit(m, second).unwrap_or_else(|err| panic!("{name}: second channel: {err:#}"));
        assert_eq!(show.layer, second.layer, "{name}: the second channel is of the showcase layer");
        parse_unit(m, favourite).unwrap_or_else(|err| panic!("{name}: favourite unit: {err:#}"));
    }
}
