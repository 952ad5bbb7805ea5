//! Chapter 4's table: a row for every model of the zoo, whose units are of one layer, which
//! the chapter scans before its activation function where the model names one.
use chapter_04_dataset_examples::SPECTRUM;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn every_model_has_spectrum_units_of_one_layer() {
    SPECTRUM.check_rows().unwrap();
    for (name, s) in SPECTRUM.0 {
        assert!(!s.units.is_empty(), "{name}: the chapter needs a spectrum unit");
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let m = m.as_ref();
        let units: Vec<_> = s
            .units
            .iter()
            .chain(s.polysemantic.iter())
            .map(|u| parse_unit(m, u).unwrap_or_else(|err| panic!("{name}: {u}: {err:#}")))
            .collect();
        assert!(units.iter().all(|u| u.layer == units[0].layer), "{name}: spectrum units of one layer");
        if let Some(pre) = m.pre_activation(&units[0].layer) {
            assert_eq!(
                m.layer(pre).unwrap().channels,
                m.layer(&units[0].layer).unwrap().channels,
                "{name}: {pre}"
            );
        }
    }
}
