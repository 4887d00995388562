import Foundation
import StepHostCore
import Synchronization

/// Where this host records the step each of its passes is about to run, without a database write: a small
/// file beside the database, shared-mapped into memory, one file per host process (`<database>-running-<n>`).
///
/// The record has to outlive the host process, not the machine (exactly what the claim's `running_step`
/// column written with `synchronous=OFF` gave): a store to a shared mapping is in the kernel's page cache the
/// moment it is made, so another process reads it even after this one is killed mid-step. Writing it costs a
/// copy into memory, where the database write cost a transaction per step.
///
/// Layout: page 0 holds the owner (`ClaimOwner`) as text; each later page is one slot, `UInt32` length then
/// `<operation id>\n<RunningStep JSON>`; length 0 is a free slot. Only the owning process writes; readers (the
/// next host, `operations show`) read whole slots and check what they read, so a slot torn by a death in the
/// middle of a write reads as an unknown step, never as another operation's.
final class RunningStepBoard: Sendable {
    static let pageSize = 4096
    static let slotCount = 256

    private struct State {
        var mapping: UnsafeMutableRawPointer?
        var path: String?
        /// The slot of each operation that has a record.
        var slots: [String: Int] = [:]
        var free: [Int] = Array((1...RunningStepBoard.slotCount).reversed())
    }

    private let database: String
    private let owner: String
    private let state: Mutex<State>

    /// Files of boards this process made, removed when it exits normally.
    private static let ownFiles = Mutex<Set<String>>([])
    private static let removeAtExit: Void = { atexit { RunningStepBoard.removeOwnFiles() } }()

    init(database: String, owner: ClaimOwner) {
        self.database = Self.resolved(database)
        self.owner = owner.description
        state = Mutex(State())
    }

    deinit {
        state.withLock { state in
            if let mapping = state.mapping {
                munmap(mapping, Self.pageSize * (Self.slotCount + 1))
            }
            if let path = state.path {
                unlink(path)
                _ = Self.ownFiles.withLock { $0.remove(path) }
            }
        }
    }

    /// Records `step` as what the pass of `operationID` runs now. `false` when it cannot (the file cannot be
    /// made, every slot is taken, the record does not fit): the caller records it in the database instead.
    func record(operationID: String, step: RunningStep) -> Bool {
        guard !operationID.utf8.contains(0x0A), let json = try? step.json() else { return false }
        let payload = Array((operationID + "\n" + json).utf8)
        guard payload.count <= Self.pageSize - 4 else { return false }
        return state.withLock { state in
            guard let mapping = Self.mapping(&state, database: database, owner: owner) else { return false }
            let slot: Int
            if let taken = state.slots[operationID] {
                slot = taken
            } else {
                guard let next = state.free.popLast() else { return false }
                state.slots[operationID] = next
                slot = next
            }
            let page = mapping + slot * Self.pageSize
            // Emptied first, filled, then given its length: a reader never takes a half-written record for a whole.
            page.storeBytes(of: UInt32(0), as: UInt32.self)
            payload.withUnsafeBytes { (page + 4).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            atomicFence()
            page.storeBytes(of: UInt32(payload.count), as: UInt32.self)
            return true
        }
    }

    /// The pass of `operationID` ended: its record goes.
    func clear(operationID: String) {
        state.withLock { state in
            guard let slot = state.slots.removeValue(forKey: operationID), let mapping = state.mapping else { return }
            (mapping + slot * Self.pageSize).storeBytes(of: UInt32(0), as: UInt32.self)
            state.free.append(slot)
        }
    }

    private static func mapping(_ state: inout State, database: String, owner: String) -> UnsafeMutableRawPointer? {
        if let mapping = state.mapping { return mapping }
        _ = removeAtExit
        let size = pageSize * (slotCount + 1)
        for number in 0..<64 {
            let path = "\(database)-running-\(getpid())-\(number)"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }
                return nil
            }
            defer { close(fd) }
            guard ftruncate(fd, off_t(size)) == 0 else {
                unlink(path)
                return nil
            }
            let header = Array(owner.utf8.prefix(pageSize - 4))
            var length = UInt32(header.count)
            guard pwrite(fd, &length, 4, 0) == 4,
                header.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 4) }) == header.count
            else {
                unlink(path)
                return nil
            }
            guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
                mapping != MAP_FAILED
            else {
                unlink(path)
                return nil
            }
            state.mapping = mapping
            state.path = path
            _ = ownFiles.withLock { $0.insert(path) }
            return mapping
        }
        return nil
    }

    private static func removeOwnFiles() {
        for path in ownFiles.withLock({ $0 }) { unlink(path) }
    }

    // MARK: - Reading other hosts' boards

    /// The database's path with symbolic links resolved: every host names and finds boards after the same file,
    /// whichever path it was given (SQLite resolves them too, for its `-wal` and `-shm`).
    static func resolved(_ database: String) -> String {
        guard let real = realpath(database, nil) else { return database }
        defer { free(real) }
        return String(cString: real)
    }

    /// The boards beside `database`: their paths and owners.
    static func boards(of database: String) -> [(path: String, owner: String)] {
        let url = URL(fileURLWithPath: resolved(database))
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + "-running-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { $0.hasPrefix(prefix) }.compactMap { name in
            let path = directory + "/" + name
            guard let header = read(path, offset: 0) else { return nil }
            return (path, String(decoding: header, as: UTF8.self))
        }
    }

    /// What `owner`'s board says the pass of `operationID` runs: `nil` when no board of that owner has a
    /// record of it. A record that cannot be read (torn by a death mid-write) is an unknown step.
    static func running(database: String, owner: String, operationID: String, at now: Date) -> RunningStep? {
        let key = Array((operationID + "\n").utf8)
        for board in boards(of: database) where board.owner == owner {
            for slot in 1...slotCount {
                guard let payload = read(board.path, offset: slot * pageSize), payload.starts(with: key) else {
                    continue
                }
                // Read as the claim's column is: a torn record names an unknown step, never an error.
                return SQLiteOperationStore.runningStep(
                    String(decoding: payload.dropFirst(key.count), as: UTF8.self),
                    at: now
                )
            }
        }
        return nil
    }

    /// Removes the boards of hosts on this machine that are dead and hold no claim any more.
    static func removeStale(database: String, claimOwners: Set<String>) {
        for board in boards(of: database)
        where !claimOwners.contains(board.owner) && ClaimOwner(board.owner).isDeadLocalProcess {
            unlink(board.path)
        }
    }

    /// The length-prefixed bytes at `offset` of the board at `path`. Only a regular file of a board's exact size
    /// is read (a FIFO, a device, a link or a huge file planted under a board's name is not: opening never
    /// blocks, and at most one slot is read).
    private static func read(_ path: String, offset: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) == pageSize * (slotCount + 1)
        else { return nil }
        var length: UInt32 = 0
        guard pread(fd, &length, 4, off_t(offset)) == 4, length > 0, Int(length) <= pageSize - 4 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset + 4)) }
        return count == Int(length) ? bytes : nil
    }
}

/// A full memory fence: the slot's bytes are in memory before its length says they are there.
private func atomicFence() {
    let fence = Atomic<Int>(0)
    _ = fence.add(0, ordering: .sequentiallyConsistent)
}
