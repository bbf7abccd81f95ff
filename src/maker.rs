//! The factory's thread, `waypost-factory`: it makes the endpoints of added instances,
//! one job at a time, while the endpointer's own thread stays free to publish removals,
//! run closers and notice a stop or a newer event.
//!
//! The endpointer sends a job (a set and the positions in it to make) and later takes
//! back one [`Batch`]: what was made, and how far the job got. It may cancel a job; the
//! maker then stops between two factory calls, so a cancel waits for one call at most.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use crate::endpoint_cache;
use crate::factory::Factory;
use crate::internal::worker::{StopSignal, Worker};
use crate::snapshot::{Closings, Sink};
use crate::{InstanceSet, Made, Result};

/// Go on making.
const RUN: u8 = 0;
/// Stop after at least one call: a newer event came (a stream of events must not
/// starve the job).
const CANCEL: u8 = 1;
/// Stop before the next call: the endpointer is closing.
const STOP: u8 = 2;

/// One job: make the instances of `set` at the positions `add`.
struct Job {
    set: InstanceSet,
    add: Vec<usize>,
}

/// What a job made: (position in `set`, endpoint), ascending; `add[..reached]` were
/// tried (made, or failed and logged), `add[reached..]` were not.
pub(crate) struct Batch<E> {
    pub(crate) set: InstanceSet,
    pub(crate) add: Vec<usize>,
    pub(crate) made: Vec<(usize, Made<E>)>,
    pub(crate) reached: usize,
}

impl<E> Batch<E> {
    /// The closers of what was made, to run if the batch is not installed.
    fn into_closings(self) -> Closings {
        let set = self.set;
        Closings(
            (self.made.into_iter())
                .filter_map(|(k, made)| Some((set[k].clone(), made.closer?)))
                .collect(),
        )
    }
}

/// The endpointer's handle on its factory thread. Dropping it stops and joins the
/// thread, and runs the closers of a batch nobody took.
pub(crate) struct Maker<E> {
    jobs: Sender<Job>,
    done: Receiver<Batch<E>>,
    cancel: Arc<AtomicU8>,
    worker: Worker,
}

impl<E: Send + 'static> Maker<E> {
    /// Starts `waypost-factory`, which records its id in `sink` (so that a `close()`
    /// from inside the factory knows where it is).
    pub(crate) fn start(factory: Box<dyn Factory<E>>, sink: Arc<Sink>) -> Result<Maker<E>> {
        // One job at a time, and its batch taken before the next: neither side blocks.
        let (jobs, job_rx) = bounded::<Job>(1);
        let (done_tx, done) = bounded::<Batch<E>>(1);
        let cancel = Arc::new(AtomicU8::new(RUN));
        let flag = cancel.clone();
        let worker = Worker::start("waypost-factory", move |stop| {
            let _ = sink.maker.set(std::thread::current().id());
            serve(&*factory, &job_rx, &done_tx, &flag, &stop);
        })?;
        Ok(Maker {
            jobs,
            done,
            cancel,
            worker,
        })
    }
}

impl<E> Maker<E> {
    /// Hands a job over. The previous job's batch must have been taken.
    pub(crate) fn start_job(&self, set: &InstanceSet, add: Vec<usize>) {
        self.cancel.store(RUN, Ordering::Release);
        let job = Job {
            set: set.clone(),
            add,
        };
        // Fails only if the thread has ended, which `done` then reports.
        let _ = self.jobs.try_send(job);
    }

    /// Where the current job's batch arrives; disconnected if the thread has ended.
    pub(crate) fn done(&self) -> &Receiver<Batch<E>> {
        &self.done
    }

    /// Asks the current job to end: after its current call, or with `stop` before the
    /// next call at all.
    pub(crate) fn cancel(&self, stop: bool) {
        let to = if stop { STOP } else { CANCEL };
        self.cancel.fetch_max(to, Ordering::AcqRel);
    }

    /// True once the current job was asked to end.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire) != RUN
    }
}

impl<E> Drop for Maker<E> {
    fn drop(&mut self) {
        self.cancel.store(STOP, Ordering::Release);
        self.worker.stop();
        if let Ok(batch) = self.done.try_recv() {
            drop(batch.into_closings());
        }
    }
}

/// The thread's loop: one job at a time, until stopped or the endpointer is gone.
fn serve<E: 'static>(
    factory: &dyn Factory<E>,
    jobs: &Receiver<Job>,
    done: &Sender<Batch<E>>,
    cancel: &AtomicU8,
    stop: &StopSignal,
) {
    loop {
        let Job { set, add } = select! {
            recv(stop.channel()) -> _ => return,
            recv(jobs) -> job => match job {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut made = Vec::with_capacity(add.len());
        let mut reached = 0;
        for (n, &k) in add.iter().enumerate() {
            let flag = cancel.load(Ordering::Acquire);
            if flag == STOP || (flag == CANCEL && n > 0) || stop.is_stopped() {
                break;
            }
            if let Ok(m) = endpoint_cache::make(factory, &set[k]) {
                made.push((k, m));
            }
            reached = n + 1;
        }
        let batch = Batch {
            set,
            add,
            made,
            reached,
        };
        if let Err(unsent) = done.send(batch) {
            drop(unsent.into_inner().into_closings());
            return;
        }
    }
}
