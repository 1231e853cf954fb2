//! runnel-storage
