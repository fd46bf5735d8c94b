//! The run's headline figures, and the "Current figures" table of BENCHMARKS.md they keep.
//!
//! Every bench prints its own tables. The figures that have a goal (or that a reader compares
//! day to day) are also recorded here, each with its baseline from the same run. At the end of
//! the run they are printed as one table, and when `AUTHLOG_BENCH_RECORD` names a file
//! (`bench/run.sh` sets it to BENCHMARKS.md) each one replaces the row of the same name in that
//! file's "Current figures" table, or is added to it. Rows no bench here measures (those from
//! `bench/compare.sh`, against an older build) are left as they are.

use std::fmt::Write as _;
use std::sync::Mutex;

use anyhow::Context as _;

/// The section whose first table holds the current figures.
const SECTION: &str = "## Current figures";

/// What a figure should reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    None,
    /// The figure, in its own unit, at least this.
    AtLeast(f64),
    /// The figure, in its own unit, at most this.
    AtMost(f64),
    /// The figure over its baseline at least this.
    RatioAtLeast(f64),
    /// The figure over its baseline at most this.
    RatioAtMost(f64),
}

/// One figure of the run.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The row's name, unit included ("POST /login (rps)"); rows are matched by it.
    pub name: String,
    pub value: f64,
    /// Written after the value and the goal's bound: "" or " ms".
    pub unit: &'static str,
    /// What it is compared with, measured in the same run: a label ("A", "at 1,000 events")
    /// and its value.
    pub baseline: Option<(&'static str, f64)>,
    pub goal: Goal,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            baseline: None,
            goal: Goal::None,
        }
    }

    pub fn against(mut self, label: &'static str, baseline: f64) -> Self {
        self.baseline = Some((label, baseline));
        self
    }

    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = goal;
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline.map(|(_, baseline)| self.value / baseline)
    }

    /// Whether the goal is met; `None` without a goal (or a ratio goal without a baseline).
    fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::None => None,
            Goal::AtLeast(bound) => Some(self.value >= bound),
            Goal::AtMost(bound) => Some(self.value <= bound),
            Goal::RatioAtLeast(bound) => self.ratio().map(|r| r >= bound),
            Goal::RatioAtMost(bound) => self.ratio().map(|r| r <= bound),
        }
    }

    /// The figure as a row of the current figures table.
    fn row(&self, measured: &str) -> String {
        let baseline = match self.baseline {
            Some((label, value)) => format!("{label}: {}{}", number(value), self.unit),
            None => String::new(),
        };
        let ratio = self.ratio().map(|r| format!("{r:.2}×")).unwrap_or_default();
        let goal = match self.goal {
            Goal::None => String::new(),
            Goal::AtLeast(bound) => format!("≥ {}{}", round(bound), self.unit),
            Goal::AtMost(bound) => format!("≤ {}{}", round(bound), self.unit),
            Goal::RatioAtLeast(bound) => format!("≥ {bound}×"),
            Goal::RatioAtMost(bound) => format!("≤ {bound}×"),
        };
        let goal = match self.met() {
            Some(true) => format!("{goal} ✓"),
            Some(false) => format!("{goal} ✗"),
            None => goal,
        };
        let value = format!("{}{}", number(self.value), self.unit);
        let cells = [
            self.name.as_str(),
            &value,
            &baseline,
            &ratio,
            &goal,
            measured,
        ];
        // An empty cell as the tables write it by hand: `| |`.
        let cells: Vec<String> = cells
            .iter()
            .map(|cell| match cell.is_empty() {
                true => " ".to_owned(),
                false => format!(" {cell} "),
            })
            .collect();
        format!("|{}|", cells.join("|"))
    }
}

/// A figure as the tables write it: grouped thousands from 1,000, one decimal from 10, else two.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.abs() < 10.0 {
        return format!("{value:.2}");
    }
    if value.abs() < 1_000.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0.0 {
        grouped.insert(0, '-');
    }
    grouped
}

/// A goal's bound: a whole number as [`number`] groups it, else as written.
fn round(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() >= 1_000.0 {
        number(bound)
    } else {
        bound.to_string()
    }
}

