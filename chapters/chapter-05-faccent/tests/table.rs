//! Chapter 5's table: a row for every model of the zoo; where layers were chosen, each
//! regulariser reads a layer before the one it keeps the image close at.
use chapter_05_faccent::ACCENT;
use vision_interp::models::{entry, parse_unit};
use vision_interp::Device;

#[test]
fn accentuation_regularisers_come_before_their_layers() {
    ACCENT.check_rows().unwrap();
    for (name, a) in ACCENT.0.iter().filter_map(|(name, a)| Some((name, a.as_ref()?))) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let m = m.as_ref();
        let index = |l: &str| m.layers().iter().position(|x| x.name == l);
        let reg = index(a.class_reg).unwrap_or_else(|| panic!("{name}: accent layer {}", a.class_reg));
        assert!(reg + 1 < m.layers().len(), "{name}: the class regulariser comes before the logits");
        let u = parse_unit(m, a.latent.0).unwrap_or_else(|err| panic!("{name}: latent unit: {err:#}"));
        let latent_reg = index(a.latent.1).unwrap_or_else(|| panic!("{name}: latent layer {}", a.latent.1));
        assert!(latent_reg < index(&u.layer).unwrap(), "{name}: the latent regulariser comes first");
        assert!(a.latent.2 > 0.0, "{name}: α");
    }
}
