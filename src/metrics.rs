//! CloudWatch embedded metric format (FORMAT.md, "CloudWatch embedded metric format"): the
//! function's metrics as single-line JSON documents that CloudWatch Logs turns into metrics, with
//! no API call and no permission beyond writing logs.
//!
//! A document is `{"_aws": {"Timestamp": <ms>, "CloudWatchMetrics": [{"Namespace", "Dimensions",
//! "Metrics": [{"Name", "Unit"}]}]}, <dimension>: <value>, ..., <metric>: <number>, ...}`, at most
//! [`MAX_METRICS_PER_DOCUMENT`] metrics each (more are split over several documents). Metrics of
//! one log type carry the dimension set `[LogType]`, and `[LogType, Cluster]` too when the cluster
//! is known and `METRICS_CLUSTER_DIMENSION` is on; metrics of a whole run carry the empty set
//! (no dimension). Other facts (account, region, key) ride along as plain fields for log queries.
//!
//! Where documents go is the caller's choice ([`Out`]): stdout inside Lambda (Lambda's log agent
//! sends stdout to CloudWatch Logs as it is), stderr for `invoke` and `backfill` (stdout is the
//! command's answer there), or memory for tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::settings::Settings;

/// EMF's limit on metrics a document (FORMAT.md).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// EMF's limit on dimensions a dimension set (FORMAT.md).
pub const MAX_DIMENSIONS_PER_SET: usize = 30;

/// Most bytes of a dimension value written (CloudWatch takes up to 1,024 characters).
const MAX_DIMENSION_VALUE_BYTES: usize = crate::mask::EXCERPT_BYTES;

/// The dimension naming the log type.
pub const LOG_TYPE: &str = "LogType";
/// The dimension naming the cluster.
pub const CLUSTER: &str = "Cluster";

/// The CloudWatch units the function uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: i64,
}

impl Metric {
    pub fn count(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Count,
            value: saturate(value),
        }
    }

    pub fn bytes(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Bytes,
            value: saturate(value),
        }
    }

    pub fn seconds(name: &'static str, value: i64) -> Metric {
        Metric {
            name,
            unit: Unit::Seconds,
            value,
        }
    }

    pub fn milliseconds(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Milliseconds,
            value: saturate(value),
        }
    }
}

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What one document says: about one log type (and cluster), or about a whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The `LogType` dimension; `None` for run-wide metrics (no dimension).
    pub log_type: Option<String>,
    /// The `Cluster` dimension, used beside `LogType` when per-cluster dimensions are on.
    pub cluster: Option<String>,
    /// Plain fields for log queries (not dimensions), e.g. `key`, `account_id`.
    pub properties: Vec<(&'static str, Value)>,
    pub metrics: Vec<Metric>,
}

/// Where documents are written.
#[derive(Debug, Clone)]
pub enum Out {
    Stdout,
    Stderr,
    /// Kept in memory, one string a document (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

#[derive(Debug)]
struct Config {
    namespace: String,
    per_cluster: bool,
    out: Out,
}

/// Writes metric documents, or nothing when metrics are off. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    config: Option<Arc<Config>>,
}

impl Metrics {
    /// No metrics.
    pub fn off() -> Metrics {
        Metrics::default()
    }

    pub fn new(namespace: impl Into<String>, per_cluster: bool, out: Out) -> Metrics {
        Metrics {
            config: Some(Arc::new(Config {
                namespace: namespace.into(),
                per_cluster,
                out,
            })),
        }
    }

    /// As `METRICS`, `METRICS_NAMESPACE` and `METRICS_CLUSTER_DIMENSION` say.
    pub fn from_settings(settings: &Settings, out: Out) -> Metrics {
        if !settings.metrics {
            return Metrics::off();
        }
        Metrics::new(
            settings.metrics_namespace.clone(),
            settings.metrics_cluster_dimension,
            out,
        )
    }

    /// Metrics kept in memory, and the documents written so far (tests).
    pub fn in_memory(namespace: &str, per_cluster: bool) -> (Metrics, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (
            Metrics::new(namespace, per_cluster, Out::Memory(lines.clone())),
            lines,
        )
    }

    pub fn is_on(&self) -> bool {
        self.config.is_some()
    }

    /// Writes `document` (as one line or several, [`MAX_METRICS_PER_DOCUMENT`] metrics each),
    /// time-stamped now.
    pub fn emit(&self, document: &Document) {
        self.emit_at(document, crate::time::now_ms());
    }

