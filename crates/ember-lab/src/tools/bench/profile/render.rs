//! The profile as Markdown: per part, per kind and for the whole step, PyTorch's figures beside
//! Ember's when there is a torch profile.

use super::{PartTiming, Profile};
use crate::report::markdown::Table;
use crate::tools::bench::report::format_time;

/// The profile as Markdown: per layer, per kind and for the whole step, with PyTorch's figures and
/// the ratio beside Ember's when `torch` is given.
pub fn render_profile(ember: &Profile, torch: Option<&Profile>) -> String {
    let mut out = format!(
        "{}, batch {}, {} threads; medians of {} reps after {} warm-up reps. Ember: {}",
        ember.model, ember.batch_size, ember.threads, ember.reps, ember.warmup, ember.framework
    );
    if let Some(t) = torch {
        out += &format!("; PyTorch: {}", t.framework);
    }
    out += ".\n\n";
    out += &parts_table(ember, torch).render();
    out += "\nBy kind (sums over the layers of each kind):\n\n";
    out += &kinds_table(ember, torch).render();
    out += "\nThe whole step (one fixed batch, Adam):\n\n";
    out += &step_table(ember, torch).render();
    if let Some(assembly) = ember.batch_assembly_ms {
        out += &format!(
            "\nBuilding one augmented batch on the device (gather, crop, flip, normalise from `u8`): \
             {} (not part of the whole step above).\n",
            ms(assembly)
        );
    }
    if let Some(t) = torch.filter(|t| !t.profiler_top_ops.is_empty()) {
        out += "\nPyTorch's profiler, busiest ops by self CPU time (totals over its profiled steps):\n\n";
        let mut table = Table::new(["op", "self CPU", "calls"]);
        for op in &t.profiler_top_ops {
            table.row([
                format!("`{}`", op.name),
                ms(op.self_cpu_ms),
                op.calls.to_string(),
            ]);
        }
        out += &table.render();
    }
    out
}

/// A time given in milliseconds, in the report's units.
fn ms(value: f64) -> String {
    format_time(value / 1e3)
}

fn ratio(mine: f64, theirs: f64) -> String {
    format!("{:.2}", mine / theirs)
}

/// `header`, with PyTorch's columns appended when there is a torch profile.
fn table_with_torch(header: &[&str], torch_columns: &[&str], torch: Option<&Profile>) -> Table {
    let mut cells = header.to_vec();
    if torch.is_some() {
        cells.extend(torch_columns);
    }
    Table::new(cells)
}

/// One row per layer: its input shape and forward and backward times.
fn parts_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(
        &["part", "kind", "input", "Ember fwd", "Ember bwd"],
        &["torch fwd", "torch bwd", "Ember ÷ torch (fwd + bwd)"],
        torch,
    );
    for part in &ember.parts {
        let shape = part
            .input
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("×");
        let mut cells = vec![
            part.layer.clone(),
            part.kind.clone(),
            shape,
            ms(part.forward_ms),
            ms(part.backward_ms),
        ];
        if let Some(t) = torch.and_then(|t| t.parts.iter().find(|p| p.layer == part.layer)) {
            cells.extend([
                ms(t.forward_ms),
                ms(t.backward_ms),
                ratio(part.total_ms(), t.total_ms()),
            ]);
        }
        table.row(cells);
    }
    table
}

/// One row per layer kind (in order of first appearance), then all parts together.
fn kinds_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(
        &["kind", "Ember fwd + bwd", "share of Ember's parts"],
        &["torch fwd + bwd", "Ember ÷ torch"],
        torch,
    );
    // `None`: every part.
    let sum = |p: &Profile, kind: Option<&str>| {
        p.parts
            .iter()
            .filter(|x| kind.is_none_or(|k| x.kind == k))
            .map(PartTiming::total_ms)
            .sum::<f64>()
    };
    let mut kinds: Vec<Option<&str>> = Vec::new();
    for part in &ember.parts {
        if !kinds.contains(&Some(part.kind.as_str())) {
            kinds.push(Some(&part.kind));
        }
    }
    kinds.push(None);
    for kind in kinds {
        let mine = sum(ember, kind);
        let mut cells = vec![
            kind.unwrap_or("all parts").to_string(),
            ms(mine),
            format!("{:.0}%", 100.0 * mine / sum(ember, None)),
        ];
        if let Some(t) = torch {
            let theirs = sum(t, kind);
            cells.extend([ms(theirs), ratio(mine, theirs)]);
        }
        table.row(cells);
    }
    table
}

