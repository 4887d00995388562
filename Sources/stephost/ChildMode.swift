import Foundation
import StepHostLoader

/// The hidden modes of the `stephost` binary that the host starts as children: `__scanner` loads unknown
/// plugins and reports them, `__runner` serves one plugin's steps (see `RunnerChild`). They are not commands for
/// people: they speak a binary protocol on descriptors 3 and 4 and take the plugins' sealed copies from 5 on.
enum ChildMode {
    /// The exit status of the child mode named by `arguments`, or `nil` when they name none.
    static func run(_ arguments: [String]) -> Int32? {
        guard arguments.count > 1, arguments[1] == "__runner" || arguments[1] == "__scanner" else { return nil }
        var files: [(name: String, hash: String)] = []
        var values: [String: String] = [:]
        var index = 2
        while index + 1 < arguments.count {
            let (key, value) = (arguments[index], arguments[index + 1])
            if key == "--file" {
                files.append((value, ""))
            } else if key == "--hash", !files.isEmpty {
                files[files.count - 1].hash = value
            } else {
                values[key] = value
            }
            index += 2
        }
        guard values["--protocol"] == "1", let parent = values["--parent"].flatMap(Int32.init), !files.isEmpty else {
            FileHandle.standardError.write(Data("stephost: \(arguments[1]) is started by the host only\n".utf8))
            return 64
        }
        let limits = ResourceLimits(
            addressSpace: values["--address-space"].flatMap(UInt64.init),
            cpuSeconds: values["--cpu-seconds"].flatMap(UInt64.init),
            openFiles: values["--open-files"].flatMap(UInt64.init)
        )
        if arguments[1] == "__scanner" {
            return RunnerChild.scan(files: files, parent: parent, limits: limits)
        }
        return RunnerChild.run(file: files[0].name, hash: files[0].hash, parent: parent, limits: limits)
    }
}
