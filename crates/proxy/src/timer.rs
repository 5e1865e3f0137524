//! A coarse per-thread timer for the long timeouts of the request path.
//!
//! hyper arms a header-read timeout (30 s) for every request it waits for, and the request path
//! arms the service's read timeout (60 s by default) for every upstream exchange. With tokio's
//! timer each of those is an insert into and a removal from the timer wheel, and an insert that
//! lands before the driver's next wake-up writes to the runtime's eventfd (a syscall, and one
//! more `epoll_wait` return): we measured ~0.25 such writes and ~1,500 instructions of timer
//! work per proxied request. These timeouts only need to fire roughly on time, so each proxy
//! thread keeps its pending deadlines in a slab and one ticker task per thread wakes the
//! expired ones every [`TICK`]. Arming and disarming is a slab push and pop; the clock is read
//! once per tick, not per request.
//!
//! A [`CoarseSleep`] only fires on a thread that runs [`run_ticker`]; timeouts shorter than a
//! second keep using tokio's precise timer (see [`sleep_until`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How late a coarse deadline may fire.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Timeouts at least this long go to the coarse timer (at most 5 % late).
const COARSE_FROM: Duration = Duration::from_secs(1);

struct Entry {
    deadline: Instant,
    waker: Option<Waker>,
    generation: u32,
}

struct Slab {
    /// The clock as of the last tick (or the first use on this thread).
    now: Instant,
    entries: Vec<Entry>,
    free: Vec<u32>,
}

thread_local! {
    static SLAB: RefCell<Slab> = RefCell::new(Slab {
        now: Instant::now(),
        entries: Vec::new(),
        free: Vec::new(),
    });
}

/// The thread's clock as of its last tick: good enough to compute a 30 s deadline.
pub(crate) fn coarse_now() -> Instant {
    SLAB.with(|s| s.borrow().now)
}

/// Wakes the expired sleeps of this thread every [`TICK`]; runs for the thread's lifetime.
pub(crate) async fn run_ticker() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = Vec::new();
    loop {
        tick.tick().await;
        SLAB.with(|s| {
            let mut s = s.borrow_mut();
            let now = Instant::now();
            s.now = now;
            for e in s.entries.iter_mut() {
                if e.deadline <= now {
                    due.extend(e.waker.take());
                }
            }
        });
        // Woken outside the borrow: a woken task may arm or drop a sleep at once.
        for w in due.drain(..) {
            w.wake();
        }
    }
}

/// A sleep on the thread's coarse timer. Plain data (`Send + Sync`, as hyper requires); the
/// slot it occupies belongs to the thread that polled it.
#[derive(Debug)]
pub(crate) struct CoarseSleep {
    deadline: Instant,
    slot: Option<(u32, u32)>,
}

impl CoarseSleep {
    pub(crate) fn until(deadline: Instant) -> CoarseSleep {
        CoarseSleep {
            deadline,
            slot: None,
        }
    }

    fn disarm(&mut self) {
        if let Some((index, generation)) = self.slot.take() {
            // `try_with`: a sleep dropped during thread teardown has nothing left to free.
            let _ = SLAB.try_with(|s| {
                let mut s = s.borrow_mut();
                if let Some(e) = s.entries.get_mut(index as usize) {
                    if e.generation == generation {
                        e.waker = None;
                        e.generation = e.generation.wrapping_add(1);
                        s.free.push(index);
                    }
                }
            });
        }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let slot = self.slot;
        let armed = SLAB.with(|s| {
            let mut s = s.borrow_mut();
            if deadline <= s.now {
                return None;
            }
            if let Some((index, generation)) = slot {
                if let Some(e) = s.entries.get_mut(index as usize) {
                    if e.generation == generation {
                        match &e.waker {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => e.waker = Some(cx.waker().clone()),
                        }
                        return Some(slot);
                    }
                }
            }
            let waker = Some(cx.waker().clone());
            let index = match s.free.pop() {
                Some(i) => i,
                None => {
                    s.entries.push(Entry {
                        deadline,
                        waker: None,
                        generation: 0,
                    });
                    (s.entries.len() - 1) as u32
                }
            };
            let e = &mut s.entries[index as usize];
            e.deadline = deadline;
            e.waker = waker;
            Some(Some((index, e.generation)))
        });
        match armed {
            Some(slot) => {
                self.slot = slot;
                Poll::Pending
            }
            None => {
                self.disarm();
                Poll::Ready(())
            }
        }
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

/// hyper's timer on a proxy thread: the header-read timeout and keep-alive idle waits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CoarseTimer;

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(coarse_now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep::until(deadline))
    }

