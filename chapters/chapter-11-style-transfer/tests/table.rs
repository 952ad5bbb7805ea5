//! Chapter 11's table: a row for every model of the zoo; the chosen layers are the model's,
//! and the content weight is positive.
use chapter_11_style_transfer::STYLE;
use vision_interp::models::entry;
use vision_interp::Device;

#[test]
fn style_layers_are_layers_of_their_models() {
    STYLE.check_rows().unwrap();
    for (name, s) in STYLE.0.iter().filter_map(|(name, s)| Some((name, s.as_ref()?))) {
        let m = entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        for l in s.content.iter().chain(s.style) {
            m.layer(l).unwrap_or_else(|err| panic!("{name}: {err:#}"));
        }
        assert!(!s.content.is_empty() && !s.style.is_empty(), "{name}: content and style layers");
        assert!(s.content_weight > 0.0, "{name}: content weight");
    }
}
