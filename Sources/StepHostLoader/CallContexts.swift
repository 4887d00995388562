import Glibc
import Synchronization

/// The contexts of the step calls in progress, so that a callback can check the context a plugin hands back.
///
/// A call's context is not a pointer to anything: it is a token, unique for the life of the process, that
/// is valid only while its call runs and only on the thread that runs it (stephost.h). A plugin that keeps
/// a context and uses it in a later call, or from a thread of its own, gets an error status; its write lands
/// nowhere, and the misuse is recorded as a fault of the step (of the call running on that thread, or of the
/// call whose context was used from another thread).
final class CallContexts: Sendable {
    static let shared = CallContexts()

    private struct Entry {
        let recorder: StepCallRecorder
        let thread: pthread_t
        /// A misuse seen from another thread; merged into the call's result when it ends.
        var fault: String?
    }

    private struct State {
        // Tokens start at a random offset and only grow: a stale one never names a later call.
        var next = UInt.random(in: (1 << 32)..<(1 << 48))
        var calls: [UInt: Entry] = [:]
    }

    private let state = Mutex(State())

    /// Registers a call that is about to run on this thread; returns its context.
    func begin(_ recorder: StepCallRecorder) -> UnsafeMutableRawPointer {
        let thread = pthread_self()
        let token = state.withLock { state in
            state.next += 1
            state.calls[state.next] = Entry(recorder: recorder, thread: thread)
            return state.next
        }
        return UnsafeMutableRawPointer(bitPattern: token)!
    }

    /// Ends a call; returns the misuse recorded for it from another thread, if any.
    func end(_ context: UnsafeMutableRawPointer) -> String? {
        state.withLock { state in state.calls.removeValue(forKey: UInt(bitPattern: context))?.fault }
    }

    /// The recorder of the call `context` names, if it is running on this thread. Otherwise `nil`, and the
    /// misuse is recorded: on the call running on this thread if there is one, else on the call whose context
    /// was used from another thread.
    func recorder(_ context: UnsafeMutableRawPointer?, _ callback: String) -> StepCallRecorder? {
        let token = UInt(bitPattern: context)
        let thread = pthread_self()
        let (recorder, misused): (StepCallRecorder?, StepCallRecorder?) = state.withLock { state in
            if let entry = state.calls[token] {
                if pthread_equal(entry.thread, thread) != 0 { return (entry.recorder, nil) }
                if let own = state.calls.values.first(where: { pthread_equal($0.thread, thread) != 0 }) {
                    return (nil, own.recorder)
                }
                if entry.fault == nil {
                    state.calls[token]?.fault = "\(callback) was called from a thread other than the call's"
                }
                return (nil, nil)
            }
            return (nil, state.calls.values.first { pthread_equal($0.thread, thread) != 0 }?.recorder)
        }
        // On this thread, during its own call: the recorder may be used here.
        misused?.recordMisuse("\(callback) was given a call context that is stale or belongs to another call")
        return recorder
    }
}
