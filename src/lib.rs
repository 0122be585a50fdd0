//! bullpen: an MLB win-probability prediction server in one binary.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod db;
pub mod features;
pub mod games;
pub mod grpc;
pub mod http;
pub mod lb;
pub mod loadtest;
pub mod models;
pub mod monitoring;
pub mod oip;
pub mod predict;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod validation;
