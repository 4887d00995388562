public import StepHostCore

/// The operation as plugins receive it: `{"id", "instance_id", "type", "pass", "attempt", "parameters",
/// "defaulted_parameters", "fields"}` (stephost.h describes each member; "attempt" is the deprecated name of
/// "pass"). "parameters" has the host's defaults applied; "defaulted_parameters" names the members that are
/// defaults rather than the request's.
public enum OperationDocument {
    public static func json(_ operation: OperationRecord, pass: Int) -> [UInt8] {
        var text = "{\"id\":\(JSONText.quote(operation.id))"
        text += ",\"instance_id\":\(JSONText.quote(operation.instanceID))"
        text += ",\"type\":\(JSONText.quote(operation.type))"
        text += ",\"pass\":\(pass)"
        text += ",\"attempt\":\(pass)"
        text += ",\"parameters\":\(operation.parameters.effectiveJSON)"
        text += ",\"defaulted_parameters\":["
        text += operation.parameters.defaultedKeys.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        text += ",\"fields\":\(JSONText.object(operation.fields))}"
        return Array(text.utf8)
    }
}