    /// [`Metrics::emit`] with a given timestamp (milliseconds since the epoch).
    pub fn emit_at(&self, document: &Document, timestamp_ms: i64) {
        let Some(config) = &self.config else {
            return;
        };
        for line in render(
            &config.namespace,
            config.per_cluster,
            document,
            timestamp_ms,
        ) {
            match &config.out {
                Out::Stdout => write_line(&mut std::io::stdout().lock(), &line),
                Out::Stderr => write_line(&mut std::io::stderr().lock(), &line),
                Out::Memory(lines) => {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            }
        }
    }
}

/// One line, written whole; a closed stream loses the metric, never the work.
fn write_line(out: &mut impl Write, line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = out.write_all(&bytes);
    let _ = out.flush();
}

/// The documents for `document`: one per [`MAX_METRICS_PER_DOCUMENT`] metrics, none without
/// metrics.
pub fn render(
    namespace: &str,
    per_cluster: bool,
    document: &Document,
    timestamp_ms: i64,
) -> Vec<String> {
    let mut dimension_values: Vec<(&str, &str)> = Vec::new();
    let mut sets: Vec<Vec<&str>> = Vec::new();
    match &document.log_type {
        None => sets.push(Vec::new()),
        Some(log_type) => {
            dimension_values.push((LOG_TYPE, log_type));
            sets.push(vec![LOG_TYPE]);
            if let Some(cluster) = document.cluster.as_deref().filter(|_| per_cluster) {
                dimension_values.push((CLUSTER, cluster));
                sets.push(vec![LOG_TYPE, CLUSTER]);
            }
        }
    }
    debug_assert!(sets.iter().all(|s| s.len() <= MAX_DIMENSIONS_PER_SET));
    document
        .metrics
        .chunks(MAX_METRICS_PER_DOCUMENT)
        .map(|metrics| {
            let definitions: Vec<Value> = metrics
                .iter()
                .map(|m| serde_json::json!({"Name": m.name, "Unit": m.unit.as_str()}))
                .collect();
            let mut root = Map::new();
            root.insert(
                "_aws".into(),
                serde_json::json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": sets,
                        "Metrics": definitions,
                    }],
                }),
            );
            // Dimension values and fields come from object keys: masked and bounded like any
            // text from an input (a dimension value is at most 1,024 characters in CloudWatch).
            for (name, value) in &dimension_values {
                let value = crate::mask::clean(value, MAX_DIMENSION_VALUE_BYTES).to_string();
                root.insert((*name).into(), Value::from(value));
            }
            for (name, value) in &document.properties {
                let mut value = value.clone();
                crate::mask::clean_json(&mut value, crate::mask::FIELD_BYTES);
                root.insert((*name).into(), value);
            }
            for metric in metrics {
                root.insert(metric.name.into(), Value::from(metric.value));
            }
            Value::Object(root).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "{line}");
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_log_type_document_names_its_dimensions_and_units_and_puts_values_at_the_top() {
        let doc = Document {
            log_type: Some("connectionlog".into()),
            cluster: Some("prod".into()),
            properties: vec![("key", json!("a/b.gz"))],
            metrics: vec![
                Metric::count("Records", 3),
                Metric::bytes("InputBytes", 1200),
            ],
        };
        let lines = render("Ns", true, &doc, 1_700_000_000_123);
        assert_eq!(lines.len(), 1);
        let v = parse(&lines[0]);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123i64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(
            directive["Dimensions"],
            json!([["LogType"], ["LogType", "Cluster"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Records", "Unit": "Count"}, {"Name": "InputBytes", "Unit": "Bytes"}])
        );
        assert_eq!(v["LogType"], "connectionlog");
        assert_eq!(v["Cluster"], "prod");
        assert_eq!(v["Records"], 3);
        assert_eq!(v["InputBytes"], 1200);
        assert_eq!(v["key"], "a/b.gz");
    }

    #[test]
    fn dimension_values_and_fields_are_masked_and_bounded() {
        let doc = Document {
            log_type: Some("connectionlog".into()),
            cluster: Some(format!("AKIAIOSFODNN7EXAMPLE{}", "c".repeat(5000))),
            properties: vec![(
                "key",
                json!(format!("password 'hunter2' {}", "k".repeat(5000))),
            )],
            metrics: vec![Metric::count("Records", 1)],
        };
        let line = &render("Ns", true, &doc, 0)[0];
        assert!(
            !line.contains("IOSFODNN7EXAMPLE") && !line.contains("hunter2"),
            "{line}"
        );
        let v = parse(line);
        let cluster = v["Cluster"].as_str().unwrap();
        assert!(
            cluster.starts_with("AKIA[REDACTED]ccc") && cluster.len() < 300,
            "{cluster}"
        );
        assert!(v["key"].as_str().unwrap().len() < crate::mask::FIELD_BYTES + 20);
    }

    #[test]
    fn per_cluster_dimensions_can_be_turned_off() {
        let doc = Document {
            log_type: Some("userlog".into()),
            cluster: Some("prod".into()),
            metrics: vec![Metric::count("Records", 1)],
            ..Document::default()
        };
        let v = parse(&render("Ns", false, &doc, 0)[0]);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["LogType"]])
        );
        assert!(v.get("Cluster").is_none());
    }

    #[test]
    fn run_wide_metrics_have_the_empty_dimension_set() {
        let doc = Document {
            metrics: vec![Metric::seconds("OldestObjectLeftAgeSeconds", 42)],
            ..Document::default()
        };
        let v = parse(&render("Ns", true, &doc, 0)[0]);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(v["OldestObjectLeftAgeSeconds"], 42);
    }

    #[test]
    fn more_than_a_hundred_metrics_are_split_over_documents() {
        const NAMES: [&str; 3] = ["A", "B", "C"];
        let metrics: Vec<Metric> = (0..250)
            .map(|i| Metric::count(NAMES[i % 3], i as u64))
            .collect();
        let doc = Document {
            metrics,
            ..Document::default()
        };
        let lines = render("Ns", true, &doc, 0);
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| {
                parse(l)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(render("Ns", true, &Document::default(), 0).is_empty());
    }

    #[test]
    fn metrics_off_write_nothing_and_memory_keeps_every_document() {
        Metrics::off().emit(&Document {
            metrics: vec![Metric::count("Records", 1)],
            ..Document::default()
        });
        let (metrics, lines) = Metrics::in_memory("Ns", true);
        assert!(metrics.is_on());
        metrics.emit(&Document {
            metrics: vec![Metric::count("Records", 1)],
            ..Document::default()
        });
        assert_eq!(lines.lock().unwrap().len(), 1);
    }

    #[test]
    fn huge_counts_saturate_instead_of_wrapping() {
        assert_eq!(Metric::count("X", u64::MAX).value, i64::MAX);
    }
}
