import Foundation
import GRDB
public import StepHostCore
public import StepHostStorage

extension SQLiteOperationStore: QuarantineStore {
    public func quarantine(_ record: QuarantineRecord) async throws {
        try await guarded {
            try await durableWrite { db in
                try db.execute(
                    sql: """
                        INSERT INTO plugin_quarantine (plugin, file_hash, reason, since) VALUES (?, ?, ?, ?)
                        ON CONFLICT (plugin, file_hash) DO NOTHING
                        """,
                    arguments: [record.plugin, record.fileHash, record.reason, Self.milliseconds(record.since)]
                )
            }
        }
    }

    public func quarantinedPlugins() async throws -> [QuarantineRecord] {
        try await guarded {
            try await pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: "SELECT plugin, file_hash, reason, since FROM plugin_quarantine ORDER BY since, plugin"
                ).map(Self.quarantineRecord)
            }
        }
    }

    /// ``quarantinedPlugins()`` for a caller that cannot wait asynchronously (the host's assembly).
    public func quarantinedPluginsNow() throws -> [QuarantineRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT plugin, file_hash, reason, since FROM plugin_quarantine ORDER BY since, plugin"
            ).map(Self.quarantineRecord)
        }
    }

    static func quarantineRecord(_ row: Row) -> QuarantineRecord {
        QuarantineRecord(
            plugin: row["plugin"],
            fileHash: row["file_hash"],
            reason: row["reason"],
            since: Date(timeIntervalSince1970: Double(row["since"] as Int64) / 1000)
        )
    }

    public func clearQuarantine(plugin: String) async throws -> Int {
        try await guarded {
            try await durableWrite { db in
                try db.execute(sql: "DELETE FROM plugin_quarantine WHERE plugin = ?", arguments: [plugin])
                return db.changesCount
            }
        }
    }
}
