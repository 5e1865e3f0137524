//! LMDB store. STUB: being written.
