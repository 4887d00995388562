import Foundation
import Testing

/// `stephost.h` binds well from C and C++ with gcc and clang: typed constants usable in `case` labels, lengths of
/// literals counted by the compiler, nullability that clang checks, and a layout every compiler must agree with.
@Suite("The plugin header in C and C++")
struct HeaderTests {
    /// A plugin source that uses what the header offers a C or C++ author.
    static let source = """
        #include "stephost.h"
        static stephost_outcome run(void *STEPHOST_NULLABLE step_ctx, const stephost_step_call *STEPHOST_NONNULL call) {
            (void)step_ctx;
            call->services->log(call->ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL("started"));
            stephost_status status = call->services->set_field(call->ctx, STEPHOST_LITERAL("k"), STEPHOST_LITERAL("1"));
            switch (status) {
            case STEPHOST_STATUS_OK: return STEPHOST_OUTCOME_DONE;
            case STEPHOST_STATUS_INVALID_ARGUMENT: return STEPHOST_OUTCOME_FAIL;
            default: return STEPHOST_OUTCOME_RETRY;
            }
        }
        stephost_step_run_fn STEPHOST_NULLABLE entry(void);
        stephost_step_run_fn STEPHOST_NULLABLE entry(void) { return run; }
        #define SECOND_(first, second) second
        #define SECOND(pair) SECOND_(pair)
        #ifdef __cplusplus
        static_assert(SECOND(STEPHOST_LITERAL("sixteen bytes...")) == 16, "the compiler counts the literal");
        #else
        _Static_assert(SECOND(STEPHOST_LITERAL("sixteen bytes...")) == 16, "the compiler counts the literal");
        #endif

        """

    static func compile(_ compiler: String, _ flags: [String], source: String = source) throws -> ProcessResult {
        let directory = try TemporaryDirectory()
        let file = directory.file(flags.contains("c++") ? "plugin.cpp" : "plugin.c")
        try source.write(to: file, atomically: true, encoding: .utf8)
        return try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [compiler] + flags + ["-Wall", "-Wextra", "-Werror", "-I", Paths.includeDirectory.path, "-c", file.path]
                + ["-o", directory.file("plugin.o").path]
        )
    }

    @Test(arguments: [
        ("gcc", ["-std=c11", "-pedantic"]), ("clang", ["-std=c11"]), ("g++", ["-std=c++17", "-x", "c++"]),
        ("clang", ["-std=c++17", "-x", "c++"]),
    ])
    func compilesWithoutAWarning(compiler: String, flags: [String]) throws {
        let result = try Self.compile(compiler, flags)
        #expect(result.status == 0, "\(compiler) \(flags): \(result.stderr)")
    }

    /// Under clang the nullability is real: passing NULL where the header says never NULL is a warning.
    @Test func clangWarnsAboutNullWhereTheHeaderSaysNonnull() throws {
        let result = try Self.compile(
            "clang",
            ["-std=c11"],
            source: Self.source
                + "stephost_status bad(void);\nstephost_status bad(void) { return stephost_plugin_init(0, 0); }\n"
        )
        #expect(result.status != 0)
        #expect(result.stderr.contains("null passed to a callee that requires a non-null argument"), "\(result.stderr)")
    }

    /// STEPHOST_LITERAL takes a literal only: a pointer, whose length the compiler cannot count, does not compile.
    @Test func aLiteralLengthCannotBeTakenOfAPointer() throws {
        let result = try Self.compile(
            "gcc",
            ["-std=c11"],
            source: Self.source + """
                void say(const stephost_call_services *STEPHOST_NONNULL s, void *STEPHOST_NULLABLE ctx, const char *text);
                void say(const stephost_call_services *STEPHOST_NONNULL s, void *STEPHOST_NULLABLE ctx, const char *text) {
                    s->log(ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL(text));
                }

                """
        )
        #expect(result.status != 0)
        #expect(result.stderr.contains("error"), "\(result.stderr)")
    }

    /// The layout checks bite: a header whose struct is not the size it asserts does not compile, and says which.
    @Test func aLayoutThatDiffersFromTheAssertedOneDoesNotCompile() throws {
        let header = try String(contentsOf: Paths.header, encoding: .utf8)
        let directory = try TemporaryDirectory()
        // A field inserted after weight: name moves from 8 to 16, the struct grows from 40 to 48.
        let moved = header.replacingOccurrences(
            of: "    int32_t weight;\n",
            with: "    int32_t weight;\n    uint64_t inserted;\n"
        )
        try #require(moved != header)
        try moved.write(to: directory.file("stephost.h"), atomically: true, encoding: .utf8)
        try "#include \"stephost.h\"\n".write(to: directory.file("plugin.c"), atomically: true, encoding: .utf8)
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["gcc", "-std=c11", "-I", directory.path, "-c", directory.file("plugin.c").path, "-o", "/dev/null"]
        )
        #expect(result.status != 0)
        #expect(
            result.stderr.contains("offsetof(stephost_step_descriptor, name) must be 8 on LP64"),
            "\(result.stderr)"
        )
        #expect(result.stderr.contains("sizeof(stephost_step_descriptor) must be 40 on LP64"), "\(result.stderr)")
    }
}
