public import StepHostABI
import StepHostPluginKit

/// The `network` example plugin: allocates a subnet for the runtime and configures DNS.
@c @implementation
public func stephost_plugin_init(
    _ offer: UnsafePointer<stephost_host_offer>?,
    _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
) -> stephost_status {
    Plugin(name: "network", version: "1.2.0", steps: [AllocateSubnet(), ConfigureDNS()]).export(offer, descriptor)
}
