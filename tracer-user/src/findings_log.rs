//! `--findings FILE`: each finding as one JSON line, appended and flushed
//! as it is raised, for log shippers that tail the file. A line is the
//! check report's finding object (`rule`, `name`, `severity`, `message`,
//! `node`, `device`, `address`, `evidence`,
//! `possibly_caused_by_missing_data`) plus `time` (RFC 3339, UTC, when
//! vfio-trace raised it), `time_ns` (the same in ns since the epoch) and
//! `source` (`live`: raised while tracing; `report`: from a check of
//! files).

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tracer_core::check::ReportFinding;

pub struct FindingsLog {
    path: PathBuf,
    file: File,
}

impl FindingsLog {
    /// Opens `path` for appending (created if missing, mode 0644 less the
    /// umask); a clear error when it cannot be.
    pub fn open(path: &Path) -> Result<FindingsLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "--findings: could not open {} for appending",
                    path.display()
                )
            })?;
        Ok(FindingsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one finding as a line, in one write, and returns once the
    /// kernel has it (no buffering in between).
    pub fn append(&mut self, f: &ReportFinding, source: &str, now: SystemTime) -> Result<()> {
        let mut line = serde_json::to_vec(&line(f, source, now))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing a finding to {}", self.path.display()))
    }
}

/// The JSON object of one line.
pub fn line(f: &ReportFinding, source: &str, now: SystemTime) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        let ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        m.insert(
            "time".into(),
            Value::String(humantime::format_rfc3339_nanos(now).to_string()),
        );
        m.insert("time_ns".into(), Value::from(ns));
        m.insert("source".into(), Value::String(source.into()));
        m.entry("node").or_insert(Value::Null);
    }
    v
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracer_core::engine::Severity;

    use super::*;

    fn finding() -> ReportFinding {
        ReportFinding {
            rule: "VT008".into(),
            name: "map-failed".into(),
            severity: Severity::Warning,
            message: "VFIO MAP_DMA failed\nwith \"EINVAL\"".into(),
            node: Some("l1".into()),
            device: None,
            address: Some((0x1000, 0x1fff)),
            evidence: vec![json!({"kind": "vfio_map_dma", "errno": 22})],
            possibly_caused_by_missing_data: false,
            evidence_text: vec!["not serialized".into()],
        }
    }

    #[test]
    fn one_line_per_finding_appended() {
        let dir = std::env::temp_dir().join(format!("vt-findings-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("findings.jsonl");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let t = UNIX_EPOCH + Duration::from_nanos(1_764_770_000_123_456_789);
        let mut log = FindingsLog::open(&path).unwrap();
        log.append(&finding(), "live", t).unwrap();
        log.append(&finding(), "live", t).unwrap();
        // Flushed per line: readable at once, by another reader.
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "{\"earlier\":true}");
        let v: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["rule"], "VT008");
        assert_eq!(v["name"], "map-failed");
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["node"], "l1");
        assert_eq!(v["address"], json!([4096, 8191]));
        assert_eq!(v["evidence"][0]["errno"], 22);
        assert_eq!(v["message"], "VFIO MAP_DMA failed\nwith \"EINVAL\"");
        assert_eq!(v["time"], "2025-12-03T13:53:20.123456789Z");
        assert_eq!(v["time_ns"], 1_764_770_000_123_456_789u64);
        assert_eq!(v["source"], "live");
        assert!(v.get("evidence_text").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_a_clear_error() {
        let e = FindingsLog::open(Path::new("/nonexistent-dir/x/findings.jsonl"))
            .err()
            .expect("no such directory");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--findings: could not open /nonexistent-dir/x/findings.jsonl"),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
    }
}
