import Foundation
import Glibc
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import Testing

/// 1,000 isolated step calls in a row leave no process and no descriptor behind: runners are reused while the
/// host lives, the ones that crash are reaped and their pipes closed, and the idle ones end and are reaped when
/// the host goes away.
// Serialized: the traced runner below is a zombie of this process for as long as its tracer lives, which the
// leak test would count.
@Suite("FaultSuite: no leaks", .serialized, .timeLimit(.minutes(1)))
struct FaultSuiteLeakTests {
    @Test func aThousandIsolatedCallsLeaveNoProcessOrDescriptorBehind() async throws {
        let harness = try EngineHarness()
        let file = harness.plugins.appendingPathComponent("leakcheck.so")
        // Two steps a call each (mode 30: done, no write); every tenth operation ("boom") crashes its runner, so
        // that runners die and are replaced all along.
        try compileFixture(
            file,
            [
                "PLUGIN_NAME": cString("steady"), "STEP1_NAME": cString("steady_one"), "STEP1_WEIGHT": "10",
                "STEP2_NAME": cString("steady_two"), "STEP2_WEIGHT": "20", "RUN_MODE": "28",
                "ONLY_WHEN": cLiteral("boom"),
            ]
        )
        // Sealed plugin copies are counted apart (see below); everything else must come back to where it was.
        func descriptors() -> Int { ChildProcesses.descriptorTargets().filter { !$0.hasPrefix("/memfd:") }.count }
        let descriptorsBefore = descriptors()
        let zombiesBefore = ChildProcesses.children().filter { $0.state == "Z" }.count
        var options = EngineOptions()
        options.workers = 4
        var seen = Set<pid_t>()
        do {
            let host = try await harness.host(options, isolation: FaultSuiteStepTests.processIsolation())
            var ids: [String] = []
            for index in 0..<500 {
                let name = index % 10 == 9 ? "boom-\(index)" : "calm-\(index)"
                ids.append(
                    try await host.engine.createOperation(
                        parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#)
                    ).id
                )
            }
            let sampler = Task {
                var pids = Set<pid_t>()
                while !Task.isCancelled {
                    pids.formUnion(ChildProcesses.runners(of: file.path))
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return pids
            }
            let report = try await host.engine.runUntilIdle()
            sampler.cancel()
            seen = await sampler.value
            let states = report.operations.map(\.state)
            #expect(states.filter { $0 == .succeeded }.count == 450)
            #expect(states.filter { $0 == .failed }.count == 50)
            // While the host lives: no more runners than calls at once, and no zombie of the crashed ones.
            let live = ChildProcesses.runners(of: file.path)
            #expect(live.count <= options.workers, "\(live)")
            let zombies = ChildProcesses.children().filter { $0.state == "Z" }
            #expect(zombies.count <= zombiesBefore, "zombies while the host lives: \(zombies)")
        }
        // The host is gone: its idle runners end and are reaped, and its descriptors are closed.
        #expect(seen.count > 10, "runners seen: \(seen.count)")
        let reaped = try eventually(within: 5) { seen.allSatisfy { ChildProcesses.state(of: $0) == nil } }
        #expect(
            reaped,
            "runners not reaped: \(seen.compactMap { ChildProcesses.entry($0) }.map(\.description))"
        )
        let closed = try eventually(within: 15) { descriptors() <= descriptorsBefore }
        #expect(closed, "descriptors: \(descriptorsBefore) before, \(descriptors()) after")
        // The sealed copy of a plugin that runs only in runners goes with the host's runner pool. (An in-process
        // plugin's copy stays open for the life of the process: it names the mapped plugin to the dynamic loader.)
        let copies = ChildProcesses.descriptorTargets().filter { $0.contains("stephost-plugin:leakcheck.so") }
        #expect(copies.isEmpty, "\(copies)")
    }

    /// A runner that something traces cannot be reaped once killed (the tracer holds its zombie): the host gives
    /// it up after a bounded wait instead of blocking the step's thread for ever, and the operation still ends.
    @Test func aRunnerHeldByATracerDoesNotHangTheHost() async throws {
        let harness = try EngineHarness()
        let pidFile = harness.directory.file("tracer.pid").path
        try compileFixture(
            harness.plugins.appendingPathComponent("traced.so"),
            [
                "PLUGIN_NAME": cString("traced"), "STEP1_NAME": cString("traced_step"), "RUN_MODE": "49",
                "DAEMON_PID_FILE": cString(pidFile),
            ]
        )
        defer {
            // The tracer is this process's child (CLONE_PARENT): killed and reaped here; the runner it held is then
            // reaped by the host's own late reaper.
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
            {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
        var isolation = IsolationTests.allProcess
        isolation.defaults.deadline = .seconds(1)
        isolation.killGrace = .milliseconds(500)
        let operation = try await IsolationTests.provision(try await harness.host(isolation: isolation))
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message.hasPrefix("step traced_step exceeded its deadline of 1 s; its runner ")
                == true,
            "\(operation.lastError?.message ?? "")"
        )
    }
}
