import StepHostStorage

/// The operation as plugins receive it: `{"id", "instance_id", "type", "attempt", "parameters", "fields"}`.
enum OperationDocument {
    static func json(_ operation: OperationRecord) -> [UInt8] {
        var text = "{\"id\":\(JSONText.quote(operation.id))"
        text += ",\"instance_id\":\(JSONText.quote(operation.instanceID))"
        text += ",\"type\":\(JSONText.quote(operation.type))"
        text += ",\"attempt\":\(operation.attempt)"
        text += ",\"parameters\":\(operation.parameters)"
        text += ",\"fields\":\(JSONText.object(operation.fields))}"
        return Array(text.utf8)
    }
}
