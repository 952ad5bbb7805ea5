//! One unit at high resolution: a 256-pixel render over 1024 steps, with the image kept at
//! 32, 128 and 512 steps, so that what longer optimisation adds can be seen.
//!
//! ```text
//! cargo run --release -p chapter-03-actmax --bin hires
//! cargo run --release -p chapter-03-actmax --bin hires -- --unit stage4:30 --steps 2048
//! ```
//! Its figures are the book's: `figure-bins` in the chapter's Cargo.toml, which ci/figures reads.
use anyhow::Result;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{GridSpec, Panel};
use vision_interp::models::parse_unit;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, RenderConfig};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "One unit at 256 px over 1024 steps, with the images along the way")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The unit, `layer:unit` [default: the model's showcase unit]
    #[arg(long)]
    unit: Option<String>,
    /// Side of the image in pixels [default: 256; 96 with --quick]
    #[arg(long, value_parser = vision_interp::flag::pixels)]
    size: Option<usize>,
    /// Optimisation steps [default: 1024; 64 with --quick]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, "chapter-03-actmax")?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let unit = parse_unit(m, args.unit.as_deref().unwrap_or(m.card().roles.showcase_unit))?;
    let size = s.budget(args.size, 96, 256);
    let steps = s.budget(args.steps, 64, 1024);
    // ANCHOR: hires
    let thresholds: Vec<usize> = [steps / 32, steps / 8, steps / 2].into_iter().filter(|&t| t > 0).collect();
    let cfg = RenderConfig { steps, thresholds, min_input: Some(m.input_size()), ..Default::default() };
    let obj = objective::channel(m.pre_activation(&unit.layer).unwrap_or(&unit.layer), unit.unit, None);
    let param = ImageParam::new(&ImageSpec::square(size), &mut s.rng, &s.device)?;
    let out = render(m, &obj, &param, &cfg, &mut s.rng)?;
    // ANCHOR_END: hires
    println!("{}: loss {:.3} → {:.3}", obj.name, out.losses[0], out.losses.last().expect("steps > 0"));
    // The activation at each kept step (the loss, negated): `hires_act_32nd` at step/32, then
    // `hires_act_8th`, `hires_act_half` and `hires_act_end`.
    let marks = [(steps / 32, "32nd"), (steps / 8, "8th"), (steps / 2, "half"), (steps, "end")];
    let mut row = Vec::new();
    for (step, images) in &out.images {
        let act = -out.losses[step - 1];
        if let Some((_, name)) = marks.iter().find(|(t, _)| t == step) {
            s.record(&format!("hires_act_{name}"), act);
        }
        row.push(Panel::image(&images.get(0)?, format!("step {step}: {act:.1}"))?);
    }
    let big = row.pop().expect("the last step is kept");
    let title = format!("{unit}, {size} px, {steps} steps");
    let spec = GridSpec::new(size as u32).title(&title).photo();
    s.save_grid(&[vec![big]], &spec, (m.name(), &unit.to_string().replace(':', "-"), "hires"))?;
    let spec = GridSpec::new(170).title(&format!("{unit} along the way")).photo();
    s.save_grid(&[row], &spec, (m.name(), &unit.to_string().replace(':', "-"), "hires-steps"))?;
    s.finish()
}
