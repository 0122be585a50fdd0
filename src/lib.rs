//! bullpen: an MLB win-probability prediction server in one binary.

pub mod cli;
pub mod features;
pub mod games;
pub mod models;
pub mod settings;
pub mod telemetry;
