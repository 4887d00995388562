import StepHostABI

import struct FoundationEssentials.Data
import class FoundationEssentials.JSONDecoder
import class FoundationEssentials.JSONEncoder

/// The operation a step runs for, as the host passed it for this one call.
///
/// Reads come from the operation the host sent; writes (fields, overrides, labels, logs,
/// checkpoints) go straight to the host, which copies them. The object is valid only during
/// ``Step/run(_:)``: do not keep it.
public final class ProvisioningOperation {
    /// The operation's id.
    public let id: String
    /// The service instance the operation provisions.
    public let instanceID: String
    /// The operation's type, for example `provision`.
    public let type: String
    /// The pass this call belongs to: 1 on the first, and every retry starts a new pass from the first step.
    public let pass: Int
    /// The provisioning parameters, with the host's defaults applied (a parameter the request left out has the
    /// value the provisioning request will use).
    public let parameters: [String: JSONValue]
    /// The names of the parameters whose values are the host's defaults, not the request's.
    public let defaultedParameters: Set<String>
    /// The custom step fields, including those this step set during this run.
    public private(set) var fields: [String: JSONValue]

    /// The call's context, passed back to every callback.
    private let context: UnsafeMutableRawPointer?
    /// The host's callbacks for this call, copied as far as the host declared them: one past that is `nil`.
    private let services: stephost_call_services
    private let servicesSize: Int

    /// What the step did, when the operation was made for a test (``init(id:instanceID:type:pass:parameters:defaultedParameters:fields:)``);
    /// `nil` for an operation the host passed.
    public let recording: StepRecording?

    /// An operation for a unit test of a step, with no host behind it: every write the step makes is kept in
    /// ``recording`` instead of being sent, and reads see the writes made so far, as they do in a host.
    ///
    /// ```swift
    /// let operation = ProvisioningOperation(parameters: ["name": "demo", "region": "europe-west4"])
    /// #expect(try MyStep().run(operation) == .done)
    /// #expect(operation.recording?.fields["subnet"] == "10.250.0.0/22")
    /// ```
    ///
    /// - Parameter parameters: as a host passes them: the request's parameters with the host's defaults applied
    ///   (see the README's step contract); give what your step reads.
    public init(
        id: String = "test-operation",
        instanceID: String = "test-instance",
        type: String = "provision",
        pass: Int = 1,
        parameters: [String: JSONValue] = [:],
        defaultedParameters: Set<String> = [],
        fields: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.instanceID = instanceID
        self.type = type
        self.pass = pass
        self.parameters = parameters
        self.defaultedParameters = defaultedParameters
        self.fields = fields
        context = nil
        services = stephost_call_services()
        servicesSize = 0
        recording = StepRecording()
    }

