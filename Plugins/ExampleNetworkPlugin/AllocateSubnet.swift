import StepHostPluginKit

/// Allocates the runtime's node subnet once and remembers it in the operation.
///
/// The KEB pattern: check the persisted field first, do the work only if it is missing, store the
/// result, and add the overrides on every pass (overrides are rebuilt each pass, never persisted).
struct AllocateSubnet: Step {
    let name = "allocate_subnet"
    let weight = 20

    func run(_ operation: ProvisioningOperation) throws -> Outcome {
        let subnet: String
        if let allocated = operation.field("subnet")?.stringValue {
            operation.log(.info, "subnet \(allocated) was allocated by an earlier pass")
            subnet = allocated
        } else {
            subnet = Self.subnet(for: operation.instanceID)
            try operation.setField("subnet", subnet)
            // Persist before anything else can fail: a repeated pass must find the same subnet.
            try operation.checkpoint()
            operation.log(.info, "allocated subnet \(subnet)")
        }
        try operation.addOverride(component: "istio", key: "gateway.nodeSubnet", value: subnet)
        return .done
    }

    /// A stable /22 out of 10.0.0.0/8, derived from the instance id (FNV-1a), so re-runs agree.
    static func subnet(for instanceID: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in instanceID.utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        let block = hash % 16_384  // 2^14 blocks of /22 in a /8
        return "10.\(block >> 6).\((block & 0x3F) << 2).0/22"
    }
}
