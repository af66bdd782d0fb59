//! Prometheus text exposition for the plain counters and gauges every stage keeps.

use std::fmt::Write as _;

/// Appends one unlabelled sample with its `# HELP` and `# TYPE` lines.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
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
}
