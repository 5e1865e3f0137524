//! A counting global allocator for the allocation-budget tests (router, plugins, metrics,
//! proxy). Included by `#[path]` so each test binary gets its own `#[global_allocator]`.
//! Counts allocations and reallocations of every thread while counting is on.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Counts allocations from now on (`true`) or stops counting.
pub fn set_counting(on: bool) {
    ON.store(on, Ordering::SeqCst);
}

/// Allocations counted so far.
pub fn allocations() -> usize {
    ALLOCS.load(Ordering::SeqCst)
}

/// Runs `f` and returns its result with the number of allocations made meanwhile (by any
/// thread: callers keep other threads quiet, or count what they do).
pub fn count<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = allocations();
    set_counting(true);
    let t = f();
    set_counting(false);
    (t, allocations() - before)
}
