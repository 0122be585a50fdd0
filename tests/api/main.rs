//! Integration tests: one binary, real data from `data/`, the real model in `models/`.

mod export;
mod features;
mod helpers;
mod model;
