import Foundation

/// The provisioning parameters of an operation, validated, with every default applied.
///
/// Parameters are one JSON object. Keys this type does not know are kept for the steps, which read
/// the parameters too (for example `domain` for the example `network` plugin).
public struct ProvisioningParameters: Sendable, Hashable {
    /// The largest parameters document accepted, in bytes.
    public static let maximumSize = 64 * 1024

    /// A component the requester declares, with the namespace it installs into.
    public struct Component: Sendable, Hashable {
        public let name: String
        public let namespace: String
        public let sourceURL: String?
    }

    public let name: String
    public let description: String
    public let labels: [String: String]
    public let provider: String
    public let region: String
    public let machineType: String
    public let diskType: String
    public let volumeSizeGB: Int
    public let kubernetesVersion: String
    public let kymaVersion: String
    public let targetSecret: String
    public let workerCidr: String
    public let autoScalerMin: Int
    public let autoScalerMax: Int
    public let maxSurge: Int
    public let maxUnavailable: Int
    public let purpose: String?
    public let licenceType: String?
    public let seed: String?
    public let zones: [String]
    public let vnetCidr: String
    public let vpcCidr: String
    public let publicCidr: String
    public let internalCidr: String
    public let components: [Component]
    /// The namespace of components that overrides name but the parameters do not declare.
    public let defaultNamespace: String
    /// The whole parameters object as compact JSON with sorted keys, unknown keys included, as requested: what
    /// is stored.
    public let json: String
    /// The parameters with the host's defaults applied: ``json`` with a member for every parameter the request
    /// left out (or set to null) that has a default. What steps receive as `parameters`.
    public let effectiveJSON: String
    /// The top-level parameters whose values in ``effectiveJSON`` are the host's defaults, sorted: what steps
    /// receive as `defaulted_parameters`.
    public let defaultedKeys: [String]

    /// The providers the request can target.
    public static let providers = ["gcp", "azure", "aws"]

    /// Parses and validates `json`; every problem is named at once.
    public init(json: String) throws(ParametersError) {
        try self.init(json: json, stored: false)
    }

    /// Reads parameters as a store kept them: the text ``json`` had when they were accepted, which is kept as it
    /// is instead of being checked for Unicode key forms and written back sorted again (the costly part of reading
    /// an operation back, and already done when it was accepted). Anything else is checked as by ``init(json:)``.
    public init(storedJSON json: String) throws(ParametersError) {
        try self.init(json: json, stored: true)
    }

