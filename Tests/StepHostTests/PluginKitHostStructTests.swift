import Foundation
import Glibc
import StepHostABI
import Testing

/// What a host written in this test saw a plugin do.
private final class TestHost {
    var reported: [String] = []
    var fieldKeys: [String] = []
    var errors: [String] = []
    /// Every callback of a step call, counted.
    var callbacks = 0
}

private func testHost(_ context: UnsafeMutableRawPointer?) -> TestHost {
    Unmanaged<TestHost>.fromOpaque(context!).takeUnretainedValue()
}

private func text(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String {
    String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
}

/// `value` at the start of a buffer `extra` bytes longer than its type, the rest 0xA5 garbage, with
/// `struct_size` set to `declared` (by default the whole buffer: a newer host's larger struct). A smaller
/// `declared` leaves the real fields past it in place, where the plugin must not look.
private func withHostStruct<T: BitwiseCopyable, R>(
    _ value: T,
    extra: Int = 16,
    declared: Int? = nil,
    _ body: (UnsafeMutableRawPointer) throws -> R
) rethrows -> R {
    let size = MemoryLayout<T>.size + extra
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<T>.alignment)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
    buffer.storeBytes(of: value, as: T.self)
    buffer.storeBytes(of: UInt32(declared ?? size), as: UInt32.self)
    return try body(buffer)
}

/// The Swift plugin kit reads the structs the host writes (the offer, the services tables, the step call) by
/// the same rule as the host reads the plugin's: a larger struct (a newer host) is read as far as the kit knows
/// it, and a struct below the minimum of the chosen version is refused. The plugin is the example `audit`
/// plugin as SwiftPM built it with the kit; the host is this test.
@Suite("The plugin kit reads the host's structs")
struct PluginKitHostStructTests {
    /// The entry point of the example `audit` plugin, loaded into the test process once.
    static func entry() throws -> stephost_plugin_init_fn {
        let path = try Paths.examplePlugin("ExampleAuditPlugin").path
        let handle = try #require(dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE), "dlopen \(path)")
        let symbol = try #require(dlsym(handle, STEPHOST_ENTRY_SYMBOL))
        return unsafeBitCast(symbol, to: stephost_plugin_init_fn.self)
    }

    static let descriptorSize = MemoryLayout<stephost_plugin_descriptor>.size

    /// Calls the plugin's init with an offer and services `extra` bytes larger than this host's header knows
    /// (or declared smaller), and a descriptor of `capacity` bytes followed by 16 bytes of 0x5A. Returns the
    /// status and the descriptor's bytes, the 16 included.
    private static func initialize(
        _ host: TestHost,
        offerDeclared: Int? = nil,
        servicesDeclared: Int? = nil,
        capacity: Int = descriptorSize + 16,
        offered: (min: UInt32, max: UInt32) = (stephost_abi_version(1, 0), stephost_abi_version(1, 0))
    ) throws -> (stephost_status, [UInt8]) {
        let entry = try entry()
        let services = stephost_host_services(
            struct_size: 0,
            ctx: Unmanaged.passUnretained(host).toOpaque(),
            report_error: { context, message, length in testHost(context).reported.append(text(message, length)) },
            log: { _, _, _, _ in }
        )
        return withHostStruct(services, declared: servicesDeclared) { services in
            let offer = stephost_host_offer(
                struct_size: 0,
                abi_min: offered.min,
                abi_max: offered.max,
                services: UnsafePointer(services.assumingMemoryBound(to: stephost_host_services.self))
            )
            return withHostStruct(offer, declared: offerDeclared) { offer in
                var descriptor = [UInt8](repeating: 0, count: capacity) + [UInt8](repeating: 0x5A, count: 16)
                let status = descriptor.withUnsafeMutableBytes { bytes in
                    bytes.storeBytes(of: UInt32(capacity), as: UInt32.self)
                    return entry(
                        offer.assumingMemoryBound(to: stephost_host_offer.self),
                        bytes.baseAddress!.assumingMemoryBound(to: stephost_plugin_descriptor.self)
                    )
                }
                return (status, descriptor)
            }
        }
    }

