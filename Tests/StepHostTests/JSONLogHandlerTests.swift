import Foundation
import Logging
import StepHostApplication
import Synchronization
import Testing

/// `--log-format json` line by line, whatever the message and metadata hold.
@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func everyLineIsOneJSONObjectWithItsTextIntact() throws {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(label: "stephost") { line in lines.withLock { $0.append(line) } }
        handler.logLevel = .debug
        let logger = Logger(label: "stephost") { _ in handler }
        let hostile = "line one\nforged: {\"level\":\"critical\"}\r\u{1b}[2J\u{9b}31m\u{7f}\u{0} \"q\" \\ é"
        logger.error(
            "\(hostile)",
            metadata: ["operation": "op-1", "step": "\(hostile)", "plugin": "net", "level": "forged", "message": "x"]
        )
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n") && line.dropLast().allSatisfy { $0 != "\n" && $0 != "\r" })
        for scalar in line.unicodeScalars.dropLast() {
            #expect(
                scalar.value >= 0x20 && !(0x7F...0x9F).contains(scalar.value),
                "a raw control character \(scalar.value)"
            )
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == hostile)
        #expect(object["step"] as? String == hostile)
        #expect(object["level"] as? String == "error" && object["meta.level"] as? String == "forged")
        #expect(object["meta.message"] as? String == "x" && object["operation"] as? String == "op-1")
        let timestamp = try #require(object["timestamp"] as? String)
        #expect(timestamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
    }
}
