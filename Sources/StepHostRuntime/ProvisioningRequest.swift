import Foundation
public import StepHostCore

/// The Runtime Provisioner's `ProvisionRuntimeInput`, as `create_runtime` sends it.
///
/// Field names and nesting follow the GraphQL schema (`runtimeInput`, `clusterConfig.gardenerConfig`,
/// `kymaConfig`); optional fields without a value are left out.
public struct ProvisioningRequest: Sendable, Hashable, Encodable {
    public struct RuntimeInput: Sendable, Hashable, Encodable {
        public var name: String
        public var description: String?
        public var labels: [String: String]?
    }

    public struct ClusterConfig: Sendable, Hashable, Encodable {
        public var gardenerConfig: GardenerConfig
    }

    public struct GardenerConfig: Sendable, Hashable, Encodable {
        public var kubernetesVersion: String
        public var volumeSizeGB: Int
        public var machineType: String
        public var region: String
        public var provider: String
        public var purpose: String?
        public var licenceType: String?
        public var targetSecret: String
        public var diskType: String
        public var workerCidr: String
        public var autoScalerMin: Int
        public var autoScalerMax: Int
        public var maxSurge: Int
        public var maxUnavailable: Int
        public var providerSpecificConfig: ProviderSpecific
        public var seed: String?
    }

    public struct ProviderSpecific: Sendable, Hashable, Encodable {
        public struct GCP: Sendable, Hashable, Encodable { public var zones: [String] }
        public struct Azure: Sendable, Hashable, Encodable {
            public var vnetCidr: String
            public var zones: [String]?
        }
        public struct AWS: Sendable, Hashable, Encodable {
            public var zone: String
            public var vpcCidr: String
            public var publicCidr: String
            public var internalCidr: String
        }
        public var gcpConfig: GCP?
        public var azureConfig: Azure?
        public var awsConfig: AWS?
    }

    public struct ConfigEntry: Sendable, Hashable, Encodable {
        public var key: String
        public var value: String
        public var secret: Bool?
    }

    public struct Component: Sendable, Hashable, Encodable {
        public var component: String
        public var namespace: String
        public var configuration: [ConfigEntry]?
        public var sourceURL: String?
    }

    public struct KymaConfig: Sendable, Hashable, Encodable {
        public var version: String
        public var components: [Component]
        public var configuration: [ConfigEntry]?
    }

    public var runtimeInput: RuntimeInput
    public var clusterConfig: ClusterConfig
    public var kymaConfig: KymaConfig

    /// The label that carries the operation id, so the provisioner side can deduplicate too.
    public static let operationLabel = "stephost.io/operation-id"
    /// The label that names components that got overrides but were not declared in the parameters.
    public static let undeclaredComponentsLabel = "stephost.io/undeclared-components"

    /// Builds the request from the parameters and what the pass's steps contributed.
    ///
    /// Components come from the parameters' `components`, in that order; a component that got overrides
    /// without being declared is added in `defaultNamespace` and named in the
    /// `stephost.io/undeclared-components` label, never dropped.
    public init(parameters: ProvisioningParameters, input: InputCreator, operationID: String) {
        var labels = parameters.labels
        for (key, value) in input.labels { labels[key] = value }
        labels[Self.operationLabel] = operationID

        var components = parameters.components.map { declared in
            Component(
                component: declared.name,
                namespace: declared.namespace,
                configuration: input.componentOverrides[declared.name].map(Self.entries),
                sourceURL: declared.sourceURL
            )
        }
        let declared = Set(parameters.components.map(\.name))
        let undeclared = input.components.filter { !declared.contains($0) }
        for name in undeclared {
            components.append(
                Component(
                    component: name,
                    namespace: parameters.defaultNamespace,
                    configuration: input.componentOverrides[name].map(Self.entries),
                    sourceURL: nil
                )
            )
        }
        if !undeclared.isEmpty { labels[Self.undeclaredComponentsLabel] = undeclared.joined(separator: ",") }

        var providerSpecific = ProviderSpecific()
        switch parameters.provider {
        case "azure": providerSpecific.azureConfig = .init(vnetCidr: parameters.vnetCidr, zones: parameters.zones)
        case "aws":
            providerSpecific.awsConfig = .init(
                zone: parameters.zones[0],
                vpcCidr: parameters.vpcCidr,
                publicCidr: parameters.publicCidr,
                internalCidr: parameters.internalCidr
            )
        default: providerSpecific.gcpConfig = .init(zones: parameters.zones)
        }

        runtimeInput = RuntimeInput(name: parameters.name, description: parameters.description, labels: labels)
        clusterConfig = ClusterConfig(
            gardenerConfig: GardenerConfig(
                kubernetesVersion: parameters.kubernetesVersion,
                volumeSizeGB: parameters.volumeSizeGB,
                machineType: parameters.machineType,
                region: parameters.region,
                provider: parameters.provider,
                purpose: parameters.purpose,
                licenceType: parameters.licenceType,
                targetSecret: parameters.targetSecret,
                diskType: parameters.diskType,
                workerCidr: parameters.workerCidr,
                autoScalerMin: parameters.autoScalerMin,
                autoScalerMax: parameters.autoScalerMax,
                maxSurge: parameters.maxSurge,
                maxUnavailable: parameters.maxUnavailable,
                providerSpecificConfig: providerSpecific,
                seed: parameters.seed
            )
        )
        kymaConfig = KymaConfig(
            version: parameters.kymaVersion,
            components: components,
            configuration: input.globalOverrides.isEmpty ? nil : Self.entries(input.globalOverrides)
        )
    }

    private static func entries(_ overrides: [StepHostCore.Override]) -> [ConfigEntry] {
        overrides.map { ConfigEntry(key: $0.key, value: $0.value, secret: $0.secret ? true : nil) }
    }

    /// The same request with every secret value replaced by `<redacted>`, for the database and output.
    public var redacted: ProvisioningRequest {
        var copy = self
        func redact(_ entries: [ConfigEntry]?) -> [ConfigEntry]? {
            entries?.map { $0.secret == true ? ConfigEntry(key: $0.key, value: "<redacted>", secret: true) : $0 }
        }
        copy.kymaConfig.components = kymaConfig.components.map { component in
            var component = component
            component.configuration = redact(component.configuration)
            return component
        }
        copy.kymaConfig.configuration = redact(kymaConfig.configuration)
        return copy
    }

    /// Compact JSON with sorted keys.
    ///
    /// - Throws: the encoder's error; never swallowed, so no empty request is ever stored in place of the real one.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
