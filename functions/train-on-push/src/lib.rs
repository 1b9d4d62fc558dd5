//! train-on-push: a push starts training for the models it changed; a finished job becomes a registered model version.

pub mod config;
pub mod error;
pub mod handler;
