// The `go-tags` example plugin, in Go: a c-shared library that stephost runs in a runner process of
// its own ("process" isolation), since two Go runtimes cannot share the host's process.
//
// Its steps, both before create_runtime:
//   - go_tag_runtime (weight 60) works out the runtime's ownership labels from the parameters once,
//     records them in a custom field, and adds them on every pass;
//   - go_check_tags (weight 70) reads what earlier steps recorded (this plugin's labels and, when the
//     go-quota plugin ran, its reservation), warns about a runtime nobody owns, and fails the operation
//     if the labels were never recorded.
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
	"sort"
	"strings"
	"unsafe"

	"stephost.example/goplugins/stephost"
)

var plugin = stephost.Plugin{
	Name:    "go-tags",
	Version: "1.0.0",
	Steps: []stephost.Step{
		{Name: "go_tag_runtime", Weight: 60, Run: tagRuntime},
		{Name: "go_check_tags", Weight: 70, Run: checkTags},
	},
}

//export stephost_plugin_init
func stephost_plugin_init(offer, descriptor unsafe.Pointer) C.int32_t {
	return C.int32_t(stephost.Init(offer, descriptor, &plugin))
}

// The custom field that holds the labels once they are worked out.
const tagsField = "go_tags"

// The field the go-quota plugin records its reservation in.
const quotaField = "go_quota_reservation"

const (
	teamLabel       = "example.com/team"
	regionLabel     = "example.com/region"
	runtimeLabel    = "example.com/runtime"
	costCenterLabel = "example.com/cost-center"
	// The team of a runtime whose parameters name none.
	noTeam = "unassigned"
)

// The provisioning parameters this step reads. `team` and `costCenter` are not the host's: unknown
// parameters are kept for the steps (README, Provisioning parameters).
type parameters struct {
	Name       string `json:"name"`
	Provider   string `json:"provider"`
	Region     string `json:"region"`
	Team       string `json:"team"`
	CostCenter string `json:"costCenter"`
}

var defaultRegions = map[string]string{"gcp": "europe-west3", "azure": "westeurope", "aws": "eu-central-1"}

// What go_tag_runtime records in tagsField.
type tags struct {
	Labels map[string]string `json:"labels"`
	// The pass that worked them out.
	Pass int `json:"tagged_in_pass"`
}

// Weight 60: works out the labels once and adds them on every pass.
func tagRuntime(call *stephost.Call) stephost.Outcome {
	var recorded tags
	found, err := call.Operation.Field(tagsField, &recorded)
	if err != nil {
		return stephost.Fail("go-tags: %v", err)
	}
	if found && len(recorded.Labels) > 0 {
		// A repeat pass: the labels chosen on the first pass stay, even if a newer version of this plugin
		// would work them out differently.
		call.Logf(stephost.Debug, "labels recorded in pass %d added again", recorded.Pass)
	} else {
		// The first pass, or a record without labels: work them out.
		var params parameters
		if err := call.Operation.DecodeParameters(&params); err != nil {
			return stephost.Fail("go-tags: %v", err)
		}
		if params.Provider == "" {
			params.Provider = "gcp"
		}
		if params.Region == "" {
			params.Region = defaultRegions[params.Provider]
		}
		if params.Team == "" {
			params.Team = noTeam
		}
		recorded = tags{Labels: map[string]string{
			teamLabel:    labelValue(params.Team),
			regionLabel:  labelValue(params.Region),
			runtimeLabel: labelValue(params.Name),
		}, Pass: call.Operation.Pass}
		if params.CostCenter != "" {
			recorded.Labels[costCenterLabel] = labelValue(params.CostCenter)
		}
		if err := call.SetField(tagsField, recorded); err != nil {
			return stephost.Fail("go-tags: %v", err)
		}
		call.Logf(stephost.Info, "runtime %s labelled for team %s in %s", params.Name, recorded.Labels[teamLabel],
			recorded.Labels[regionLabel])
	}

	// Labels last one pass, so every pass adds them, in a fixed order.
	for _, key := range sortedKeys(recorded.Labels) {
		if err := call.AddLabel(key, recorded.Labels[key]); err != nil {
			return stephost.Fail("go-tags: %v", err)
		}
	}
	return stephost.Done()
}

// Weight 70: checks what the earlier steps recorded; writes nothing, so any pass may repeat it.
func checkTags(call *stephost.Call) stephost.Outcome {
	var recorded tags
	found, err := call.Operation.Field(tagsField, &recorded)
	if err != nil {
		return stephost.Fail("go-tags: %v", err)
	}
	if !found || len(recorded.Labels) == 0 {
		return stephost.Fail("go-tags: the operation has no %s field: go_tag_runtime (weight 60) did not run "+
			"before go_check_tags", tagsField)
	}
	if recorded.Labels[teamLabel] == noTeam {
		call.Logf(stephost.Warning, "runtime %s has no owning team: pass the parameter \"team\"",
			recorded.Labels[runtimeLabel])
	}
	var quota struct {
		ID string `json:"id"`
	}
	if held, err := call.Operation.Field(quotaField, &quota); err == nil && held {
		call.Logf(stephost.Info, "runtime %s: %d labels, quota reservation %s", recorded.Labels[runtimeLabel],
			len(recorded.Labels), quota.ID)
	} else {
		call.Logf(stephost.Info, "runtime %s: %d labels, no quota reservation (go-quota did not run)",
			recorded.Labels[runtimeLabel], len(recorded.Labels))
	}
	return stephost.Done()
}

// `value` as a Kubernetes label value: at most 63 of [A-Za-z0-9._-], beginning and ending with a
// letter or digit; any other character becomes '-'. "unknown" when nothing is left.
func labelValue(value string) string {
	mapped := strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return r
		}
		return '-'
	}, value)
	if len(mapped) > 63 {
		mapped = mapped[:63]
	}
	mapped = strings.Trim(mapped, "._-")
	if mapped == "" {
		return "unknown"
	}
	return mapped
}

func sortedKeys(labels map[string]string) []string {
	keys := make([]string, 0, len(labels))
	for key := range labels {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// A c-shared library needs a main, which never runs.
func main() {}
