//! file-log's sink, on the queue's shipper thread so the proxy never touches the disk. Appends
//! one line per record (Kong's serializer JSON, or the access-log line) with one `write` per
//! batch (`O_APPEND`). The file is reopened when the plugin's `reopen` is set (every batch, as
//! Kong reopens per write) or when a [`ReopenHandle`] was triggered (SIGUSR1 / log rotation).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crate::queue::Sink;
use crate::record::LogRecord;
use crate::{access, json};

/// Asks a [`FileSink`] to reopen its file before its next write. Cheap to clone.
#[derive(Clone, Default)]
pub struct ReopenHandle(Arc<AtomicBool>);

impl ReopenHandle {
    pub fn reopen(&self) {
        self.0.store(true, Relaxed);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Access,
}

pub struct FileSink {
    path: PathBuf,
    reopen_always: bool,
    reopen: ReopenHandle,
    file: Option<File>,
    format: Format,
    buf: Vec<u8>,
}

impl FileSink {
    /// file-log: Kong's serializer JSON, one object per line.
    pub fn json(path: impl Into<PathBuf>, reopen: bool) -> FileSink {
        Self::new(path.into(), reopen, Format::Json)
    }

    /// Access log: [`access::format`] lines.
    pub fn access_log(path: impl Into<PathBuf>) -> FileSink {
        Self::new(path.into(), false, Format::Access)
    }

    fn new(path: PathBuf, reopen_always: bool, format: Format) -> FileSink {
        FileSink {
            path,
            reopen_always,
            reopen: ReopenHandle::default(),
            file: None,
            format,
            buf: Vec::new(),
        }
    }

    /// The handle to trigger a reopen (keep it where SIGUSR1 / `reopen` is handled).
    pub fn reopen_handle(&self) -> ReopenHandle {
        self.reopen.clone()
    }

    fn open(&self) -> Result<File, String> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("open {}: {e}", self.path.display()))
    }
}

impl Sink for FileSink {
    fn send(&mut self, batch: &[LogRecord], _single: bool) -> Result<(), String> {
        self.buf.clear();
        for r in batch {
            match self.format {
                Format::Json => json::serialize(r, &mut self.buf),
                Format::Access => access::format(r, &mut self.buf),
            }
            self.buf.push(b'\n');
        }
        if self.reopen_always || self.reopen.0.swap(false, Relaxed) {
            self.file = None;
        }
        let f = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(self.open()?),
        };
        if let Err(e) = f.write_all(&self.buf) {
            self.file = None;
            return Err(format!("write {}: {e}", self.path.display()));
        }
        Ok(())
    }
}
