//! CloudWatch Embedded Metric Format (EMF): one JSON line on stdout that CloudWatch turns into metrics.

use serde_json::{Map, Value, json};

/// A metric unit CloudWatch understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// The one CloudWatch namespace every studio-ops function emits to.
pub const NAMESPACE: &str = "StudioOps";
/// The one dimension that tells the functions apart (its value is the function's binary name).
pub const FUNCTION_DIMENSION: &str = "Function";
/// The heartbeat of a scheduled function: 1 when a scheduled run completed its work, 0 when it ran and could not.
/// The template's heartbeat alarms fire when its sum stays below 1 for two of the schedule's periods — missing
/// data counts as breaching, so a schedule that stopped, a function that cannot start and a run that always fails
/// all sound the same alarm.
pub const RUN_COMPLETED: &str = "RunCompleted";

/// Every metric one function emits, by name. The template's dashboard may read only these (the infra test
/// `the_dashboard_reads_only_metrics_the_functions_emit` checks each widget against the four catalogues), and
/// [`MetricSet::put`] refuses a name its catalogue lacks in debug builds, so every test that reaches an
/// emission also proves the catalogue complete.
#[derive(Debug)]
pub struct Catalogue {
    /// The function's binary name: the value of its [`FUNCTION_DIMENSION`].
    pub function: &'static str,
    pub metrics: &'static [&'static str],
}

impl Catalogue {
    pub fn has(&self, name: &str) -> bool {
        self.metrics.contains(&name)
    }
}

/// Collects metrics of one invocation under one namespace and dimension set.
#[derive(Debug, Clone)]
pub struct MetricSet {
    namespace: String,
    catalogue: &'static Catalogue,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, f64, Unit)>,
}

impl MetricSet {
    /// The metric set of one invocation of the catalogue's function: namespace [`NAMESPACE`], dimension
    /// [`FUNCTION_DIMENSION`].
    pub fn of(catalogue: &'static Catalogue) -> Self {
        Self {
            namespace: NAMESPACE.to_string(),
            catalogue,
            dimensions: vec![(
                FUNCTION_DIMENSION.to_string(),
                catalogue.function.to_string(),
            )],
            metrics: Vec::new(),
        }
    }

    pub fn put(&mut self, name: &str, value: f64, unit: Unit) {
        debug_assert!(
            self.catalogue.has(name),
            "metric {name} is not in {}'s catalogue: add it there, where the dashboard test reads it",
            self.catalogue.function
        );
        self.metrics.push((name.to_string(), value, unit));
    }

    /// The EMF document for a given timestamp (milliseconds since the epoch).
    pub fn to_emf(&self, timestamp_ms: i64) -> Value {
        let mut doc = Map::new();
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let defs: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": defs,
                }]
            }),
        );
        for (k, v) in &self.dimensions {
            doc.insert(k.clone(), Value::String(v.clone()));
        }
        for (n, v, _) in &self.metrics {
            doc.insert(n.clone(), json!(v));
        }
        Value::Object(doc)
    }

    /// Writes the EMF line to stdout (where the Lambda log agent picks it up).
    pub fn emit(&self) {
        let now = jiff::Timestamp::now().as_millisecond();
        println!("{}", self.to_emf(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Catalogue = Catalogue {
        function: "idle-shutdown",
        metrics: &["AppsStopped"],
    };

    #[test]
    #[should_panic(expected = "metric AppsWarned is not in idle-shutdown's catalogue")]
    #[cfg(debug_assertions)]
    fn a_metric_its_catalogue_lacks_is_refused() {
        MetricSet::of(&TEST).put("AppsWarned", 1.0, Unit::Count);
    }

    #[test]
    fn emf_document_shape() {
        let mut m = MetricSet::of(&TEST);
        m.put("AppsStopped", 2.0, Unit::Count);
        let doc = m.to_emf(1_700_000_000_000);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "StudioOps");
        assert_eq!(cw["Dimensions"], json!([["Function"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "AppsStopped", "Unit": "Count"}])
        );
        assert_eq!(doc["Function"], "idle-shutdown");
        assert_eq!(doc["AppsStopped"], 2.0);
    }
}
