import Glibc
import StepHostSystem

/// The protocol between the host and a runner or scanner child: frames over a pair of pipes.
///
/// A frame is a 4-byte little-endian payload length, then the payload: a 1-byte message type and its fields.
/// Numbers are little-endian; a ``Blob`` (a plugin's pointer and length) is a kind byte, the length the plugin
/// declared (8 bytes), the count of bytes sent (4 bytes) and those bytes. Every frame is bounded: a reader refuses
/// a length above its limit before it reads the payload, so a broken or hostile child cannot make the host
/// allocate more. The child's first frame is `hello` (or `loadFailed`), carrying the protocol version it speaks;
/// the host refuses any other version.
enum RunnerProtocol {
    /// The version of this protocol; the host names it on the child's command line and the child repeats it.
    static let version: UInt32 = 1

    /// The largest frame the host accepts from a child: three 1 MiB texts (an override) and their headers.
    static let maximumChildFrame = 4 << 20
    /// The largest frame a child accepts from the host: an operation document (parameters and custom fields).
    static let maximumHostFrame = 32 << 20

    enum Message: UInt8 {
        // Host to child.
        case run = 0x01
        case reply = 0x02
        // Child to host, at start.
        case hello = 0x10
        case loadFailed = 0x11
        case scanning = 0x12
        // Child to host, during a call: the ABI's callbacks.
        case setField = 0x20
        case removeField = 0x21
        case componentOverride = 0x22
        case globalOverride = 0x23
        case label = 0x24
        case log = 0x25
        case checkpoint = 0x26
        case retryAfter = 0x27
        case setError = 0x28
        case isCancelled = 0x29
        case misuse = 0x2A
        case result = 0x30
    }

    /// A pointer and length a plugin passed, as the child saw them: the bytes, unless the pointer was null or
    /// the length above what the host would read anyway (then only the declared length travels).
    struct Blob {
        enum Kind: UInt8 {
            case null = 0
            case bytes = 1
            case notSent = 2
        }
        var kind: Kind
        var declared: UInt64
        var bytes: [UInt8]

        static func text(_ text: String) -> Blob {
            let bytes = Array(text.utf8)
            return Blob(kind: .bytes, declared: UInt64(bytes.count), bytes: bytes)
        }

        var string: String { String(decoding: bytes, as: UTF8.self) }

        /// Checks the text against what the host's reader for it reads at most (`readLimit`: its limit, or 64 KiB
        /// for a message, 0 for a message of an implausible length): a child that sent fewer bytes than the reader
        /// would read is refused, so the host never reads past what arrived.
        func check(readLimit: Int) throws(ProtocolError) {
            guard kind != .null else { return }
            // Left behind by the child because it is longer than the reader reads: the reader refuses it by its
            // length alone and never reads the bytes. Left behind below that length, it is a lie.
            if kind == .notSent && declared > UInt64(readLimit) { return }
            let required = Int(min(declared, UInt64(readLimit)))
            guard bytes.count >= required else {
                throw ProtocolError("a text of \(declared) bytes arrived with only \(bytes.count) of them")
            }
        }

