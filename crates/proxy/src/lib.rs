//! Data plane. Being written.