static FIGURES: Mutex<Vec<Figure>> = Mutex::new(Vec::new());

/// Keeps `figure` for the end of the run.
pub fn record(figure: Figure) {
    FIGURES.lock().unwrap().push(figure);
}

/// Prints the run's figures, and writes them into the file `AUTHLOG_BENCH_RECORD` names.
pub fn finish(command: &str) -> anyhow::Result<()> {
    let figures = std::mem::take(&mut *FIGURES.lock().unwrap());
    if figures.is_empty() {
        return Ok(());
    }
    let date = authlog_application::ports::Clock::now(&authlog_crypto::SystemClock).date();
    let measured = format!("{date}, `{command}`");
    println!("\n### The figures of this run, each with its baseline from the same run\n");
    println!("| figure | value | baseline (same run) | ratio | goal | measured |");
    println!("|---|---|---|---|---|---|");
    for figure in &figures {
        println!("{}", figure.row(&measured));
    }
    let Some(path) = std::env::var_os("AUTHLOG_BENCH_RECORD").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.to_string_lossy()))?;
    let updated = update(&text, &figures, &measured)
        .with_context(|| format!("updating {}", path.to_string_lossy()))?;
    std::fs::write(&path, updated)
        .with_context(|| format!("writing {}", path.to_string_lossy()))?;
    eprintln!(
        "bench: {} figure(s) written to the current figures table of {}",
        figures.len(),
        path.to_string_lossy()
    );
    Ok(())
}

/// `text` with each figure's row in the current figures table replaced (matched by name) or,
/// for a figure the table lacks, added at its end.
fn update(text: &str, figures: &[Figure], measured: &str) -> anyhow::Result<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let section = lines
        .iter()
        .position(|l| l.trim_end() == SECTION)
        .with_context(|| format!("no {SECTION:?} section"))?;
    let header = (section..lines.len())
        .find(|&i| lines[i].starts_with('|'))
        .context("the section has no table")?;
    let mut end = header;
    while end < lines.len() && lines[end].starts_with('|') {
        end += 1;
    }
    for figure in figures {
        let row = figure.row(measured);
        let existing = (header + 2..end).find(|&i| first_cell(&lines[i]) == figure.name);
        match existing {
            Some(i) => lines[i] = row,
            None => {
                lines.insert(end, row);
                end += 1;
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 256);
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

fn first_cell(row: &str) -> &str {
    row.trim_start_matches('|')
        .split('|')
        .next()
        .unwrap_or_default()
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Benchmarks\n\n## Current figures\n\nSome words.\n\n\
        | figure | value | baseline (same run) | ratio | goal | measured |\n\
        |---|---|---|---|---|---|\n\
        | POST /login (rps) | 1.0 | | | | old |\n\
        | from compare.sh | 2.0 | | | | old |\n\
        \n## Journal\n\n| other | table |\n|---|---|\n";

    #[test]
    fn a_measured_figure_replaces_its_row_and_a_new_one_is_added_at_the_end() {
        let figures = [
            Figure::new("POST /login (rps)", 121.04, "")
                .against("B", 155.7)
                .goal(Goal::RatioAtLeast(0.85)),
            Figure::new("audit page (ms)", 2.944, " ms").goal(Goal::AtMost(5.0)),
        ];
        let updated = update(FILE, &figures, "today").unwrap();
        assert!(updated.contains(
            "| POST /login (rps) | 121.0 | B: 155.7 | 0.78× | ≥ 0.85× ✗ | today |\n\
             | from compare.sh | 2.0 | | | | old |\n\
             | audit page (ms) | 2.94 ms | | | ≤ 5 ms ✓ | today |\n\n## Journal"
        ));
        assert!(updated.ends_with("| other | table |\n|---|---|\n"));
    }

    #[test]
    fn numbers_read_as_the_tables_write_them() {
        assert_eq!(number(25_526.4), "25,526");
        assert_eq!(number(1_000_000.0), "1,000,000");
        assert_eq!(number(121.04), "121.0");
        assert_eq!(number(2.944), "2.94");
        assert_eq!(number(5.0), "5.00");
    }
}