    /// Runs the plugin's first step (`open_audit_ticket`) with a step call and call services `extra` bytes larger
    /// than this host's header knows, or declared smaller.
    private static func runFirstStep(
        _ host: TestHost,
        callDeclared: Int? = nil,
        servicesDeclared: Int? = nil
    ) throws -> stephost_outcome {
        let (status, bytes) = try initialize(TestHost())
        try #require(status == STEPHOST_STATUS_OK)
        let descriptor = bytes.withUnsafeBytes { $0.load(as: stephost_plugin_descriptor.self) }
        let step = try #require(descriptor.steps?[0]?.pointee)
        let run = try #require(step.run)
        let services = stephost_call_services(
            struct_size: 0,
            set_field: { context, key, keyLength, _, _ in
                testHost(context).callbacks += 1
                testHost(context).fieldKeys.append(text(key, keyLength))
                return STEPHOST_STATUS_OK
            },
            remove_field: { context, _, _ in
                testHost(context).callbacks += 1
                return STEPHOST_STATUS_OK
            },
            add_component_override: { context, _, _, _, _, _, _, _ in
                testHost(context).callbacks += 1
                return STEPHOST_STATUS_OK
            },
            add_global_override: { context, _, _, _, _, _ in
                testHost(context).callbacks += 1
                return STEPHOST_STATUS_OK
            },
            add_label: { context, _, _, _, _ in
                testHost(context).callbacks += 1
                return STEPHOST_STATUS_OK
            },
            log: { context, _, _, _ in testHost(context).callbacks += 1 },
            checkpoint: { context in
                testHost(context).callbacks += 1
                return STEPHOST_STATUS_OK
            },
            set_retry_after: { context, _ in testHost(context).callbacks += 1 },
            set_error: { context, message, length in
                testHost(context).callbacks += 1
                testHost(context).errors.append(text(message, length))
            },
            is_cancelled: { context in
                testHost(context).callbacks += 1
                return 0
            }
        )
        let json = Array(
            #"{"id":"op-1","instance_id":"i","type":"provision","pass":1,"parameters":{},"fields":{}}"#.utf8
        )
        return withHostStruct(services, declared: servicesDeclared) { services in
            json.withUnsafeBufferPointer { json in
                json.withMemoryRebound(to: CChar.self) { json in
                    let call = stephost_step_call(
                        struct_size: 0,
                        operation_json: json.baseAddress,
                        operation_json_len: json.count,
                        ctx: Unmanaged.passUnretained(host).toOpaque(),
                        services: UnsafePointer(services.assumingMemoryBound(to: stephost_call_services.self))
                    )
                    return withHostStruct(call, declared: callDeclared) { call in
                        withExtendedLifetime(host) {
                            run(step.step_ctx, call.assumingMemoryBound(to: stephost_step_call.self))
                        }
                    }
                }
            }
        }
    }

    /// A newer host's larger offer, services and descriptor capacity: the plugin negotiates, writes the
    /// descriptor at its own size and leaves the rest of the capacity alone.
    @Test func largerHostStructsAreAcceptedAndTheDescriptorIsWrittenAtThePluginsSize() throws {
        let host = TestHost()
        let (status, bytes) = try Self.initialize(host)
        #expect(status == STEPHOST_STATUS_OK, "\(host.reported)")
        #expect(host.reported.isEmpty)
        let descriptor = bytes.withUnsafeBytes { $0.load(as: stephost_plugin_descriptor.self) }
        #expect(Int(descriptor.struct_size) == Self.descriptorSize)
        #expect(descriptor.abi_version == stephost_abi_version(1, 0))
        #expect(text(descriptor.name, descriptor.name_len) == "audit")
        #expect(descriptor.step_count == 2)
        #expect(bytes[Self.descriptorSize..<Self.descriptorSize + 16].allSatisfy { $0 == 0 }, "written past its size")
        #expect(bytes.suffix(16).allSatisfy { $0 == 0x5A }, "written past the host's capacity")
    }

    /// A newer host's larger step call and call services: the step runs and reaches the host's callbacks.
    @Test func largerStepCallStructsAreAccepted() throws {
        let host = TestHost()
        let outcome = try Self.runFirstStep(host)
        #expect(outcome == STEPHOST_OUTCOME_DONE, "\(host.errors)")
        #expect(host.fieldKeys == ["audit_ticket"])
    }

