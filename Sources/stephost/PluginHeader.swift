import ArgumentParser
import StepHostABIText

/// `stephost plugin-header`: prints the ABI header this host was built with.
struct PluginHeader: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin-header",
        abstract: "Print stephost.h, the C header plugins are built against.",
        discussion: """
            The header is embedded at build time, so it is exactly the contract of this host. Save it and \
            build a C plugin without the stephost sources:
              stephost plugin-header > stephost.h
              cc -shared -fPIC -o myplugin.so myplugin.c
            """
    )

    func run() throws {
        let bytes = UnsafeRawBufferPointer(start: stephost_abi_header_bytes(), count: stephost_abi_header_length())
        print(String(decoding: bytes, as: UTF8.self), terminator: "")
    }
}