    fn now(&self) -> Instant {
        coarse_now()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        // Reuse the box when it is ours (it always is): no new allocation.
        match sleep.as_mut().downcast_mut_pin::<CoarseSleep>() {
            Some(mut s) => {
                s.disarm();
                s.deadline = new_deadline;
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

pin_project_lite::pin_project! {
    /// A sleep until a deadline: on the coarse timer when the wait is long, on tokio's
    /// otherwise.
    #[project = SleepProj]
    pub(crate) enum Sleep {
        Coarse { sleep: CoarseSleep },
        Precise { #[pin] sleep: tokio::time::Sleep },
    }
}

pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    if deadline.saturating_duration_since(coarse_now()) >= COARSE_FROM {
        Sleep::Coarse {
            sleep: CoarseSleep::until(deadline),
        }
    } else {
        Sleep::Precise {
            sleep: tokio::time::sleep_until(deadline.into()),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            SleepProj::Coarse { sleep } => Pin::new(sleep).poll(cx),
            SleepProj::Precise { sleep } => sleep.poll(cx),
        }
    }
}

/// An `Unpin` timeout for futures and bodies written by hand: inline on the coarse timer when
/// the wait is long, boxed on tokio's otherwise. Created only once an operation would block.
pub(crate) enum Deadline {
    Coarse(CoarseSleep),
    Precise(Pin<Box<tokio::time::Sleep>>),
}

impl Deadline {
    pub(crate) fn after(limit: Duration) -> Deadline {
        let deadline = Instant::now() + limit;
        if limit >= COARSE_FROM {
            Deadline::Coarse(CoarseSleep::until(deadline))
        } else {
            Deadline::Precise(Box::pin(tokio::time::sleep_until(deadline.into())))
        }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Deadline::Coarse(s) => Pin::new(s).poll(cx),
            Deadline::Precise(s) => s.as_mut().poll(cx),
        }
    }
}

/// `fut`, or `Err(())` when it is still pending after `limit`; the timer is armed only if
/// `fut` does not finish at its first poll.
pub(crate) async fn timeout<F: Future>(limit: Duration, fut: F) -> Result<F::Output, ()> {
    let mut fut = std::pin::pin!(fut);
    let mut deadline: Option<Deadline> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let d = deadline.get_or_insert_with(|| Deadline::after(limit));
        Pin::new(d).poll(cx).map(Err)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_a_ticking_thread(f: impl Future<Output = ()> + 'static) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build_local(Default::default())
            .expect("runtime");
        rt.block_on(async move {
            tokio::task::spawn_local(run_ticker());
            f.await;
        });
    }

    #[test]
    fn fires_after_its_deadline_and_not_before() {
        on_a_ticking_thread(async {
            let start = Instant::now();
            CoarseSleep::until(start + Duration::from_millis(120)).await;
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(120), "{waited:?}");
        });
    }

    #[test]
    fn dropped_sleeps_give_their_slot_back() {
        on_a_ticking_thread(async {
            for _ in 0..100 {
                let far = CoarseSleep::until(Instant::now() + Duration::from_secs(60));
                let mut far = std::pin::pin!(far);
                // Poll once to arm it, then drop it.
                std::future::poll_fn(|cx| {
                    let _ = far.as_mut().poll(cx);
                    Poll::Ready(())
                })
                .await;
            }
            SLAB.with(|s| {
                let s = s.borrow();
                assert_eq!(s.entries.len(), 1, "one slot, reused");
                assert!(s.entries.iter().all(|e| e.waker.is_none()));
            });
        });
    }

    #[test]
    fn a_reset_sleep_moves_its_deadline() {
        use hyper::rt::Timer as _;
        on_a_ticking_thread(async {
            let timer = CoarseTimer;
            let start = Instant::now();
            let mut sleep = timer.sleep_until(start + Duration::from_secs(60));
            timer.reset(&mut sleep, start + Duration::from_millis(100));
            sleep.await;
            assert!(start.elapsed() < Duration::from_secs(5));
        });
    }
}
