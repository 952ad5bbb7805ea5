//! ImageNet-1k class names, in the standard order of the 1000 logits.

/// The 1000 class names (WordNet synonyms, comma-separated, as in the ILSVRC label list).
pub fn classes() -> Vec<String> {
    include_str!("../../../assets/imagenet_classes.txt").lines().map(str::to_owned).collect()
}

/// The first synonym of a class name: `"tabby, tabby cat"` → `"tabby"`.
pub fn short_name(name: &str) -> &str {
    name.split(',').next().unwrap_or(name).trim()
}
