//! Runtime helpers. The reference servers' timers (a reply due in 112 ms)
//! share tokio's worker threads with everything else a batch does, so
//! nothing may block those threads: creating a namespace, scanning `/proc`,
//! copying a submission or forking a program goes through [`blocking`].

/// Blocking sections running at once, at most: each holds a thread, and a
/// batch of hundreds of runs would otherwise start hundreds of threads that
/// compete with the servers and the programs for the CPU.
const SLOTS: usize = 8;

static SEMAPHORE: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(SLOTS));

/// Runs `f`, which may block, without stalling the runtime's other tasks:
/// it waits for one of a few slots, then, on a multi-thread runtime, the
/// worker hands its tasks to another thread (`block_in_place`); elsewhere (a
/// test's current-thread runtime) `f` simply runs.
pub async fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let _slot = SEMAPHORE.acquire().await;
    now(f)
}

/// Like [`blocking`], from code that cannot wait for a slot.
pub fn now<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::blocking;

    #[test]
    fn runs_outside_a_runtime() {
        assert_eq!(super::now(|| 2 + 2), 4);
    }

    #[tokio::test]
    async fn runs_on_a_current_thread_runtime() {
        assert_eq!(blocking(|| "ok").await, "ok");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_other_tasks_running_on_a_multi_thread_runtime() {
        let (tx, rx) = std::sync::mpsc::channel();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let _ = tx.send(());
        });
        // Blocks this worker until the other task has run: only possible if
        // the runtime goes on without this thread.
        blocking(|| rx.recv_timeout(std::time::Duration::from_secs(30)))
            .await
            .expect("the other task ran while this one blocked");
        ticker.await.unwrap();
    }
}
