//! The demo's terminal output, shared by both modes (user-space and `--tun`): a progress bar
//! on stderr, the plain-text summary table, and the formatting of rates and durations. Pure
//! presentation: nothing here knows about nodes or networks.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws closer together than this are skipped (about 10 per second).
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Width of the bar itself, in characters.
const BAR_WIDTH: usize = 30;

/// A one-line progress bar on stderr, redrawn in place (`\r`) when stderr is a terminal,
/// otherwise printed at most every 10% as plain lines; nothing at all when `quiet`.
pub(crate) struct Progress {
    label: String,
    total: u64,
    done: u64,
    quiet: bool,
    terminal: bool,
    started: Instant,
    last_redraw: Option<Instant>,
    /// Plain-line mode: the last tenth printed (0..=10).
    last_tenth: u64,
    finished: bool,
}

impl Progress {
    pub(crate) fn new(label: &str, total: u64, quiet: bool) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_redraw: None,
            last_tenth: 0,
            finished: false,
        }
    }

    /// Records `done` bytes (or units) out of the total; cheap, redraws at most ~10 times/s.
    pub(crate) fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        if self.quiet || self.finished {
            return;
        }
        if self.terminal {
            let now = Instant::now();
            if self
                .last_redraw
                .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
            {
                return;
            }
            self.last_redraw = Some(now);
            let line = self.line();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}");
            let _ = err.flush();
        } else {
            let tenth = tenths(self.done, self.total);
            if tenth > self.last_tenth && tenth < 10 {
                self.last_tenth = tenth;
                eprintln!("{}", self.line());
            }
        }
    }

    /// Ends the bar with a final line: the full bar followed by `summary`.
    pub(crate) fn finish(&mut self, summary: &str) {
        if self.quiet || self.finished {
            self.finished = true;
            return;
        }
        self.finished = true;
        self.done = self.total;
        let line = format!("{} {summary}", self.bar());
        if self.terminal {
            // Clear the rest of a possibly longer previous line.
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    fn bar(&self) -> String {
        let filled =
            usize::try_from(self.done.saturating_mul(BAR_WIDTH as u64) / self.total.max(1))
                .unwrap_or(BAR_WIDTH)
                .min(BAR_WIDTH);
        format!(
            "{} [{}{}]",
            self.label,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled)
        )
    }

    fn line(&self) -> String {
        let percent = self.done.saturating_mul(100) / self.total.max(1);
        format!(
            "{} {percent:>3}% {}",
            self.bar(),
            format_rate(self.done, self.started.elapsed())
        )
    }
}

/// Which tenth of `total` has `done` reached (0..=10).
fn tenths(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 10;
    }
    u64::try_from(u128::from(done) * 10 / u128::from(total)).unwrap_or(10)
}

/// A plain-text table (header row, a rule, rows), columns padded to the widest cell,
/// numbers right-aligned (a cell that parses as a number after stripping a unit suffix).
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells render empty, extra cells widen the table.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The whole table, ending with '\n'. Columns are separated by " | ".
    pub(crate) fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for cells in std::iter::once(&self.headers).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = render_line(&self.headers, &widths, false);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("-+-"));
        out.push('\n');
        for cells in &self.rows {
            out.push_str(&render_line(cells, &widths, true));
        }
        out
    }
}

fn render_line(cells: &[String], widths: &[usize], align_numbers: bool) -> String {
    let padded: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, width)| {
            let cell = cells.get(i).map_or("", String::as_str);
            if align_numbers && is_numeric(cell) {
                format!("{cell:>width$}")
            } else {
                format!("{cell:<width$}")
            }
        })
        .collect();
    let mut line = padded.join(" | ").trim_end().to_owned();
    line.push('\n');
    line
}

/// A number, possibly followed by a unit ("905 Mbit/s", "1.23 s", "412 µs", "42", "3%").
fn is_numeric(cell: &str) -> bool {
    let cell = cell.trim();
    let number_end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(cell.len());
    let (number, unit) = cell.split_at(number_end);
    let unit = unit.trim_start();
    number.parse::<f64>().is_ok() && !unit.contains(' ')
}

