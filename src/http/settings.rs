//! `[server]`: where the HTTP server listens and the limits it enforces.

use serde::Deserialize;

use crate::validation::{InvalidSetting, at_least_one};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// The Open Inference Protocol's gRPC service, on `host`; 0 turns it off.
    pub grpc_port: u16,
    /// 0 means one per core.
    pub workers: usize,
    pub max_body_bytes: usize,
    /// Longest path and query string accepted (414 beyond); see `http::limits`.
    pub max_uri_bytes: usize,
    /// Most header lines, and most bytes in all their names and values (431 beyond).
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_batch: usize,
    pub max_in_flight: usize,
    pub request_timeout_ms: u64,
    /// On SIGTERM, how long `/ready` answers 503 while every request is still served, before
    /// the server stops accepting.
    pub drain_secs: u64,
    pub shutdown_timeout_secs: u64,
}

impl ServerSettings {
    pub fn worker_count(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        } else {
            self.workers
        }
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        at_least_one(&[
            ("server.max_body_bytes", self.max_body_bytes as u64),
            ("server.max_uri_bytes", self.max_uri_bytes as u64),
            ("server.max_headers", self.max_headers as u64),
            ("server.max_header_bytes", self.max_header_bytes as u64),
            ("server.max_batch", self.max_batch as u64),
            ("server.max_in_flight", self.max_in_flight as u64),
            ("server.request_timeout_ms", self.request_timeout_ms),
        ])?;
        if self.grpc_port != 0 && self.grpc_port == self.port {
            return Err(InvalidSetting::new(
                "server.grpc_port",
                "must differ from server.port (or be 0 to turn gRPC off)",
            ));
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return Err(InvalidSetting::new(
                "server.host",
                "must be an IP address such as 127.0.0.1 or 0.0.0.0",
            ));
        }
        Ok(())
    }
}
