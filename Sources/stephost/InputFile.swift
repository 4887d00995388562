import Foundation

/// The file an `@FILE` option names (`provision --parameters @FILE`, `check-plugin --operation @FILE`), read
/// through one descriptor: only a regular file of at most `limit` bytes is read. A FIFO, a device or a directory is
/// refused without a read (a FIFO with no writer would block the command forever, `/dev/zero` would never end).
enum InputFile {
    enum Failure: Error {
        /// There is no such file.
        case missing(reason: String)
        /// It exists but cannot be used: the reason, for the message.
        case unusable(reason: String)
    }

    static func read(_ path: String, limit: Int) -> Result<Data, Failure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            return .failure(errno == ENOENT ? .missing(reason: reason) : .unusable(reason: reason))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failure(.unusable(reason: "it is not a regular file"))
        }
        guard info.st_size <= limit else {
            return .failure(.unusable(reason: "it is \(info.st_size) bytes, more than the \(limit) read from it"))
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        do {
            let data = try handle.read(upToCount: limit + 1) ?? Data()
            guard data.count <= limit else { return .failure(.unusable(reason: "it grew past \(limit) bytes")) }
            return .success(data)
        } catch {
            return .failure(.unusable(reason: "it cannot be read"))
        }
    }
}
