//! Prometheus text exposition for the plain counters and gauges every stage keeps.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Appends one unlabelled sample with its `# HELP` and `# TYPE` lines.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// [`write_metric`] for each `(name, kind, help, value)` row of a stage's table of atomic
/// counters and gauges, each read relaxed.
pub fn write_atomics(out: &mut String, rows: &[(&str, &str, &str, &AtomicU64)]) {
    for (name, kind, help, v) in rows {
        write_metric(out, name, kind, help, v.load(Ordering::Relaxed));
    }
}

/// Appends one family of samples that differ by one label (`name{label="value"} n`), with
/// its `# HELP` and `# TYPE` lines.
pub fn write_labelled<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value, n) in samples {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exposition_format() {
        let mut out = String::new();
        super::write_metric(&mut out, "weir_x_total", "counter", "Xs seen.", 7);
        assert_eq!(
            out,
            "# HELP weir_x_total Xs seen.\n# TYPE weir_x_total counter\nweir_x_total 7\n"
        );
    }

    #[test]
    fn labelled_families() {
        let mut out = String::new();
        super::write_labelled(
            &mut out,
            "weir_y_total",
            "counter",
            "Ys by why.",
            "reason",
            [("a", 1), ("b", 0)],
        );
        assert_eq!(
            out,
            "# HELP weir_y_total Ys by why.\n# TYPE weir_y_total counter\n\
             weir_y_total{reason=\"a\"} 1\nweir_y_total{reason=\"b\"} 0\n"
        );
    }

    #[test]
    fn atomic_tables_write_each_row_in_order() {
        use std::sync::atomic::AtomicU64;
        let (a, b) = (AtomicU64::new(3), AtomicU64::new(0));
        let mut out = String::new();
        super::write_atomics(
            &mut out,
            &[
                ("weir_a_total", "counter", "As.", &a),
                ("weir_b", "gauge", "Bs now.", &b),
            ],
        );
        assert_eq!(
            out,
            "# HELP weir_a_total As.\n# TYPE weir_a_total counter\nweir_a_total 3\n\
             # HELP weir_b Bs now.\n# TYPE weir_b gauge\nweir_b 0\n"
        );
    }
}
