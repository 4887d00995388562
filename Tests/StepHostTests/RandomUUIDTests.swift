import Foundation
import StepHostCore
import Testing

/// Operation and runtime ids come from `getrandom` (no descriptor needed), as version-4 UUIDs. (That they work
/// with no descriptor left is not tested here: exhausting descriptors would break the tests running beside it.)
@Suite("Random UUIDs")
struct RandomUUIDTests {
    @Test func theyAreVersionFourAndDistinct() {
        let ids = (0..<10_000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            let text = id.uuidString.lowercased()
            #expect(
                text.range(
                    of: #"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"#,
                    options: .regularExpression
                ) != nil,
                "\(text)"
            )
        }
    }
}
