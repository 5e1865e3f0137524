//! Admin API. Being written.
