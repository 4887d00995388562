import Foundation
import Glibc
import StepHostCore
import StepHostEngine
import Synchronization

/// Prints the engine's progress: each step as it finishes with its outcome and duration, retries with
/// a countdown, and each operation's end. Events arrive from several tasks; a lock keeps lines whole.
final class ProgressPrinter: Sendable {
    private struct State {
        var lastCountdown: Int?
    }

    private let state = Mutex(State())
    /// Prefix every line with the operation id (for `run`, which works on several operations).
    private let showOperation: Bool
    /// One JSON object per line per event (`--json`), for programs.
    private let json: Bool
    private let interactive = isatty(STDOUT_FILENO) == 1

    init(showOperation: Bool, json: Bool = false) {
        self.showOperation = showOperation
        self.json = json
    }

    /// Prints one event as a JSON line: `event` names it; plugin text in it is JSON-escaped, never raw.
    static func emitJSON(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    private static let timestamps = Mutex(ISO8601DateFormatter())

    static func timestamp(_ date: Date) -> String {
        timestamps.withLock { $0.string(from: date) }
    }

    private func handleJSON(_ event: EngineEvent) {
        switch event {
        case .passStarted(let id, let pass, let steps):
            Self.emitJSON(["event": "pass_started", "operation": id, "pass": pass, "steps": steps])
        case .stepFinished(let id, let pass, let position, let steps, let run):
            var object: [String: Any] = [
                "event": "step_finished", "operation": id, "pass": pass, "position": position, "steps": steps,
                "step": run.step, "outcome": run.outcome.rawValue, "duration_ms": run.durationMilliseconds,
            ]
            object["plugin"] = run.plugin
            object["message"] = run.message
            Self.emitJSON(object)
        case .parked(let id, let until, let reason):
            Self.emitJSON(["event": "parked", "operation": id, "until": Self.timestamp(until), "reason": reason])
        case .waiting:
            return
        case .finished(let operation):
            var object: [String: Any] = [
                "event": "finished", "operation": operation.id, "state": operation.state.rawValue,
                "passes": operation.passes, "description": operation.description,
            ]
            if let error = operation.lastError {
                var detail: [String: Any] = ["step": error.step, "message": error.message]
                detail["plugin"] = error.plugin
                object["error"] = detail
            }
            Self.emitJSON(object)
        }
    }

    func handle(_ event: EngineEvent) {
        if json { return state.withLock { _ in handleJSON(event) } }
        state.withLock { state in
            switch event {
            case .passStarted(let id, let pass, let steps):
                endCountdown(&state)
                emit("\(prefix(id))pass \(pass) (\(steps) steps)")
            case .stepFinished(let id, _, let position, let steps, let run):
                let plugin = run.plugin ?? "built-in"
                let duration = String(format: "%.1f ms", run.durationMilliseconds)
                let detail = run.message.map { "  \($0)" } ?? ""
                // Flushed at once, also into a file: if a later step takes the host down, this line is there.
                // The counter padded to the width of the last one ("[ 9/11]"), so the columns stay in line.
                let width = "\(steps)".count
                let counter = String(repeating: " ", count: max(0, width - "\(position)".count)) + "\(position)"
                emit(
                    "\(prefix(id))  [\(counter)/\(steps)] \(pad(run.step, 22)) \(pad(plugin, 12)) "
                        + "\(pad(run.outcome.rawValue, 6)) \(duration)\(detail)"
                )
            case .parked(let id, let until, let reason):
                emit("\(prefix(id))  next pass in \(Self.seconds(until)) (\(reason))")
            case .waiting(let until):
                guard interactive else { return }
                let remaining = Int(until.timeIntervalSinceNow.rounded(.up))
                guard remaining >= 1, remaining != state.lastCountdown else { return }
                state.lastCountdown = remaining
                print("\r  waiting \(remaining) s ", terminator: "")
                fflush(nil)
            case .finished(let operation):
                endCountdown(&state)
                if let error = operation.lastError {
                    emit(
                        "\(prefix(operation.id))failed at step \(error.step)\(error.plugin.map { " (plugin \($0))" } ?? ""): \(error.message)"
                    )
                } else {
                    emit("\(prefix(operation.id))succeeded: \(operation.description)")
                }
            }
        }
    }

    private func endCountdown(_ state: inout State) {
        if state.lastCountdown != nil {
            print("\r", terminator: "")
            state.lastCountdown = nil
        }
    }

    /// Prints one line; plugin text in it (messages, descriptions) has its control characters escaped.
    private func emit(_ line: String) {
        print(line.escapingControlCharacters)
        fflush(nil)
    }

    private func prefix(_ id: String) -> String {
        showOperation ? "\(id.prefix(8)) " : ""
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func seconds(_ date: Date) -> String {
        String(format: "%.1f s", max(0, date.timeIntervalSinceNow))
    }
}
