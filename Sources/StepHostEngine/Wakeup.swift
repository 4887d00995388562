import Dispatch
import Synchronization

/// One waiter that sleeps until a time or until poked, whichever is first; a poke while nobody waits is kept for
/// the next wait, so none is lost between a look at the queue and the wait that follows it.
///
/// The sleep is a dispatch timer cancelled when the wait ends, not a `Task.sleep` (a cancelled one stays queued
/// until its deadline).
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var timer: (any DispatchSourceTimer)?
    }

    private let state = Mutex(State())

    /// Wakes the current wait, or the next one.
    func poke() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            state.timer?.cancel()
            state.timer = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns after `seconds`, when poked, or when the task is cancelled.
    func wait(seconds: Double) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || seconds <= 0 {
                        state.pending = false
                        return true
                    }
                    let timer = DispatchSource.makeTimerSource(queue: .global())
                    timer.setEventHandler { [self] in poke() }
                    timer.schedule(deadline: .now() + seconds)
                    state.waiter = continuation
                    state.timer = timer
                    timer.resume()
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            // A wake that came from the timer left `pending` unset; one that raced it may have set it: either way
            // the next wait looks at the queue first, so a stale poke costs one look.
        } onCancel: {
            poke()
        }
    }
}
