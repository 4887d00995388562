import Glibc

/// The plugin directory, checked for trust and listed for `*.so` candidates.
///
/// The directory must be a directory owned by root or the host's user and not writable by group or
/// others: whoever can write it can make the host run their code.
struct PluginDirectory {
    /// The directory as the user gave it, for messages.
    let given: String
    /// Its real path (symlinks resolved).
    let realPath: String

    /// A directory entry that may be a plugin.
    struct Candidate {
        /// The path in the directory, for messages.
        var path: String
        /// The entry's name.
        var name: String
    }

    init(_ path: String) throws(PluginDirectoryError) {
        given = path
        guard let resolved = realpath(path, nil) else {
            let reason = String(cString: strerror(errno))
            throw PluginDirectoryError(
                directory: path,
                message: "it cannot be opened (\(reason))",
                fix: "create it and put plugin .so files in it, or pass --plugins-dir / set STEPHOST_PLUGINS_DIR"
            )
        }
        realPath = String(cString: resolved)
        free(resolved)

        let descriptor = open(realPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw PluginDirectoryError(
                directory: path,
                message: "it is not a readable directory (\(reason))",
                fix: "pass the directory that holds the plugin .so files"
            )
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw PluginDirectoryError(directory: path, message: "it cannot be inspected", fix: "check its permissions")
        }
        if let problem = Trust.problem(with: info) {
            throw PluginDirectoryError(
                directory: path,
                message: "refusing to load plugins from it: it \(problem)",
                fix: Trust.fix(for: info, path: realPath)
            )
        }
    }

    /// The `*.so` entries, hidden ones excluded, sorted by name so reports never follow directory order.
    func candidates() throws(PluginDirectoryError) -> [Candidate] {
        guard let stream = opendir(realPath) else {
            let reason = String(cString: strerror(errno))
            throw PluginDirectoryError(
                directory: given,
                message: "it cannot be listed (\(reason))",
                fix: "check its permissions"
            )
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard !name.hasPrefix("."), name.hasSuffix(".so") else { continue }
            names.append(name)
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { name in
            Candidate(path: realPath == "/" ? "/\(name)" : "\(realPath)/\(name)", name: name)
        }
    }
}

/// The ownership and permission rules for the plugin directory and the plugin files.
enum Trust {
    /// Why a file or directory with these attributes must not be trusted, or `nil` if it may be.
    static func problem(with info: stat) -> String? {
        let mode = info.st_mode & 0o7777
        if mode & S_IWOTH != 0 { return "is writable by others (mode \(octal(mode)))" }
        if mode & S_IWGRP != 0 { return "is writable by its group (mode \(octal(mode)))" }
        if info.st_uid != 0 && info.st_uid != geteuid() {
            return "is owned by uid \(info.st_uid), neither root nor the host's user (uid \(geteuid()))"
        }
        return nil
    }

    /// The command that makes a file or directory with these attributes trusted.
    static func fix(for info: stat, path: String) -> String {
        if info.st_mode & (S_IWOTH | S_IWGRP) != 0 { return "run `chmod go-w \(path)`" }
        return "run `chown \(geteuid()) \(path)` or install it as root"
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// The trust rules as `stephost check-plugin` applies them to a file before it is deployed.
public enum PluginTrust {
    /// Why the host would refuse the file or directory at `path` as it is now (ownership or mode), with the
    /// command that fixes it; `nil` when it may be trusted or cannot be read (then the load says why).
    public static func problem(path: String) -> (problem: String, fix: String)? {
        var info = stat()
        guard stat(path, &info) == 0, let problem = Trust.problem(with: info) else { return nil }
        return (problem, Trust.fix(for: info, path: path))
    }
}

extension PluginTrust {
    /// As ``problem(path:)``, for the file open at `descriptor` (what was opened is what is judged).
    public static func problem(descriptor: Int32, path: String) -> (problem: String, fix: String)? {
        var info = stat()
        guard fstat(descriptor, &info) == 0, let problem = Trust.problem(with: info) else { return nil }
        return (problem, Trust.fix(for: info, path: path))
    }
}
