public import StepHostABI
import StepHostPluginKit

/// The `audit` example plugin: opens an audit ticket before the runtime is created and closes it after.
@c @implementation
public func stephost_plugin_init(
    _ offer: UnsafePointer<stephost_host_offer>?,
    _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
) -> stephost_status {
    Plugin(name: "audit", version: "0.9.1", steps: [OpenAuditTicket(), CloseAuditTicket()]).export(offer, descriptor)
}

/// Opens an audit ticket once per operation. Same weight as `network`'s `configure_dns`: it runs
/// first because `audit` sorts before `network`.
struct OpenAuditTicket: Step {
    let name = "open_audit_ticket"
    let weight = 50

    func run(_ operation: ProvisioningOperation) throws -> Outcome {
        let ticket: String
        if let existing = operation.field("audit_ticket")?.stringValue {
            ticket = existing
        } else {
            ticket = "AUD-\(operation.id.prefix(8))"
            try operation.setField("audit_ticket", ticket)
        }
        try operation.addLabel(key: "stephost.io/audit-ticket", value: ticket)
        return .done
    }
}

/// Closes the ticket after the runtime exists. Runs after `create_runtime` (weight 150).
struct CloseAuditTicket: Step {
    let name = "close_audit_ticket"
    let weight = 150

    func run(_ operation: ProvisioningOperation) throws -> Outcome {
        guard let ticket = operation.field("audit_ticket")?.stringValue else {
            return .fail("no audit ticket: open_audit_ticket (weight 50) must run before this step")
        }
        if operation.field("audit_closed")?.boolValue == true { return .done }
        try operation.setField("audit_closed", true)
        operation.log(.info, "closed audit ticket \(ticket)")
        return .done
    }
}
