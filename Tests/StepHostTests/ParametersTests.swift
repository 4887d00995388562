import Foundation
import StepHostCore
import StepHostLoader
import StepHostRuntime
import Testing

@Suite("Parameters and the provisioning request")
struct ParametersTests {
    @Test func defaultsFillEveryRequiredRequestField() throws {
        let parameters = try ProvisioningParameters(json: #"{"name":"rt-1"}"#)
        let request = ProvisioningRequest(parameters: parameters, input: InputCreator(), operationID: "op-9")
        let gardener = request.clusterConfig.gardenerConfig
        #expect(gardener.provider == "gcp")
        #expect(gardener.region == "europe-west3")
        #expect(gardener.providerSpecificConfig.gcpConfig?.zones == ["europe-west3-a"])
        #expect(gardener.autoScalerMin == 2 && gardener.autoScalerMax == 10)
        #expect(request.kymaConfig.version == "2.20.0")
        #expect(request.runtimeInput.labels == ["stephost.io/operation-id": "op-9"])
    }

    @Test func providerSpecificConfigFollowsTheProvider() throws {
        let aws = try ProvisioningParameters(json: #"{"name":"rt","provider":"aws","region":"us-east-1"}"#)
        let request = ProvisioningRequest(parameters: aws, input: InputCreator(), operationID: "op")
        #expect(request.clusterConfig.gardenerConfig.providerSpecificConfig.awsConfig?.zone == "us-east-1a")
        #expect(request.clusterConfig.gardenerConfig.providerSpecificConfig.gcpConfig == nil)
        #expect(request.clusterConfig.gardenerConfig.machineType == "m5.2xlarge")
    }

    @Test(arguments: [
        ("{", ParametersError.Code.malformed, "the parameters are not valid JSON"),
        ("[1,2]", .notAnObject, "the parameters must be a JSON object"),
        (#""name""#, .notAnObject, "the parameters must be a JSON object"),
        ("{}", .invalid, "name is required and has no default"),
        (#"{"name":"Bad_Name"}"#, .invalid, "name 'Bad_Name' must be a DNS label"),
        (#"{"name":"ok","provider":"ibm"}"#, .invalid, "provider 'ibm' is not one of gcp, azure, aws"),
        (
            #"{"name":"ok","autoScalerMin":5,"autoScalerMax":3}"#, .invalid,
            "autoScalerMin (5) is above autoScalerMax (3)"
        ),
        (#"{"name":"ok","volumeSizeGB":true}"#, .invalid, "volumeSizeGB must be an integer from 1 to 2147483647"),
        (#"{"name":"ok","zones":[]}"#, .invalid, "zones must be a non-empty array of non-empty strings"),
    ])
    func badParametersAreRejectedWithTheReason(json: String, code: ParametersError.Code, problem: String) throws {
        let error = try #require(throws: ParametersError.self) { try ProvisioningParameters(json: json) }
        #expect(error.code == code)
        #expect(error.problems.contains { $0.contains(problem) }, "\(error.problems)")
    }

    @Test func everyProblemIsNamedAtOnce() throws {
        let error = try #require(throws: ParametersError.self) {
            try ProvisioningParameters(json: #"{"provider":"ibm","maxSurge":-1}"#)
        }
        #expect(error.problems.count == 3)
    }

    @Test func oversizedParametersAreRejected() throws {
        let json = #"{"name":"x","padding":""# + String(repeating: "a", count: 70_000) + #""}"#
        let error = try #require(throws: ParametersError.self) { try ProvisioningParameters(json: json) }
        #expect(error.code == .tooLarge)
    }

    @Test func laterOverrideReplacesEarlierAndUndeclaredComponentsAreKeptAndNamed() throws {
        var input = InputCreator()
        var first = StepResult(outcome: .done)
        first.componentOverrides = [
            ComponentOverride(component: "istio", override: Override(key: "replicas", value: "1", secret: false)),
            ComponentOverride(component: "vault", override: Override(key: "token", value: "t0p", secret: true)),
        ]
        var second = StepResult(outcome: .done)
        second.componentOverrides = [
            ComponentOverride(component: "istio", override: Override(key: "replicas", value: "3", secret: false))
        ]
        input.apply(first)
        input.apply(second)
        let parameters = try ProvisioningParameters(
            json: #"{"name":"rt","components":[{"name":"istio","namespace":"istio-system"}]}"#
        )
        let request = ProvisioningRequest(parameters: parameters, input: input, operationID: "op")
        let components = request.kymaConfig.components
        #expect(components.map(\.component) == ["istio", "vault"])
        #expect(components[0].namespace == "istio-system")
        #expect(components[0].configuration?.map(\.key) == ["replicas"])
        #expect(components[0].configuration?.map(\.value) == ["3"])
        #expect(components[1].namespace == "kyma-system")
        #expect(request.runtimeInput.labels?["stephost.io/undeclared-components"] == "vault")
        // The request sent carries the secret; the stored copy does not.
        #expect(components[1].configuration?.first?.value == "t0p")
        #expect(request.redacted.kymaConfig.components[1].configuration?.first?.value == "<redacted>")
        #expect(!(try request.redacted.json()).contains("t0p"))
    }
}

/// The custom fields' JSON object, read member by member with keys as bytes.
@Suite("Field keys and the fields object")
struct FieldsObjectTests {
    @Test func keysThatDifferInBytesAreDifferentFields() throws {
        let precomposed = FieldKey("caf\u{E9}")
        let decomposed = FieldKey("cafe\u{301}")
        #expect("caf\u{E9}" == "cafe\u{301}")  // what Swift's String says
        #expect(precomposed != decomposed)
        #expect(Set([precomposed, decomposed]).count == 2)
        let members = try JSONText.members(of: #"{"caf\u00e9":1,"cafe\u0301":2}"#)
        #expect(members == [precomposed: "1", decomposed: "2"])
    }

    @Test func membersAreReadAsWrittenWhateverTheirShape() throws {
        let text = #" { "a" : { "x" : [1, "}", "\"{"] } , "b":"\ud83d\ude00","c" :true,"d":-1.5e3,"":null,"a2":[]} "#
        let members = try JSONText.members(of: text)
        #expect(members["a"] == #"{ "x" : [1, "}", "\"{"] }"#)
        #expect(members["b"] == #""\ud83d\ude00""#)
        #expect(members["c"] == "true")
        #expect(members["d"] == "-1.5e3")
        #expect(members[""] == "null")
        #expect(members["a2"] == "[]")
        #expect(try JSONText.members(of: "{}").isEmpty)
        // What `object` writes, `members` reads back.
        let fields: [FieldKey: String] = ["z": "1", "caf\u{E9}": #""x""#, "cafe\u{301}": #"{"k":[true]}"#, "q\"": "[]"]
        #expect(try JSONText.members(of: JSONText.object(fields)) == fields)
    }

    @Test(arguments: ["[]", "{", #"{"a":1"#, #"{"a" 1}"#, #"{"a":1}x"#, "", #"{"\ud800":1}"#])
    func whatIsNotAnObjectIsRefused(text: String) {
        #expect(throws: JSONText.NotAnObject.self) { try JSONText.members(of: text) }
    }
}

extension FieldsObjectTests {
    /// Parameters whose keys differ only in their Unicode form would lose one value silently: refused, naming both.
    @Test func parameterKeysThatDifferOnlyInUnicodeFormAreRefused() {
        let error = #expect(throws: ParametersError.self) {
            try ProvisioningParameters(json: #"{"name":"c","caf\u00e9":"P1","cafe\u0301":"P2"}"#)
        }
        #expect(error?.problems.first?.contains("differ only in their Unicode form") == true)
        #expect(throws: Never.self) { try ProvisioningParameters(json: #"{"name":"c","caf\u00e9":"P1","x":1}"#) }
    }
}

extension FieldsObjectTests {
    @Test func hexStringWritesTwoLowercaseDigitsPerByte() {
        #expect([UInt8]([0x00, 0x0F, 0xA0, 0xFF, 0x5C]).hexString == "000fa0ff5c")
        #expect([UInt8]().hexString == "")
    }
}

/// Steps receive the parameters with the host's defaults applied, and the names of those that are defaults.
@Suite("Parameters as steps receive them")
struct EffectiveParametersTests {
    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func defaultsFillWhatTheRequestLeftOutAndAreNamed() throws {
        let parameters = try ProvisioningParameters(json: #"{"name":"r1","provider":"aws","custom":{"x":1}}"#)
        let effective = try Self.object(parameters.effectiveJSON)
        #expect(effective["region"] as? String == "eu-central-1")
        #expect(effective["zones"] as? [String] == ["eu-central-1a"])
        #expect(effective["volumeSizeGB"] as? Int == 50)
        #expect(effective["provider"] as? String == "aws")
        #expect((effective["custom"] as? [String: Any])?["x"] as? Int == 1)
        #expect(parameters.defaultedKeys.contains("region"))
        #expect(!parameters.defaultedKeys.contains("provider"))
        #expect(!parameters.defaultedKeys.contains("name"))
        #expect(parameters.defaultedKeys == parameters.defaultedKeys.sorted())
        // What is stored stays the request.
        #expect(try Self.object(parameters.json)["region"] == nil)
        // Every default the request's own fields are read with is there.
        #expect(effective.count == 3 + parameters.defaultedKeys.count)
    }

    @Test func aMemberGivenAsNullGetsItsDefault() throws {
        let parameters = try ProvisioningParameters(json: #"{"name":"r1","region":null}"#)
        let effective = try Self.object(parameters.effectiveJSON)
        #expect(effective["region"] as? String == "europe-west3")
        #expect(parameters.defaultedKeys.contains("region"))
    }

    @Test func aRequestThatGivesEverythingIsPassedAsItIs() throws {
        let all = try ProvisioningParameters(json: #"{"name":"r1"}"#)
        let full = try ProvisioningParameters(json: all.effectiveJSON)
        #expect(full.defaultedKeys.isEmpty)
        #expect(full.effectiveJSON == full.json)
        // Read back as stored, the same.
        let stored = try ProvisioningParameters(storedJSON: all.json)
        #expect(stored.effectiveJSON == all.effectiveJSON)
    }

    @Test func theDocumentAStepReceivesCarriesBoth() throws {
        let now = Date()
        let operation = OperationRecord(
            id: "op",
            instanceID: "i",
            description: "",
            createdAt: now,
            deadline: now,
            parameters: try ProvisioningParameters(json: #"{"name":"r1","region":"europe-west4"}"#)
        )
        let document = try Self.object(String(decoding: OperationDocument.json(operation, pass: 1), as: UTF8.self))
        let parameters = try #require(document["parameters"] as? [String: Any])
        #expect(parameters["region"] as? String == "europe-west4")
        #expect(parameters["machineType"] as? String == "n2-standard-8")
        let defaulted = try #require(document["defaulted_parameters"] as? [String])
        #expect(defaulted.contains("machineType") && !defaulted.contains("region"))
    }
}