        /// Calls `body` with a pointer and length that the host's readers (``Names``) treat exactly as they would
        /// the plugin's own. Only after ``check(readLimit:)``. A null pointer stays null; a text whose bytes were
        /// not sent (its length is above what the reader reads) gets a pointer that is never read.
        func withPointer<R>(_ body: (UnsafePointer<CChar>?, Int) -> R) -> R {
            let length = Int(bitPattern: UInt(declared))
            if kind == .null { return body(nil, length) }
            if bytes.isEmpty {
                var placeholder: CChar = 0
                return withUnsafePointer(to: &placeholder) { body($0, length) }
            }
            return bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress, length) }
            }
        }
    }

    /// Builds a frame.
    struct Writer {
        private(set) var bytes: [UInt8]

        init(_ message: Message) {
            bytes = [0, 0, 0, 0, message.rawValue]
        }

        mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
        mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

        mutating func blob(_ blob: Blob) {
            bytes.append(blob.kind.rawValue)
            u64(blob.declared)
            u32(UInt32(blob.bytes.count))
            bytes.append(contentsOf: blob.bytes)
        }

        mutating func text(_ text: String) { blob(.text(text)) }

        /// The frame, its length in front.
        var frame: [UInt8] {
            var frame = bytes
            let length = UInt32(frame.count - 4).littleEndian
            withUnsafeBytes(of: length) { frame.replaceSubrange(0..<4, with: $0) }
            return frame
        }
    }

    /// Reads the fields of one received frame; every read is bounds-checked.
    struct Reader {
        let payload: [UInt8]
        private var offset = 1

        init(_ payload: [UInt8]) { self.payload = payload }

        var message: Message? { payload.first.flatMap(Message.init(rawValue:)) }

        mutating func u32() throws(ProtocolError) -> UInt32 {
            guard payload.count - offset >= 4 else { throw ProtocolError("a frame ended inside a number") }
            var value: UInt32 = 0
            for index in 0..<4 { value |= UInt32(payload[offset + index]) << (8 * index) }
            offset += 4
            return value
        }

        mutating func i32() throws(ProtocolError) -> Int32 { Int32(bitPattern: try u32()) }

        mutating func u64() throws(ProtocolError) -> UInt64 {
            let low = UInt64(try u32())
            let high = UInt64(try u32())
            return low | high << 32
        }

        mutating func blob() throws(ProtocolError) -> Blob {
            guard offset < payload.count, let kind = Blob.Kind(rawValue: payload[offset]) else {
                throw ProtocolError("a frame holds an unknown text kind")
            }
            offset += 1
            let declared = try u64()
            let count = Int(try u32())
            guard payload.count - offset >= count else { throw ProtocolError("a frame ended inside a text") }
            let bytes = Array(payload[offset..<offset + count])
            offset += count
            if kind != .bytes && count != 0 { throw ProtocolError("a frame sent bytes for an absent text") }
            return Blob(kind: kind, declared: declared, bytes: bytes)
        }

        /// Throws unless every byte was read: a frame with more in it than its message has is garbage.
        func end() throws(ProtocolError) {
            guard offset == payload.count else {
                throw ProtocolError("a frame holds \(payload.count - offset) bytes more than its message")
            }
        }
    }

    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// How reading a frame ended, when it did not deliver one.
    enum ReadFailure: Error {
        /// The other end closed the pipe (the child exited or crashed).
        case closed
        /// A frame larger than the limit was announced; nothing of it was read.
        case oversized(UInt32)
        /// The frame did not arrive whole before the time given (a child that stalls inside a frame).
        case timedOut
        case failed(Int32)
    }

    /// Reads one frame's payload from `descriptor`, at most `limit` bytes.
    ///
    /// - Parameter writer: a pidfd of the process that writes the pipe: once it has ended and nothing is left to
    ///   read, the read ends as `closed`, even while a process it left behind holds the pipe open.
    /// - Parameter until: when the whole frame must have arrived; `nil` waits as long as it takes (a step call,
    ///   which its deadline bounds by stopping the child).
    static func read(
        from descriptor: Int32,
        limit: Int,
        writer: Int32 = -1,
        until: ContinuousClock.Instant? = nil
    ) -> Result<[UInt8], ReadFailure> {
        var header = [UInt8](repeating: 0, count: 4)
        if let failure = readFully(descriptor, &header, count: 4, writer: writer, until: until) {
            return .failure(failure)
        }
        let length = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
        guard length >= 1, Int(length) <= limit else { return .failure(.oversized(length)) }
        var payload = [UInt8](repeating: 0, count: Int(length))
        if let failure = readFully(descriptor, &payload, count: Int(length), writer: writer, until: until) {
            return .failure(failure)
        }
        return .success(payload)
    }

    private static func readFully(
        _ descriptor: Int32,
        _ buffer: inout [UInt8],
        count: Int,
        writer: Int32 = -1,
        until: ContinuousClock.Instant? = nil
    ) -> ReadFailure? {
        var done = 0
        while done < count {
            if writer >= 0 || until != nil {
                var milliseconds: Int32 = -1
                if let until {
                    let left = ContinuousClock.now.duration(to: until).components
                    milliseconds = Int32(
                        clamping: max(0, left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000)
                    )
                }
                switch stephost_wait_data(descriptor, writer, milliseconds) {
                case 1: break
                case 2: return .closed
                case 0: return .timedOut
                default: return .failed(errno)
                }
            }
            let result = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + done, count - done) }
            if result < 0 && errno == EINTR { continue }
            if result < 0 { return .failed(errno) }
            if result == 0 { return .closed }
            done += result
        }
        return nil
    }

    /// Writes a whole frame; `false` when the other end is gone.
    @discardableResult
    static func write(_ frame: [UInt8], to descriptor: Int32) -> Bool {
        var done = 0
        while done < frame.count {
            let result = frame.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, frame.count - done) }
            if result < 0 && errno == EINTR { continue }
            if result <= 0 { return false }
            done += result
        }
        return true
    }
}
