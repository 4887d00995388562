import Foundation
import PostgresNIO
public import StepHostCore
public import StepHostStorage

/// Quarantined plugin builds, shared by every host on the database: a build that killed one host in process is
/// kept out of the others' processes too.
extension PostgresOperationStore: QuarantineStore {
    public func quarantine(_ record: QuarantineRecord) async throws {
        try await guarded { [self] in
            try await execute(
                """
                INSERT INTO plugin_quarantine (plugin, file_hash, reason, since)
                VALUES (\(record.plugin), \(record.fileHash), \(record.reason), \(Self.milliseconds(record.since)))
                ON CONFLICT (plugin, file_hash) DO NOTHING
                """,
                logger: logger
            )
        }
    }

    public func quarantinedPlugins() async throws -> [QuarantineRecord] {
        try await guarded { [self] in
            var records: [QuarantineRecord] = []
            for try await (plugin, hash, reason, since) in try await client.query(
                "SELECT plugin, file_hash, reason, since FROM plugin_quarantine ORDER BY since, plugin",
                logger: logger
            ).decode((String, String, String, Int64).self) {
                records.append(
                    QuarantineRecord(plugin: plugin, fileHash: hash, reason: reason, since: Self.date(since))
                )
            }
            return records
        }
    }

    public func clearQuarantine(plugin: String) async throws -> Int {
        try await guarded { [self] in
            try await execute(
                "DELETE FROM plugin_quarantine WHERE plugin = \(plugin) RETURNING plugin",
                logger: logger
            )
        }
    }
}