    /// A descriptor capacity below what the chosen version writes is refused through report_error, with the
    /// struct, the size and the minimum; nothing is written into it.
    @Test func descriptorCapacityBelowTheMinimumIsRefusedWithTheSizes() throws {
        let host = TestHost()
        let (status, bytes) = try Self.initialize(host, capacity: 48)
        #expect(status == STEPHOST_STATUS_ERROR)
        #expect(
            host.reported == [
                "the host's stephost_plugin_descriptor struct_size is 48 bytes; ABI 1.0 needs at least 56 "
                    + "(stephost_plugin_descriptor up to and including step_count)"
            ]
        )
        #expect(bytes[4..<48].allSatisfy { $0 == 0 } && bytes.suffix(16).allSatisfy { $0 == 0x5A })
    }

    /// A services table below its minimum is refused, reported through what the table does hold.
    @Test func hostServicesBelowTheMinimumAreRefusedWithTheSizes() throws {
        let host = TestHost()
        let (status, _) = try Self.initialize(host, servicesDeclared: 24)
        #expect(status == STEPHOST_STATUS_ERROR)
        #expect(
            host.reported == [
                "the host's stephost_host_services struct_size is 24 bytes; ABI 1.0 needs at least 32 "
                    + "(stephost_host_services up to and including log)"
            ]
        )
    }

    /// An offer of another major: the kit refuses it, saying so with both versions and its name, and writes its
    /// own version and name (no steps) into the descriptor, so the host reports an `abi-version` mismatch under
    /// the plugin's name.
    @Test func anOfferOfAnotherMajorIsRefusedWithTheKitsVersionAndName() throws {
        let host = TestHost()
        let two = stephost_abi_version(2, 0)
        let (status, bytes) = try Self.initialize(host, offered: (two, two))
        #expect(status == STEPHOST_STATUS_ERROR)
        let kit = "\(STEPHOST_ABI_CURRENT_MAJOR).\(STEPHOST_ABI_CURRENT_MINOR)"
        #expect(
            host.reported == [
                "plugin 'audit' was built for ABI \(kit); the host offers 2.0 to 2.0. Rebuild the plugin against "
                    + "this host's stephost.h."
            ]
        )
        let descriptor = bytes.withUnsafeBytes { $0.load(as: stephost_plugin_descriptor.self) }
        let identityEnd = MemoryLayout<stephost_plugin_descriptor>.offset(of: \.version_len)! + 8
        #expect(Int(descriptor.struct_size) == identityEnd)
        #expect(
            descriptor.abi_version
                == stephost_abi_version(UInt32(STEPHOST_ABI_CURRENT_MAJOR), UInt32(STEPHOST_ABI_CURRENT_MINOR))
        )
        #expect(text(descriptor.name, descriptor.name_len) == "audit")
        #expect(descriptor.steps == nil && descriptor.step_count == 0)
        #expect(bytes.suffix(16).allSatisfy { $0 == 0x5A }, "written past the host's capacity")
    }

    /// An offer too small to hold the services is refused; there is nothing to report through.
    @Test func offerBelowTheMinimumIsRefused() throws {
        let host = TestHost()
        let (status, _) = try Self.initialize(host, offerDeclared: 16)
        #expect(status == STEPHOST_STATUS_ERROR)
        #expect(host.reported.isEmpty)
    }

    /// Call services without set_error (below the 1.0 minimum) are refused: the step fails without calling any
    /// callback, not even one that lies inside what the host declared.
    @Test func callServicesBelowTheMinimumFailTheStepWithoutACallback() throws {
        let host = TestHost()
        let withoutSetError = MemoryLayout<stephost_call_services>.offset(of: \stephost_call_services.set_error)!
        let outcome = try Self.runFirstStep(host, servicesDeclared: withoutSetError)
        #expect(outcome == STEPHOST_OUTCOME_FAIL)
        #expect(host.callbacks == 0)
    }

    /// A step call too small to hold its services fails the step; the services past its size are not used.
    @Test func stepCallBelowTheMinimumFailsTheStepWithoutACallback() throws {
        let host = TestHost()
        let outcome = try Self.runFirstStep(host, callDeclared: 32)
        #expect(outcome == STEPHOST_OUTCOME_FAIL)
        #expect(host.callbacks == 0)
    }
}
