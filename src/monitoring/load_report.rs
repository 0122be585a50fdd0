//! ORCA load reports (Open Request Cost Aggregation: the xDS `OrcaLoadReport` message), as
//! Envoy's client-side weighted round robin and gRPC's `weighted_round_robin` read them from
//! each answer: the `endpoint-load-metrics` header in ORCA's `TEXT` form on HTTP, the
//! `endpoint-load-metrics-bin` trailer (the message, serialised) on gRPC.
//!
//! The load balancer's sampler (`lb`) sets the figures once a second; every answer reads them.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The HTTP response header.
pub const ORCA_HEADER: &str = "endpoint-load-metrics";
/// The gRPC trailer (binary metadata).
pub const ORCA_TRAILER: &str = "endpoint-load-metrics-bin";

/// `xds.data.orca.v3.OrcaLoadReport`, the fields bullpen reports (the tags are the
/// message's: the published `xds/data/orca/v3/orca_load_report.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrcaLoadReport {
    /// CPU used against the cores the process may use.
    #[prost(double, tag = "1")]
    pub cpu_utilization: f64,
    /// Requests answered a second.
    #[prost(double, tag = "6")]
    pub rps_fractional: f64,
    /// `inference_queue`: inference calls waiting on the fullest model version.
    #[prost(map = "string, double", tag = "8")]
    pub named_metrics: HashMap<String, f64>,
    /// The busiest share of what the replica can take (CPU, queue, admission, latency and
    /// scheduling delay against the SLO): what the agent check's weight is 1 minus.
    #[prost(double, tag = "9")]
    pub application_utilization: f64,
}

impl OrcaLoadReport {
    /// ORCA's text form: `TEXT cpu_utilization=0.42, rps_fractional=812, ...`.
    pub fn text(&self) -> String {
        let mut text = format!(
            "TEXT cpu_utilization={}, rps_fractional={}, application_utilization={}",
            rounded(self.cpu_utilization),
            rounded(self.rps_fractional),
            rounded(self.application_utilization)
        );
        let mut named: Vec<_> = self.named_metrics.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in named {
            // Writing to a String cannot fail.
            let _ = write!(text, ", named_metrics.{name}={}", rounded(*value));
        }
        text
    }
}

/// Four decimals are all a balancer's weights use.
fn rounded(value: f64) -> f64 {
    if value.is_finite() {
        (value * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// The latest figures, as `f64` bits: set once a second, read by every answer.
#[derive(Debug, Default)]
pub struct LoadFigures {
    cpu_utilization: AtomicU64,
    application_utilization: AtomicU64,
    rps: AtomicU64,
    inference_queue: AtomicU64,
}

impl LoadFigures {
    pub fn set(&self, cpu_utilization: f64, application_utilization: f64, rps: f64, queue: f64) {
        for (figure, value) in [
            (&self.cpu_utilization, cpu_utilization),
            (&self.application_utilization, application_utilization),
            (&self.rps, rps),
            (&self.inference_queue, queue),
        ] {
            let value = if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            };
            figure.store(value.to_bits(), Ordering::Relaxed);
        }
    }

    pub fn report(&self) -> OrcaLoadReport {
        let read = |figure: &AtomicU64| f64::from_bits(figure.load(Ordering::Relaxed));
        OrcaLoadReport {
            cpu_utilization: read(&self.cpu_utilization),
            rps_fractional: read(&self.rps),
            named_metrics: HashMap::from([(
                "inference_queue".to_owned(),
                read(&self.inference_queue),
            )]),
            application_utilization: read(&self.application_utilization),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn the_text_form_names_the_message_fields() {
        let figures = LoadFigures::default();
        figures.set(0.423_456_7, 0.6, 812.0, 3.0);
        assert_eq!(
            figures.report().text(),
            "TEXT cpu_utilization=0.4235, rps_fractional=812, application_utilization=0.6, \
             named_metrics.inference_queue=3"
        );
        figures.set(f64::NAN, -1.0, f64::INFINITY, 0.0);
        let report = figures.report();
        assert_eq!(
            (report.cpu_utilization, report.application_utilization),
            (0.0, 0.0)
        );
    }

    #[test]
    fn the_binary_form_is_the_message_on_its_field_numbers() {
        let report = OrcaLoadReport {
            cpu_utilization: 0.5,
            rps_fractional: 0.0,
            named_metrics: HashMap::new(),
            application_utilization: 0.25,
        };
        // Field 1 as a 64-bit double (key 0x09), field 9 likewise (key 0x49); zeros omitted.
        let mut expected = vec![0x09];
        expected.extend_from_slice(&0.5f64.to_le_bytes());
        expected.push(0x49);
        expected.extend_from_slice(&0.25f64.to_le_bytes());
        assert_eq!(report.encode_to_vec(), expected);
    }
}
