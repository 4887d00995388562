import Dispatch
import Foundation
public import Logging
import StepHostCore
public import StepHostEngine
import Synchronization

/// A graceful stop on SIGTERM or SIGINT, for `stephost serve` and `stephost run` alike: the engine takes no new
/// work and each running pass ends after its current step (saved, parked due at once, claim released). If passes
/// are still running when the grace period ends (a step that takes longer), or when a second signal comes, their
/// claims are released so the next start resumes them at once, and the process exits with status 0.
public final class GracefulStop: Sendable {
    private let engine: Engine
    private let grace: Duration
    private let logger: Logger
    private let exit: @Sendable () -> Never
    private let state = Mutex<(signals: Int, timer: (any DispatchSourceTimer)?, done: Bool)>((0, nil, false))

    /// - Parameter exit: ends the process once the grace period ran out (after the claims were released).
    public init(engine: Engine, grace: Duration, logger: Logger, exit: @escaping @Sendable () -> Never) {
        self.engine = engine
        self.grace = grace
        self.logger = logger
        self.exit = exit
    }

    /// A stop signal arrived.
    public func signalled(_ name: String) {
        let count = state.withLock { state -> Int in
            state.signals += 1
            return state.signals
        }
        if count == 1 {
            logger.notice(
                "stopping: no new work; running steps get \(grace.humanText) to finish (a second signal stops now)",
                metadata: ["signal": "\(name)", "running": "\(engine.busyWorkers)"]
            )
            engine.beginShutdown()
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.setEventHandler { [self] in expire("the grace period of \(grace.humanText) ran out") }
            timer.schedule(deadline: .now() + grace.timeInterval)
            state.withLock { $0.timer = timer }
            timer.resume()
        } else {
            expire("a second \(name) arrived")
        }
    }

    /// The engine returned: nothing is cut off.
    public func finished() {
        state.withLock { state in
            state.done = true
            state.timer?.cancel()
        }
    }

    private func expire(_ why: String) {
        guard !state.withLock({ $0.done }) else { return }
        let engine = engine
        let logger = logger
        let exit = exit
        Task {
            let released = await engine.releaseRunningClaims()
            logger.warning(
                "stopped with \(released.count) operation(s) cut off: \(why); released for the next start",
                metadata: ["operations": "\(released.joined(separator: ","))"]
            )
            exit()
        }
    }
}