/// The whole step's phases, then images per second.
fn step_table(ember: &Profile, torch: Option<&Profile>) -> Table {
    let mut table = table_with_torch(&["phase", "Ember"], &["torch", "Ember ÷ torch"], torch);
    let phases = |p: &Profile| {
        [
            ("forward + loss", p.step.forward_ms),
            ("backward", p.step.backward_ms),
            ("update", p.step.update_ms),
            ("whole step", p.step.whole_ms),
        ]
    };
    for (i, (name, mine)) in phases(ember).into_iter().enumerate() {
        let mut cells = vec![name.to_string(), ms(mine)];
        if let Some(t) = torch {
            let theirs = phases(t)[i].1;
            cells.extend([ms(theirs), ratio(mine, theirs)]);
        }
        table.row(cells);
    }
    let mut cells = vec![
        "images/s".to_string(),
        format!("{:.1}", ember.step.images_per_s),
    ];
    if let Some(t) = torch {
        cells.extend([
            format!("{:.1}", t.step.images_per_s),
            format!(
                "{:.2} (Ember's share of torch's)",
                ember.step.images_per_s / t.step.images_per_s
            ),
        ]);
    }
    table.row(cells);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::bench::profile::StepTiming;

    fn part(layer: &str, kind: &str, forward_ms: f64, backward_ms: f64) -> PartTiming {
        PartTiming {
            layer: layer.into(),
            kind: kind.into(),
            input: vec![64, 3, 32, 32],
            output: vec![64, 32, 32, 32],
            forward_ms,
            backward_ms,
        }
    }

    fn profile(framework: &str, scale: f64, images_per_s: f64) -> Profile {
        Profile {
            model: "SmallCnn".into(),
            framework: framework.into(),
            threads: 2,
            batch_size: 64,
            reps: 10,
            warmup: 2,
            parts: vec![
                part("conv1", "conv", 1.0 * scale, 2.0 * scale),
                part("relu1", "relu", 0.5 * scale, 0.25 * scale),
                part("conv2", "conv", 0.5 * scale, 0.25 * scale),
            ],
            step: StepTiming {
                forward_ms: 2.0 * scale,
                backward_ms: 3.0 * scale,
                update_ms: 1.0 * scale,
                whole_ms: 6.0 * scale,
                images_per_s,
            },
            batch_assembly_ms: None,
            profiler_top_ops: vec![],
        }
    }

    #[test]
    fn kinds_sum_their_layers_and_ratios_divide_ember_by_torch() {
        let ember = profile("ember", 4.0, 100.0);
        let torch = profile("torch", 1.0, 400.0);
        let md = render_profile(&ember, Some(&torch));
        // conv: (1 + 2 + 0.5 + 0.25) × 4 = 15 ms of 18 ms in all.
        assert!(
            md.contains("| conv | 15.0 ms | 83% | 3.75 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| all parts | 18.0 ms | 100% | 4.50 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "| relu1 | relu | 64×3×32×32 | 2.00 ms | 1.00 ms | 0.50 ms | 0.25 ms | 4.00 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| whole step | 24.0 ms | 6.00 ms | 4.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| images/s | 100.0 | 400.0 | 0.25 (Ember's share of torch's) |\n"),
            "{md}"
        );
    }

    #[test]
    fn without_torch_only_embers_columns_are_drawn() {
        let md = render_profile(&profile("ember", 1.0, 50.0), None);
        assert!(
            md.contains("| kind | Ember fwd + bwd | share of Ember's parts |\n|---|---|---|\n"),
            "{md}"
        );
        assert!(md.contains("| relu | 0.75 ms | 17% |\n"), "{md}");
        assert!(!md.contains("torch"), "{md}");
    }
}
