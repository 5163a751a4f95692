//! The blocking adapter's producers and worker for the shared mixed-faults
//! scenario (`beanstalk_test_support::worker_suite::mixed_faults`): the
//! same roles as the async adapters', on threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use beanstalk_blocking::worker::{Shutdown, Worker, WorkerJob};
use beanstalk_blocking::{Commands, ReconnectingClient};
use beanstalk_test_support::worker_suite::mixed_faults::{Plan, Report, Running, SoakClients};

/// Producers on threads of their own, and a `Worker` (one thread per
/// slot, one per job), all under one thread that returns the report.
pub(crate) struct BlockingClients;

impl SoakClients for BlockingClients {
    fn start(plan: Plan) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let shutdown = Shutdown::new();
        let worker = Worker::builder(&plan.url)
            .tube(plan.tube.as_str())
            .concurrency(plan.slots)
            .options(plan.options)
            .shutdown_grace(plan.grace)
            .build()
            .expect("a valid worker");
        let done = thread::Builder::new()
            .name("soak-clients".into())
            .spawn({
                let (stop, shutdown) = (Arc::clone(&stop), shutdown.clone());
                move || run(&plan, worker, &stop, &shutdown)
            })
            .expect("spawn the clients' thread");
        Running::new(
            move || stop.store(true, Ordering::SeqCst),
            move || shutdown.trigger(),
            done,
        )
    }
}

fn run(plan: &Plan, worker: Worker, stop: &AtomicBool, shutdown: &Shutdown) -> Report {
    thread::scope(|scope| {
        for producer in 0..plan.producers {
            thread::Builder::new()
                .name(format!("soak-producer-{producer}"))
                .spawn_scoped(scope, move || produce(plan, producer, stop))
                .expect("spawn a producer");
        }
        let handler = {
            let plan = plan.clone();
            move |job: WorkerJob| {
                plan.ledger.record_handled(job.body());
                thread::sleep(plan.work_for(job.body()));
                Ok::<(), String>(())
            }
        };
        let totals = worker.run(handler, shutdown);
        Report {
            worker: totals,
            worker_returned: std::time::Instant::now(),
            tasks_left: None,
        }
    })
}

/// One producer, as `SoakClients::start` describes.
fn produce(plan: &Plan, producer: usize, stop: &AtomicBool) {
    let mut client =
        ReconnectingClient::connect_with(&plan.url, plan.options, plan.producer_policy())
            .expect("a producer connects");
    client
        .use_tube(plan.tube.as_str())
        .expect("a producer uses its tube");
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let body = plan.body(producer, n);
        let put = client.put(body.clone(), plan.put_options(n));
        plan.ledger.record_put(body, &put);
        thread::sleep(plan.put_pause);
    }
    drop(client);
    plan.ledger.producer_finished();
}
