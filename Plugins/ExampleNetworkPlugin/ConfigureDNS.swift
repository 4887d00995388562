import StepHostPluginKit

/// Points the runtime's DNS at the requested domain and hands the DNS provider's key to the
/// `dns` component as a secret override.
struct ConfigureDNS: Step {
    let name = "configure_dns"
    let weight = 50

    private struct Parameters: Decodable {
        var name: String
        var domain: String?
    }

    func run(_ operation: ProvisioningOperation) throws -> Outcome {
        let parameters = try operation.parameters(as: Parameters.self)
        let domain = parameters.domain ?? "\(parameters.name).example.com"
        try operation.addOverride(component: "dns", key: "domain", value: domain)
        // Secret: stephost never writes this value to its database, logs or output.
        try operation.addOverride(
            component: "dns",
            key: "provider.apiKey",
            value: "dns-key-\(operation.instanceID)",
            secret: true
        )
        try operation.addLabel(key: "stephost.io/domain", value: domain)
        return .done
    }
}
