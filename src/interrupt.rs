//! The signals that end a run (SIGINT, SIGTERM, SIGHUP) raced against the run itself, so
//! that a signal is never lost, even one that came while the run held its thread.

use std::future::Future;

/// The signal that ended a run early: its name and number (the exit code is 128 + it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    pub name: &'static str,
    pub number: i32,
}

/// Runs `run` until it ends or SIGINT, SIGTERM or SIGHUP comes, whichever is first. A
/// signal that came while `run` held the thread without yielding (a long computation in one
/// poll) was not seen while it ran: it is looked for once more when `run` ends, and wins
/// then, so a stopped run never reports the verdict of a run the user let finish. When a
/// signal wins, `run` is dropped before this returns: that tears down whatever it started.
/// Fails only when the signal handlers cannot be installed.
pub async fn until_signal<T>(
    run: impl Future<Output = T>,
) -> std::io::Result<Result<T, Interrupted>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let interrupt = async {
        tokio::select! {
            _ = int.recv() => Interrupted { name: "SIGINT", number: libc::SIGINT },
            _ = term.recv() => Interrupted { name: "SIGTERM", number: libc::SIGTERM },
            _ = hup.recv() => Interrupted { name: "SIGHUP", number: libc::SIGHUP },
        }
    };
    let mut interrupt = std::pin::pin!(interrupt);
    Ok(tokio::select! {
        biased;
        signal = &mut interrupt => Err(signal),
        value = run => {
            // Give the signal driver a turn to deliver what came during the last poll.
            tokio::task::yield_now().await;
            match futures_util::FutureExt::now_or_never(&mut interrupt) {
                Some(signal) => Err(signal),
                None => Ok(value),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A signal reaches every listener in the process: these tests take turns.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_during_a_poll_that_never_yields_still_wins() {
        let _turn = TURN.lock().await;
        let outcome = until_signal(async {
            // SIGHUP: this test binary's own handler is the one until_signal installed.
            unsafe { libc::raise(libc::SIGHUP) };
            std::thread::sleep(Duration::from_millis(300));
            "the verdict of a run the user stopped"
        })
        .await
        .unwrap();
        assert_eq!(
            outcome,
            Err(Interrupted {
                name: "SIGHUP",
                number: libc::SIGHUP
            })
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_no_signal_stopped_keeps_its_value() {
        let _turn = TURN.lock().await;
        let outcome = until_signal(async {
            std::thread::sleep(Duration::from_millis(50));
            7
        })
        .await
        .unwrap();
        assert_eq!(outcome, Ok(7));
    }
}
