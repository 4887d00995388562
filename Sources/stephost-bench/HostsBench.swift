import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostPostgres
import StepHostStorage

/// The measuring half of figure 9 (several hosts on PostgreSQL): fresh databases, the span in which hosts ran a
/// queue, and the latency of one durable commit on either store.
extension StepHostBench {
    static let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

    /// A new, empty database on the server of `adminURL`; prints its URL.
    static func scratchDatabase(adminURL: String) async throws {
        emit(["url": try await PostgresOperationStore.createScratchDatabase(adminURL: adminURL, logger: quiet)])
    }

    /// How fast the queue was run, from what the database recorded: `count` operations over the span from the first
    /// step's start to the last operation's last write (the hosts' start-up, the same for any number of hosts, is
    /// not in it).
    static func span(database: String, url: String?) async throws {
        let store = try await HostStores.open(path: database, url: url, access: .readOnly, logger: quiet)
        defer { try? store.close() }
        let listing = try await store.operations(state: nil)
        let operations = listing.operations
        guard !operations.isEmpty else { fail("stephost-bench span: the database holds no operations\n", status: 1) }
        // Claims go in order of creation: the first step ran in one of the earliest operations.
        var first = Date.distantFuture
        for operation in operations.sorted(by: { $0.createdAt < $1.createdAt }).prefix(32) {
            for run in try await store.stepRuns(operationID: operation.id) { first = min(first, run.startedAt) }
        }
        let last = operations.map(\.updatedAt).max() ?? first
        let seconds = last.timeIntervalSince(first)
        let succeeded = operations.filter { $0.state == .succeeded }.count
        emit([
            "operations": operations.count, "succeeded": succeeded, "unreadable": listing.unreadable.count,
            "seconds": seconds, "ops_per_second": seconds > 0 ? Double(succeeded) / seconds : 0,
        ])
    }

    /// `count` durable saves of one operation, one after the other: the median and 95th percentile latency.
    static func commitLatency(database: String, url: String?, count: Int) async throws {
        let store = try await HostStores.open(path: database, url: url, access: .create, logger: quiet)
        defer { try? store.close() }
        var operation = OperationRecord(
            id: UUID().uuidString.lowercased(),
            instanceID: "latency",
            description: "",
            createdAt: Date(),
            deadline: Date().addingTimeInterval(3600),
            parameters: try parameters(index: 0, bytes: 2048)
        )
        try await store.create(operation)
        var samples: [Double] = []
        for index in 0..<(count + 10) {
            operation.fields[FieldKey("latency")] = "\(index)"
            let start = ContinuousClock.now
            operation = try await store.save(operation)
            if index >= 10 { samples.append(seconds(since: start)) }  // the first ones warm the connection up
        }
        samples.sort()
        emit([
            "commits": samples.count, "median_ms": samples[samples.count / 2] * 1000,
            "p95_ms": samples[min(samples.count - 1, samples.count * 95 / 100)] * 1000,
        ])
    }
}