    private init(json: String, stored: Bool) throws(ParametersError) {
        guard json.utf8.count <= Self.maximumSize else {
            throw ParametersError(
                .tooLarge,
                ["the parameters are \(json.utf8.count) bytes; at most \(Self.maximumSize) are accepted"]
            )
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ParametersError(.malformed, ["the parameters are not valid JSON: \(Self.reason(error))"])
        }
        guard let object = parsed as? [String: Any] else {
            throw ParametersError(
                .notAnObject,
                ["the parameters must be a JSON object like {\"name\": \"my-runtime\"}"]
            )
        }
        // Two keys that differ in bytes but that Unicode calls the same text would silently become one (the
        // reader's keys are Swift strings): refuse them, naming both.
        if !stored, let members = try? JSONText.members(of: json), members.count != object.count {
            var seen: [String: FieldKey] = [:]
            var clashes: [String] = []
            for key in members.keys.sorted() {
                if let earlier = seen[key.string] {
                    clashes.append("\(JSONText.quote(earlier.string)) and \(JSONText.quote(key.string))")
                } else {
                    seen[key.string] = key
                }
            }
            if !clashes.isEmpty {
                throw ParametersError(
                    .malformed,
                    [
                        "the parameters have keys that differ only in their Unicode form ("
                            + clashes.joined(separator: ", ")
                            + "), so one would silently replace the other; write each key once"
                    ]
                )
            }
        }
        do {
            self.json = stored ? json : try JSONText.compact(object)
        } catch {
            throw ParametersError(.malformed, ["the parameters cannot be written back as JSON: \(Self.reason(error))"])
        }
        var reader = Reader(object: object)
        let name = reader.string("name", required: true) ?? ""
        if !name.isEmpty && !Self.isDNSLabel(name) {
            reader.problems.append(
                "name '\(name)' must be a DNS label: 1 to 63 characters of a-z, 0-9 and '-', starting and ending "
                    + "with a letter or digit"
            )
        }
        self.name = name
        description = reader.string("description") ?? "Runtime \(name), provisioned by stephost"
        labels = reader.stringMap("labels") ?? [:]
        let provider = reader.string("provider") ?? "gcp"
        if !Self.providers.contains(provider) {
            reader.problems.append("provider '\(provider)' is not one of \(Self.providers.joined(separator: ", "))")
        }
        self.provider = provider
        let defaults = ProviderDefaults(provider)
        region = reader.string("region") ?? defaults.region
        machineType = reader.string("machineType") ?? defaults.machineType
        diskType = reader.string("diskType") ?? defaults.diskType
        volumeSizeGB = reader.int("volumeSizeGB", minimum: 1) ?? 50
        kubernetesVersion = reader.string("kubernetesVersion") ?? "1.29"
        kymaVersion = reader.string("kymaVersion") ?? "2.20.0"
        targetSecret = reader.string("targetSecret") ?? "stephost-\(provider)-credentials"
        workerCidr = reader.string("workerCidr") ?? "10.250.0.0/16"
        autoScalerMin = reader.int("autoScalerMin", minimum: 1) ?? 2
        autoScalerMax = reader.int("autoScalerMax", minimum: 1) ?? 10
        if autoScalerMin > autoScalerMax {
            reader.problems.append("autoScalerMin (\(autoScalerMin)) is above autoScalerMax (\(autoScalerMax))")
        }
        maxSurge = reader.int("maxSurge", minimum: 0) ?? 4
        maxUnavailable = reader.int("maxUnavailable", minimum: 0) ?? 1
        purpose = reader.string("purpose")
        licenceType = reader.string("licenceType")
        seed = reader.string("seed")
        zones = reader.stringList("zones") ?? defaults.zones(region: region)
        vnetCidr = reader.string("vnetCidr") ?? workerCidr
        vpcCidr = reader.string("vpcCidr") ?? "10.250.0.0/16"
        publicCidr = reader.string("publicCidr") ?? "10.250.32.0/20"
        internalCidr = reader.string("internalCidr") ?? "10.250.48.0/20"
        defaultNamespace = reader.string("defaultNamespace") ?? "kyma-system"
        components = reader.components("components", defaultNamespace: defaultNamespace)
        if !reader.problems.isEmpty { throw ParametersError(.invalid, reader.problems) }
        // The defaults as JSON members, for the parameters the request left out: appended to the stored text
        // (cheaper than writing the whole object again on every read of an operation).
        let quote = JSONText.quote
        let list = { (items: [String]) in "[" + items.map(quote).joined(separator: ",") + "]" }
        let defaultMembers: [(key: String, json: String)] = [
            ("autoScalerMax", "\(autoScalerMax)"), ("autoScalerMin", "\(autoScalerMin)"),
            ("components", "[]"), ("defaultNamespace", quote(defaultNamespace)), ("description", quote(description)),
            ("diskType", quote(diskType)), ("internalCidr", quote(internalCidr)),
            ("kubernetesVersion", quote(kubernetesVersion)), ("kymaVersion", quote(kymaVersion)), ("labels", "{}"),
            ("machineType", quote(machineType)), ("maxSurge", "\(maxSurge)"), ("maxUnavailable", "\(maxUnavailable)"),
            ("provider", quote(provider)), ("publicCidr", quote(publicCidr)), ("region", quote(region)),
            ("targetSecret", quote(targetSecret)), ("vnetCidr", quote(vnetCidr)), ("volumeSizeGB", "\(volumeSizeGB)"),
            ("vpcCidr", quote(vpcCidr)), ("workerCidr", quote(workerCidr)), ("zones", list(zones)),
        ]
        let missing = defaultMembers.filter { object[$0.key] == nil || object[$0.key] is NSNull }
        defaultedKeys = missing.map(\.key)
        if missing.isEmpty {
            effectiveJSON = self.json
        } else if !missing.contains(where: { object[$0.0] is NSNull }), self.json.hasSuffix("}") {
            let members = missing.map { "\(quote($0.0)):\($0.1)" }.joined(separator: ",")
            effectiveJSON = String(self.json.dropLast()) + (object.isEmpty ? "" : ",") + members + "}"
        } else {
            // A default for a member given as null: written again whole, the null replaced.
            var filled = object
            for (key, value) in missing {
                filled[key] = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])
            }
            effectiveJSON = (try? JSONText.compact(filled)) ?? self.json
        }
    }

    private static func isDNSLabel(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func alnum(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
        return alnum(bytes.first!) && alnum(bytes.last!) && bytes.allSatisfy { alnum($0) || $0 == 0x2D }
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
    }
}

