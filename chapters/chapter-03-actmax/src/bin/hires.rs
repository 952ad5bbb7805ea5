//! One unit at high resolution: a 256-pixel render over 1024 steps, with the image kept at
//! 32, 128 and 512 steps, so that what longer optimisation adds can be seen.
//!
//! ```text
//! cargo run --release -p chapter-03-actmax --bin hires
//! cargo run --release -p chapter-03-actmax --bin hires -- --unit stage4:30 --steps 2048
//! ```
//! ci/figures runs this binary too.
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
    #[arg(long)]
    size: Option<usize>,
    /// Optimisation steps [default: 1024; 64 with --quick]
    #[arg(long)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, "chapter-03-actmax")?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let unit = parse_unit(m, args.unit.as_deref().unwrap_or(m.card().roles.showcase_unit))?;
    let size = args.size.unwrap_or(if s.quick { 96 } else { 256 });
    let steps = args.steps.unwrap_or(if s.quick { 64 } else { 1024 });
    // ANCHOR: hires
    let thresholds: Vec<usize> = [steps / 32, steps / 8, steps / 2].into_iter().filter(|&t| t > 0).collect();
    let cfg = RenderConfig { steps, thresholds, min_input: Some(m.input_size()), ..Default::default() };
    let obj = objective::channel(m.pre_activation(&unit.layer).unwrap_or(&unit.layer), unit.unit, None);
    let param = ImageParam::new(&ImageSpec::square(size), &mut s.rng, &s.device)?;
    let out = render(m, &obj, &param, &cfg, &mut s.rng)?;
    // ANCHOR_END: hires
    println!("{}: loss {:.3} → {:.3}", obj.name, out.losses[0], out.losses.last().expect("steps > 0"));
    let mut row = Vec::new();
    for (step, images) in &out.images {
        let loss = out.losses[step - 1];
        row.push(Panel::image(&images.get(0)?, format!("step {step}: {:.1}", -loss))?);
    }
    let big = row.pop().expect("the last step is kept");
    let title = format!("{unit}, {size} px, {steps} steps");
    let spec = GridSpec::new(size as u32).title(&title).photo();
    s.save_grid(&[vec![big]], &spec, (m.name(), &unit.to_string().replace(':', "-"), "hires"))?;
    let spec = GridSpec::new(170).title(&format!("{unit} along the way")).photo();
    s.save_grid(&[row], &spec, (m.name(), &unit.to_string().replace(':', "-"), "hires-steps"))?;
    s.finish()
}