/// Bits per second with a decimal prefix: "812 Mbit/s", "3.41 Gbit/s", "950 kbit/s".
pub(crate) fn format_rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return "- bit/s".to_owned();
    }
    // Precision loss above 2^53 bytes is irrelevant for a display.
    #[allow(clippy::cast_precision_loss)]
    let bits_per_second = bytes as f64 * 8.0 / seconds;
    let (value, unit) = if bits_per_second >= 1e9 {
        (bits_per_second / 1e9, "Gbit/s")
    } else if bits_per_second >= 1e6 {
        (bits_per_second / 1e6, "Mbit/s")
    } else if bits_per_second >= 1e3 {
        (bits_per_second / 1e3, "kbit/s")
    } else {
        (bits_per_second, "bit/s")
    };
    format!("{} {unit}", three_digits(value))
}

/// "1.23 s", "850 ms", "412 µs" (three significant digits, the largest unit that is >= 1).
pub(crate) fn format_duration(d: Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds >= 1.0 {
        format!("{} s", three_digits(seconds))
    } else if seconds >= 1e-3 {
        format!("{} ms", three_digits(seconds * 1e3))
    } else {
        format!("{} µs", three_digits(seconds * 1e6))
    }
}

/// Bytes with a binary prefix: "64.0 MiB", "512 B".
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    if value < 1024.0 {
        return format!("{bytes} B");
    }
    let mut unit = UNITS[0];
    for candidate in UNITS {
        value /= 1024.0;
        unit = candidate;
        if value < 1024.0 {
            break;
        }
    }
    format!("{value:.1} {unit}")
}

/// Three significant digits without a trailing exponent: 812, 81.2, 8.12.
fn three_digits(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_the_largest_unit() {
        assert_eq!(format_duration(Duration::from_millis(1230)), "1.23 s");
        assert_eq!(format_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(format_duration(Duration::from_micros(412)), "412 µs");
        assert_eq!(format_duration(Duration::ZERO), "0.00 µs");
    }

    #[test]
    fn rates_are_bits_per_second() {
        assert_eq!(
            format_rate(101_500_000, Duration::from_secs(1)),
            "812 Mbit/s"
        );
        assert_eq!(format_rate(500, Duration::from_secs(1)), "4.00 kbit/s");
        assert_eq!(format_rate(1, Duration::ZERO), "- bit/s");
    }

    #[test]
    fn bytes_use_binary_prefixes() {
        assert_eq!(format_bytes(64 << 20), "64.0 MiB");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn table_pads_columns_and_right_aligns_numbers() {
        let mut table = Table::new(&["measurement", "value", "detail"]);
        table.row(vec!["a".into(), "5 ms".into(), "x".into()]);
        table.row(vec!["longer".into(), "905 Mbit/s".into(), "yes".into()]);
        table.row(vec!["text".into(), "ok".into(), String::new()]);
        let rendered = table.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[0], "measurement | value      | detail");
        assert_eq!(lines[1], "------------+------------+-------");
        assert_eq!(lines[2], "a           |       5 ms | x");
        assert_eq!(lines[3], "longer      | 905 Mbit/s | yes");
        assert_eq!(lines[4], "text        | ok         |");
        assert!(rendered.ends_with('\n'));
    }

    #[test]
    fn numeric_cells_are_recognised() {
        assert!(is_numeric("42"));
        assert!(is_numeric("1.23 s"));
        assert!(is_numeric("412 µs"));
        assert!(!is_numeric("sha256 match"));
        assert!(!is_numeric("64.0 MiB, sha256 match"));
        assert!(!is_numeric(""));
    }

    #[test]
    fn plain_progress_counts_tenths() {
        assert_eq!(tenths(0, 100), 0);
        assert_eq!(tenths(55, 100), 5);
        assert_eq!(tenths(100, 100), 10);
        assert_eq!(tenths(1, 0), 10);
    }
}
