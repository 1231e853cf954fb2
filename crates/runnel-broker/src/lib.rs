//! runnel-broker

pub mod config;
