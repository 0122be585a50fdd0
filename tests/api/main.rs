//! Integration tests: one binary, real data from `data/`, the real model in `models/`, and
//! the real server on its own port for each HTTP test.

mod admission;
mod auth;
mod batch;
mod cli;
mod database;
mod deploy;
mod errors;
mod export;
mod features;
mod games_api;
mod health;
mod helpers;
mod hostile;
mod lb;
mod lifecycle;
mod loadtest;
mod model;
mod models_api;
mod monitoring;
mod oip;
mod openapi;
mod predict;
mod prediction_get;
mod process;
mod redis_cluster;
mod rollout;
mod season;
mod secrets;
mod shared_cache;
mod shutdown;
