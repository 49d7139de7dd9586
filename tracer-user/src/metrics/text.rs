//! The Prometheus text exposition format, version 0.0.4: one family at a
//! time (`# HELP`, `# TYPE`, then its samples, never interleaved with
//! another family's), label values and help text escaped as the format
//! says. <https://prometheus.io/docs/instrumenting/exposition_formats/>

use std::fmt::Write;

/// The `Content-Type` of what [`Exposition`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A page of metrics being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts family `name` (a valid metric name; counters end in
    /// `_total`) with its help text; add its samples on the result.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(valid_name(name, true), "bad metric name {name:?}");
        debug_assert!(
            kind != Kind::Counter || name.ends_with("_total"),
            "counter {name:?} must end in _total"
        );
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.as_str()
        );
        Family {
            out: &mut self.out,
            name,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The family being written: its samples.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// One sample: `name{label="value",...} value`. Label names are
    /// static and valid; values may be anything (escaped here).
    pub fn sample(&mut self, labels: &[(&'static str, &str)], value: u64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k, false), "bad label name {k:?}");
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }
}

/// Label values: backslash, double quote and line feed are escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str(r"\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str(r"\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text: backslash and line feed are escaped (quotes are not).
pub fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names (`colon`), without the
/// colons for label names (and not starting with `__`, reserved).
pub fn valid_name(n: &str, colon: bool) -> bool {
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    let mut chars = n.chars();
    chars.next().is_some_and(ok_first) && chars.all(ok) && (colon || !n.starts_with("__"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_labels() {
        let mut e = Exposition::new();
        e.family("vt_events_total", Kind::Counter, "Events seen.")
            .sample(&[("node", "l1"), ("kind", "vfio_map_dma")], 3)
            .sample(
                &[("node", "l2"), ("kind", "viommu_req")],
                18_446_744_073_709_551_615,
            );
        e.family("vt_up", Kind::Gauge, "Up.").sample(&[], 1);
        e.family("vt_empty", Kind::Gauge, "No samples yet.");
        assert_eq!(
            e.finish(),
            "# HELP vt_events_total Events seen.\n\
             # TYPE vt_events_total counter\n\
             vt_events_total{node=\"l1\",kind=\"vfio_map_dma\"} 3\n\
             vt_events_total{node=\"l2\",kind=\"viommu_req\"} 18446744073709551615\n\
             # HELP vt_up Up.\n\
             # TYPE vt_up gauge\n\
             vt_up 1\n\
             # HELP vt_empty No samples yet.\n\
             # TYPE vt_empty gauge\n"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line1\nline2"), r"line1\nline2");
        assert_eq!(escape_label("hôte-β {x=1}"), "hôte-β {x=1}");
        assert_eq!(escape_help("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
        let mut e = Exposition::new();
        e.family("vt_x", Kind::Gauge, "a\\b\nc")
            .sample(&[("node", "we\"ird\\\nname")], 0);
        let text = e.finish();
        assert_eq!(text.lines().count(), 3, "no raw line feed survives: {text}");
        assert!(text.contains("# HELP vt_x a\\\\b\\nc\n"), "{text}");
        assert!(
            text.contains("vt_x{node=\"we\\\"ird\\\\\\nname\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn names() {
        for good in ["vfio_trace_events_total", "a:b_c", "_x", "X9"] {
            assert!(valid_name(good, true), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a{"] {
            assert!(!valid_name(bad, true), "{bad}");
        }
        assert!(valid_name("node", false));
        assert!(!valid_name("a:b", false));
        assert!(!valid_name("__name__", false));
    }
}
