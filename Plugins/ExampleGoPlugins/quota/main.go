// The `go-quota` example plugin, in Go: a c-shared library that stephost runs in a runner process of
// its own ("process" isolation), since two Go runtimes cannot share the host's process.
//
// Its one step, go_reserve_quota (weight 30, before create_runtime), reserves CPU quota for the runtime
// once, records the reservation in a custom field, and on every pass hands the quota agent its
// reservation and API token (a secret override) and labels the runtime with the reservation.
//
// Build: scripts/build-go-plugins OUTPUT_DIR (go build -buildmode=c-shared).
package main

// The entry point is declared with unsafe.Pointer arguments (void * in C): stephost.h declares
// stephost_plugin_init with a const offer, which no Go signature can spell, and cgo puts its own
// declaration of an exported function next to this preamble, so this file must not include stephost.h.
// The pointers are ABI-compatible with the header's prototype.

// #include <stdint.h>
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"unsafe"

	"stephost.example/goplugins/stephost"
)

var plugin = stephost.Plugin{
	Name:    "go-quota",
	Version: "1.0.0",
	Steps: []stephost.Step{
		{Name: "go_reserve_quota", Weight: 30, Run: reserveQuota},
	},
}

//export stephost_plugin_init
func stephost_plugin_init(offer, descriptor unsafe.Pointer) C.int32_t {
	return C.int32_t(stephost.Init(offer, descriptor, &plugin))
}

// The custom field that holds the reservation once it is made.
const reservationField = "go_quota_reservation"

// The vCPUs of one node: the default machine types (gcp n2-standard-8, azure Standard_D8_v3, aws
// m5.2xlarge) have 8.
const coresPerNode = 8

// The most vCPUs one runtime may reserve.
const maximumCores = 160

// The provisioning parameters this step reads, with the host's defaults (README, Provisioning parameters).
type parameters struct {
	Name          string `json:"name"`
	Provider      string `json:"provider"`
	Region        string `json:"region"`
	AutoScalerMax *int   `json:"autoScalerMax"`
}

var defaultRegions = map[string]string{"gcp": "europe-west3", "azure": "westeurope", "aws": "eu-central-1"}

// What the step records in reservationField.
type reservation struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Cores  int    `json:"cores"`
	// The pass that made the reservation.
	Pass int `json:"reserved_in_pass"`
}

// Weight 30: reserves quota for the runtime once, then hands the reservation to the quota agent on every pass.
func reserveQuota(call *stephost.Call) stephost.Outcome {
	var held reservation
	found, err := call.Operation.Field(reservationField, &held)
	if err != nil {
		return stephost.Fail("go-quota: %v", err)
	}
	if found && held.ID != "" {
		// A repeat pass (a retry, or a host that took the operation over): the quota is already reserved.
		call.Logf(stephost.Info, "quota reservation %s (%d vCPUs in %s) held since pass %d; not reserving again",
			held.ID, held.Cores, held.Region, held.Pass)
	} else {
		// The first pass, or a record without an id: reserve (again; the id comes out the same).
		var params parameters
		if err := call.Operation.DecodeParameters(&params); err != nil {
			return stephost.Fail("go-quota: %v", err)
		}
		if params.Provider == "" {
			params.Provider = "gcp"
		}
		if params.Region == "" {
			params.Region = defaultRegions[params.Provider]
		}
		if params.Region == "" {
			return stephost.Fail("go-quota: no region given, and provider %q has no default region", params.Provider)
		}
		nodes := 10
		if params.AutoScalerMax != nil {
			nodes = *params.AutoScalerMax
		}
		cores := nodes * coresPerNode
		if cores < 1 || cores > maximumCores {
			return stephost.Fail("go-quota: runtime %s asks for up to %d vCPUs (autoScalerMax %d x %d), a runtime "+
				"may reserve 1 to %d in %s", params.Name, cores, nodes, coresPerNode, maximumCores, params.Region)
		}
		// The id is derived from the operation, so a pass that dies between reserving and recording it
		// asks the quota service for the same reservation again, never a second one.
		held = reservation{ID: "q-" + digest(call.Operation.ID, params.Region)[:16], Region: params.Region,
			Cores: cores, Pass: call.Operation.Pass}
		if err := call.SetField(reservationField, held); err != nil {
			return stephost.Fail("go-quota: %v", err)
		}
		// Persist the reservation now: whatever happens later in this pass, the next one finds it.
		if err := call.Checkpoint(); err != nil {
			return stephost.Fail("go-quota: the reservation %s could not be recorded: %v", held.ID, err)
		}
		call.Logf(stephost.Info, "reserved %d vCPUs in %s for runtime %s: reservation %s", cores, params.Region,
			params.Name, held.ID)
	}

	// Overrides and labels last one pass, so every pass adds them, the repeat ones included.
	// The token stands in for one a real plugin would fetch from its secret store; it is derived from the
	// reservation so that every pass sends the same one.
	token := digest("go-quota api token", held.ID)[:32]
	if err := call.AddComponentOverride("quota-agent", "reservationID", held.ID, false); err != nil {
		return stephost.Fail("go-quota: %v", err)
	}
	if err := call.AddComponentOverride("quota-agent", "apiToken", token, true); err != nil {
		return stephost.Fail("go-quota: %v", err)
	}
	if err := call.AddLabel("quota.example.com/reservation", held.ID); err != nil {
		return stephost.Fail("go-quota: %v", err)
	}
	return stephost.Done()
}

// The hex SHA-256 of the parts, each followed by a NUL so that ("ab", "c") and ("a", "bc") differ.
func digest(parts ...string) string {
	hash := sha256.New()
	for _, part := range parts {
		hash.Write([]byte(part))
		hash.Write([]byte{0})
	}
	return hex.EncodeToString(hash.Sum(nil))
}

// A c-shared library needs a main, which never runs.
func main() {}