    init(call: UnsafePointer<stephost_step_call>) throws {
        // Both structs are checked against the version this plugin chose, then copied as far as both sides
        // know them: a host built against an older header passes smaller ones.
        let version = HostStructs.negotiatedVersion
        var hostCall = stephost_step_call()
        if let problem = HostStructs.stepCall.read(call, version: version, into: &hostCall) { throw problem }
        guard let servicesPointer = hostCall.services, let json = hostCall.operation_json else {
            throw PluginKitError("the host passed a step call without services or operation JSON")
        }
        var services = stephost_call_services()
        if let problem = HostStructs.callServices.read(servicesPointer, version: version, into: &services) {
            throw problem
        }
        self.services = services
        servicesSize = Int(UnsafeRawPointer(servicesPointer).load(as: UInt32.self))
        context = hostCall.ctx
        recording = nil
        let bytes = UnsafeRawBufferPointer(start: json, count: hostCall.operation_json_len)
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw PluginKitError("the operation JSON from the host cannot be read: \(error)")
        }
        id = document.id
        instanceID = document.instance_id
        type = document.type
        pass = document.pass
        parameters = document.parameters ?? [:]
        defaultedParameters = Set(document.defaulted_parameters ?? [])
        fields = document.fields ?? [:]
    }

    /// Decodes the provisioning parameters into your own type.
    public func parameters<T: Decodable>(as type: T.Type) throws -> T {
        try Self.decode(type, from: .object(parameters), what: "the parameters")
    }

    /// The custom field `key`, or `nil` when no step has set it.
    public func field(_ key: String) -> JSONValue? {
        fields[key]
    }

    /// Decodes the custom field `key` into your own type, or returns `nil` when it is not set.
    public func field<T: Decodable>(_ key: String, as type: T.Type) throws -> T? {
        guard let value = fields[key] else { return nil }
        return try Self.decode(type, from: value, what: "field '\(key)'")
    }

    /// Sets the custom field `key`. The host persists it after the step, or at ``checkpoint()``.
    public func setField(_ key: String, _ value: some Encodable) throws {
        let data: Data
        do {
            data = try JSONEncoder().encode(value)
        } catch {
            throw PluginKitError("field '\(key)' cannot be encoded as JSON: \(error)")
        }
        if let recording {
            let value = try JSONDecoder().decode(JSONValue.self, from: data)
            recording.fields[key] = value
            recording.removedFields.removeAll { $0 == key }
            fields[key] = value
            return
        }
        let setField = try callback(\.set_field, "set_field")
        let status = key.withUTF8Buffer { keyBuffer in
            data.withUnsafeBytes { json in
                setField(
                    context,
                    keyBuffer.baseAddress,
                    keyBuffer.count,
                    json.baseAddress?.assumingMemoryBound(to: CChar.self),
                    json.count
                )
            }
        }
        try Self.check(status, "setting field '\(key)'")
        fields[key] = try? JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Removes the custom field `key`.
    public func removeField(_ key: String) throws {
        if let recording {
            recording.fields[key] = nil
            if !recording.removedFields.contains(key) { recording.removedFields.append(key) }
            fields[key] = nil
            return
        }
        let removeField = try callback(\.remove_field, "remove_field")
        let status = key.withUTF8Buffer { removeField(context, $0.baseAddress, $0.count) }
        try Self.check(status, "removing field '\(key)'")
        fields[key] = nil
    }

    /// Adds an override for one component. A later override of the same component and key replaces this one.
    ///
    /// - Parameter secret: the value is a secret: the host never writes it to its database, logs or output.
    public func addOverride(component: String, key: String, value: String, secret: Bool = false) throws {
        if let recording {
            recording.overrides.append(.init(component: component, key: key, value: value, secret: secret))
            return
        }
        let add = try callback(\.add_component_override, "add_component_override")
        let status = component.withUTF8Buffer { component in
            key.withUTF8Buffer { key in
                value.withUTF8Buffer { value in
                    add(
                        context,
                        component.baseAddress,
                        component.count,
                        key.baseAddress,
                        key.count,
                        value.baseAddress,
                        value.count,
                        secret ? 1 : 0
                    )
                }
            }
        }
        try Self.check(status, "adding override '\(key)' for component '\(component)'")
    }

    /// Adds an override that applies to every component.
    public func addGlobalOverride(key: String, value: String, secret: Bool = false) throws {
        if let recording {
            recording.overrides.append(.init(component: nil, key: key, value: value, secret: secret))
            return
        }
        let add = try callback(\.add_global_override, "add_global_override")
        let status = key.withUTF8Buffer { key in
            value.withUTF8Buffer { value in
                add(context, key.baseAddress, key.count, value.baseAddress, value.count, secret ? 1 : 0)
            }
        }
        try Self.check(status, "adding global override '\(key)'")
    }

    /// Adds a label to the runtime.
    public func addLabel(key: String, value: String) throws {
        if let recording {
            recording.labels.append(.init(key: key, value: value))
            return
        }
        let add = try callback(\.add_label, "add_label")
        let status = key.withUTF8Buffer { key in
            value.withUTF8Buffer { value in
                add(context, key.baseAddress, key.count, value.baseAddress, value.count)
            }
        }
        try Self.check(status, "adding label '\(key)'")
    }

    /// Persists the fields set so far, before the step returns.
    public func checkpoint() throws {
        if let recording {
            recording.checkpoints += 1
            return
        }
        let checkpoint = try callback(\.checkpoint, "checkpoint")
        try Self.check(checkpoint(context), "checkpoint")
    }

    /// Writes a line to the host's log, attributed to this step and operation.
    public func log(_ level: LogLevel, _ message: String) {
        if let recording {
            recording.logs.append(.init(level: level, message: message))
            return
        }
        guard let log = try? callback(\.log, "log") else { return }
        message.withUTF8Buffer { log(context, level.rawValue, $0.baseAddress, $0.count) }
    }

    /// Whether the step has passed its deadline (ABI 1.1): a long step checks it now and then and returns once
    /// it is `true`; the host has failed the operation and stopped waiting. `false` on a host that does not offer it.
    public var isCancelled: Bool {
        guard let isCancelled = try? callback(\.is_cancelled, "is_cancelled") else { return false }
        return isCancelled(context) != 0
    }

    func setRetryAfter(milliseconds: UInt64) {
        guard let setRetryAfter = try? callback(\.set_retry_after, "set_retry_after") else { return }
        setRetryAfter(context, milliseconds)
    }

    func setError(_ message: String) {
        guard let setError = try? callback(\.set_error, "set_error") else { return }
        message.withUTF8Buffer { setError(context, $0.baseAddress, $0.count) }
    }

    /// One callback, if the host offers it: a callback past the table's struct_size was copied as `nil`.
    private func callback<F>(_ field: KeyPath<stephost_call_services, F?>, _ name: String) throws -> F {
        guard let function = services[keyPath: field] else {
            throw PluginKitError("the host does not offer '\(name)' (call services struct_size \(servicesSize))")
        }
        return function
    }

    private static func check(_ status: stephost_status, _ what: String) throws {
        switch status {
        case STEPHOST_STATUS_OK: return
        case STEPHOST_STATUS_INVALID_ARGUMENT: throw PluginKitError("the host refused \(what): invalid argument")
        default: throw PluginKitError("the host refused \(what) (status \(status))")
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: JSONEncoder().encode(value))
        } catch {
            throw PluginKitError("\(what) cannot be read as \(T.self): \(error)")
        }
    }

    private struct Document: Decodable {
        var id: String
        var instance_id: String
        var type: String
        var pass: Int
        var parameters: [String: JSONValue]?
        var defaulted_parameters: [String]?
        var fields: [String: JSONValue]?
    }
}

/// What a step did to an operation made for a test: the fields it set and removed, its overrides, labels and
/// log lines, and how many times it checkpointed.
public final class StepRecording {
    /// An override the step added; `component` is `nil` for a global one.
    public struct Override: Hashable, Sendable {
        public var component: String?
        public var key: String
        public var value: String
        public var secret: Bool
    }
    public struct Label: Hashable, Sendable {
        public var key: String
        public var value: String
    }
    public struct LogLine: Hashable, Sendable {
        public var level: LogLevel
        public var message: String
    }

    /// Fields the step set, with their last value.
    public internal(set) var fields: [String: JSONValue] = [:]
    /// Fields the step removed (and did not set again).
    public internal(set) var removedFields: [String] = []
    public internal(set) var overrides: [Override] = []
    public internal(set) var labels: [Label] = []
    public internal(set) var logs: [LogLine] = []
    public internal(set) var checkpoints = 0

    init() {}
}

extension String {
    /// Calls `body` with this string's UTF-8 bytes as the C pointer and length the ABI takes.
    fileprivate func withUTF8Buffer<R>(_ body: (UnsafeBufferPointer<CChar>) -> R) -> R {
        var copy = self
        return copy.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self, body)
        }
    }
}
