import Foundation
import Glibc
import Synchronization
import Testing

/// Failures found by attacking `stephost serve` from the outside (attack10). Each test states what should hold.
@Suite("Serve: attacks from outside", .serialized)
struct ServeAttackTests {
    /// GET /plugins and GET / read the quarantine list with a synchronous GRDB read (`quarantinedPluginsNow()`) on a
    /// cooperative-pool thread. GRDB's async reads release their reader only once their continuation runs on the
    /// cooperative pool; when every pool thread is parked in the synchronous read waiting for a reader, no reader is
    /// ever released: the whole process (HTTP and engine) stops for good. Ordinary traffic does it: a platform
    /// polling last_operation while an operator or two look at /plugins.
    @Test func concurrentPluginListingsAndPollsDoNotWedgeTheServer() throws {
        let directory = try TemporaryDirectory("stephost-attack")
        let plugins = try servePlugins(directory)
        let server = try ServedHost(directory, plugins: plugins)
        let created = try server.provision("poll-1", ["name": "poll-1"])
        #expect(created.status == 202, "\(created)")

        let cores = ProcessInfo.processInfo.activeProcessorCount
        let stop = Date().addingTimeInterval(12)
        let timeouts = HungRequests()
        // 12 pollers (async reads: more than GRDB's 5 readers) and more /plugins readers than the pool has threads.
        let paths =
            Array(repeating: "/v2/service_instances/poll-1/last_operation", count: 12)
            + Array(repeating: "/plugins", count: cores + 4)
        // Threads of their own: Dispatch's global queue runs only about as many blocking items at once as there are
        // cores, too few to load the server.
        let finished = DispatchGroup()
        for path in paths {
            finished.enter()
            let thread = Thread {
                defer { finished.leave() }
                while Date() < stop {
                    do {
                        _ = try LoopbackHTTP.send(
                            port: server.port,
                            "GET",
                            path,
                            headers: [("Authorization", ServedHost.authorization), ("X-Broker-API-Version", "2.16")],
                            timeout: 10
                        )
                    } catch {
                        timeouts.count.add(1, ordering: .relaxed)
                        return
                    }
                }
            }
            thread.start()
        }
        finished.wait()
        #expect(timeouts.count.load(ordering: .relaxed) == 0, "requests hung")
        let health = try? LoopbackHTTP.send(port: server.port, "GET", "/healthz", timeout: 5)
        #expect(health?.status == 200, "the server no longer answers /healthz: \(String(describing: health))")
    }

    /// /readyz says "ready" (and stephost_database_up is 1) while the database file has been deleted: every
    /// operation accepted from then on (202) is written to an unlinked file and gone at the next start.
    @Test func readinessNoticesTheDatabaseFileIsGone() throws {
        let directory = try TemporaryDirectory("stephost-attack")
        let plugins = try servePlugins(directory)
        let server = try ServedHost(directory, plugins: plugins)
        #expect(try server.request("GET", "/readyz", authenticated: false, broker: false).status == 200)
        for suffix in ["", "-wal", "-shm"] { unlink(server.databasePath + suffix) }
        let ready = try server.request("GET", "/readyz", authenticated: false, broker: false)
        #expect(ready.status == 503, "/readyz with the database file deleted: \(ready)")
    }

    /// /readyz says "not ready" when the database file can no longer be written (made immutable here, as a full or
    /// read-only file system would), and "ready" again once it can: its check is a real write.
    @Test func readinessNoticesTheDatabaseNoLongerTakesWrites() throws {
        let directory = try TemporaryDirectory("stephost-attack")
        let plugins = try servePlugins(directory)
        let server = try ServedHost(directory, plugins: plugins)
        #expect(try server.request("GET", "/readyz", authenticated: false, broker: false).status == 200)
        // The database and its WAL, not the -shm file: SQLite maps that one into memory, and a write to a mapped page
        // of an immutable file is a SIGBUS in any process that uses SQLite.
        let files = ["", "-wal"].map { server.databasePath + $0 }
        let frozen = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["chattr", "+i"] + files)
        try #require(frozen.status == 0, "chattr +i failed (root on ext4 is needed): \(frozen.stderr)")
        defer { _ = try? runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["chattr", "-i"] + files) }
        let ready = try server.request("GET", "/readyz", authenticated: false, broker: false)
        #expect(ready.status == 503, "/readyz with an immutable database: \(ready)")
        _ = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["chattr", "-i"] + files)
        let again = try eventually(within: 30) {
            try server.request("GET", "/readyz", authenticated: false, broker: false).status == 200
        }
        #expect(again, "not ready again once the file can be written")
    }

    /// A server holds a descriptor per connection: it raises its soft open-file limit to the hard one at start (read
    /// back from /proc), and headers past the parser's own cap (4 × 16 KiB) are refused before any handler runs.
    @Test func theServerRaisesItsDescriptorLimitAndCapsHeaders() throws {
        let directory = try TemporaryDirectory("stephost-attack")
        // Started with a soft limit below the hard one, as a login shell's 1024 would be.
        let server = try ServedHost(
            directory,
            plugins: try servePlugins(directory),
            launcher: ["prlimit", "--nofile=512:8192"]
        )
        let limits = try String(contentsOfFile: "/proc/\(server.process.processIdentifier)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        #expect(numbers == [8192, 8192], "the soft open-file limit was not raised to the hard one: \(line)")
        let huge = try LoopbackHTTP.send(
            port: server.port,
            "GET",
            "/healthz",
            headers: [("X-Padding", String(repeating: "p", count: 70 * 1024))]
        )
        #expect(huge.status == 400 || huge.status == 431, "\(huge)")
        #expect(try server.request("GET", "/healthz", authenticated: false, broker: false).status == 200)
    }

    /// HTTP connections that never send a request (or send their headers one byte at a time) are kept forever: no
    /// idle or header timeout. A client that holds enough of them exhausts the process's descriptors; then runner
    /// processes cannot be started (their operations fail for good: "no pipe could be made") and UUID() returns
    /// 00000000-0000-4000-8000-000000000000 for every new operation (the second PUT is a 500 UNIQUE constraint).
    @Test func idleConnectionsAreClosedEventually() throws {
        let directory = try TemporaryDirectory("stephost-attack")
        let plugins = try servePlugins(directory)
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--idle-timeout", "2"])
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(server.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0)
        // Half a request line, then silence: a slowloris client.
        _ = "GET /healthz HTTP/1.1\r\nHost: x\r\n".withCString { write(socket, $0, strlen($0)) }
        var wait = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        let started = Date()
        let count = read(socket, &byte, 1)
        // 0 (closed) or an answer (408) within 60 s (its idle timeout is 2 s); -1 with EAGAIN means the server
        // still holds it.
        #expect(count >= 0, "the server still held a silent half-request after \(Date().timeIntervalSince(started)) s")
    }
}

/// How many requests got no answer.
private final class HungRequests: Sendable {
    let count = Atomic<Int>(0)
}
