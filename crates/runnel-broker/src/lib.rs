//! runnel-broker