/// Defaults that depend on the provider.
private struct ProviderDefaults {
    var region: String
    var machineType: String
    var diskType: String
    let provider: String

    init(_ provider: String) {
        self.provider = provider
        switch provider {
        case "azure": (region, machineType, diskType) = ("westeurope", "Standard_D8_v3", "Standard_LRS")
        case "aws": (region, machineType, diskType) = ("eu-central-1", "m5.2xlarge", "gp2")
        default: (region, machineType, diskType) = ("europe-west3", "n2-standard-8", "pd-standard")
        }
    }

    func zones(region: String) -> [String] {
        switch provider {
        case "azure": ["1"]
        case "aws": ["\(region)a"]
        default: ["\(region)-a"]
        }
    }
}

/// Reads typed members of the parameters object and collects every problem instead of stopping at the first.
private struct Reader {
    let object: [String: Any]
    var problems: [String] = []

    mutating func string(_ key: String, required: Bool = false) -> String? {
        guard let value = object[key], !(value is NSNull) else {
            if required { problems.append("\(key) is required and has no default") }
            return nil
        }
        guard let text = value as? String, !text.isEmpty else {
            problems.append("\(key) must be a non-empty string")
            return nil
        }
        return text
    }

    /// The provisioner's GraphQL `Int` is 32-bit: a larger value would pass here and fail at create_runtime,
    /// after every step before it ran.
    static let maximumInt = Int(Int32.max)

    mutating func int(_ key: String, minimum: Int) -> Int? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber, !Self.isBool(number), let integer = Int(exactly: number.doubleValue),
            integer >= minimum, integer <= Self.maximumInt
        else {
            problems.append("\(key) must be an integer from \(minimum) to \(Self.maximumInt)")
            return nil
        }
        return integer
    }

    /// An optional string member of one object of a list; a value of another type is a problem, not absent.
    mutating func member(_ entry: [String: Any], _ key: String, at path: String) -> String? {
        guard let value = entry[key], !(value is NSNull) else { return nil }
        guard let text = value as? String, !text.isEmpty else {
            problems.append("\(path).\(key) must be a non-empty string")
            return nil
        }
        return text
    }

    mutating func stringList(_ key: String) -> [String]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any], !list.isEmpty, let strings = list as? [String], !strings.contains("") else {
            problems.append("\(key) must be a non-empty array of non-empty strings")
            return nil
        }
        return strings
    }

    mutating func stringMap(_ key: String) -> [String: String]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let map = value as? [String: Any], let strings = map as? [String: String] else {
            problems.append("\(key) must be an object of string values")
            return nil
        }
        return strings
    }

    mutating func components(_ key: String, defaultNamespace: String) -> [ProvisioningParameters.Component] {
        guard let value = object[key], !(value is NSNull) else { return [] }
        guard let list = value as? [[String: Any]] else {
            problems.append(
                "\(key) must be an array of objects like {\"name\": \"istio\", \"namespace\": \"istio-system\"}"
            )
            return []
        }
        var components: [ProvisioningParameters.Component] = []
        for (index, entry) in list.enumerated() {
            guard let name = entry["name"] as? String, !name.isEmpty else {
                problems.append("\(key)[\(index)].name must be a non-empty string")
                continue
            }
            if components.contains(where: { $0.name == name }) {
                problems.append("\(key)[\(index)]: component '\(name)' is declared twice")
            }
            let path = "\(key)[\(index)]"
            components.append(
                .init(
                    name: name,
                    namespace: member(entry, "namespace", at: path) ?? defaultNamespace,
                    sourceURL: member(entry, "sourceURL", at: path)
                )
            )
        }
        return components
    }

    /// JSONSerialization reads `true` and `false` as NSNumbers of ObjC type `c` (char).
    private static func isBool(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }
}

/// Why parameters were rejected: a code for the exit status and every problem found.
public struct ParametersError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        case malformed
        case notAnObject = "not-an-object"
        case tooLarge = "too-large"
        case invalid
    }

    public let code: Code
    public let problems: [String]

    public init(_ code: Code, _ problems: [String]) {
        self.code = code
        self.problems = problems
    }

    public var description: String {
        "invalid parameters: " + problems.joined(separator: "; ")
    }
}
