/// The services and plans the broker offers (`GET /v2/catalog`), from the configuration file's `catalog:`, else
/// one built-in service with one plan.
public struct BrokerCatalog: Sendable, Hashable {
    public struct Plan: Sendable, Hashable {
        public var id: String
        public var name: String
        public var description: String

        public init(id: String, name: String, description: String) {
            self.id = id
            self.name = name
            self.description = description
        }
    }

    public struct Service: Sendable, Hashable {
        public var id: String
        public var name: String
        public var description: String
        public var plans: [Plan]

        public init(id: String, name: String, description: String, plans: [Plan]) {
            self.id = id
            self.name = name
            self.description = description
            self.plans = plans
        }
    }

    public var services: [Service]

    public init(services: [Service]) { self.services = services }

    /// The catalog when the configuration file has none.
    public static let builtIn = BrokerCatalog(services: [
        Service(
            id: "stephost-runtime",
            name: "stephost-runtime",
            description: "A runtime provisioned through the stephost step pipeline",
            plans: [Plan(id: "stephost-runtime-default", name: "default", description: "The default plan")]
        )
    ])

    /// The plan with `planID` of the service with `serviceID`, if the catalog offers it.
    public func plan(service serviceID: String, plan planID: String) -> Plan? {
        services.first { $0.id == serviceID }?.plans.first { $0.id == planID }
    }
}
