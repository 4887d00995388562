// Package stephost is the Go side of stephost.h for the Go example plugins: ABI negotiation, the
// descriptors, and a Go API over the services a step is given.
//
// A plugin's package main only declares its steps and exports stephost_plugin_init, which hands the
// host's offer and descriptor to Init. Everything that touches the C structs is here, once.
//
// Go cannot call C function pointers, so every host callback is called through a small static C
// helper in the preamble below. Go must not hand C a pointer that C keeps, so everything the
// host keeps (the names, the step array, the step descriptors) is allocated with C.malloc and
// never freed: the host never unloads a plugin. Strings handed to a callback are Go memory that
// holds no Go pointers, which cgo allows for the duration of the call; the host copies them
// before it returns (stephost.h, OWNERSHIP).
//
// A Go plugin is a c-shared library with a Go runtime of its own. Two Go runtimes cannot share a
// process, so stephost runs each Go plugin in a runner process of its own ("process" isolation);
// see README.md beside this package.
package stephost

/*
#cgo CFLAGS: -I${SRCDIR}/../../../Sources/StepHostABI/include
#include <stdlib.h>
#include "stephost.h"

// The ABI version this package is written against: the header's.
static uint32_t abi_current(void) {
    return STEPHOST_ABI_VERSION(STEPHOST_ABI_CURRENT_MAJOR, STEPHOST_ABI_CURRENT_MINOR);
}

// ---- The offer, read as ABI 1.0 has it (a newer host's larger offer is fine). ----

static int offer_is_complete(const stephost_host_offer *offer) {
    return offer != NULL && offer->struct_size >= STEPHOST_SIZE_THROUGH(stephost_host_offer, services);
}

// Reports `message` through the host's services, if the offer holds them and they hold report_error.
static void offer_report_error(const stephost_host_offer *offer, const char *message, size_t length) {
    const stephost_host_services *s = offer->services;
    if (s == NULL || s->struct_size < STEPHOST_SIZE_THROUGH(stephost_host_services, report_error) ||
        s->report_error == NULL) {
        return;
    }
    s->report_error(s->ctx, message, length);
}

static size_t descriptor_minimum(void) {
    return STEPHOST_SIZE_THROUGH(stephost_plugin_descriptor, step_count);
}

static uint32_t descriptor_own_size(void) { return (uint32_t)sizeof(stephost_plugin_descriptor); }

// ---- Steps ----

// Every step of a Go plugin runs through this one exported Go function; `step_ctx` says which step.
extern stephost_outcome stephostGoRunStep(void *step_ctx, stephost_step_call *call);

// The step's run function as the descriptor types it (Go cannot export a `const` parameter).
static stephost_outcome run_step(void *step_ctx, const stephost_step_call *call) {
    return stephostGoRunStep(step_ctx, (stephost_step_call *)call);
}

// A step descriptor in C memory, kept for the life of the process. Its step_ctx holds `index`, the
// step's place in the plugin's Go list. NULL when out of memory.
static stephost_step_descriptor *new_step(int32_t weight, const char *name, size_t name_len, size_t index) {
    stephost_step_descriptor *step = calloc(1, sizeof *step);
    size_t *context = malloc(sizeof *context);
    if (step == NULL || context == NULL) {
        free(step);
        free(context);
        return NULL;
    }
    *context = index;
    step->struct_size = sizeof *step;
    step->weight = weight;
    step->name = name;
    step->name_len = name_len;
    step->run = run_step;
    step->step_ctx = context;
    return step;
}
*/
import "C"

import (
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Plugin is what a Go plugin declares: its name, its version and its steps, in the order it wants
// them among equal weights.
type Plugin struct {
	Name    string
	Version string
	Steps   []Step
}

// Step is one step: a weight (>= 1 and not 100: below 100 it runs before create_runtime, above it
// after), a name unique across all plugins, and the function that runs it.
//
// Run may be called from any thread and concurrently for different operations, but never
// concurrently for the same operation. It must use its Call only on its own goroutine and only
// until it returns: the host's callbacks work only on the thread that called the step, and a cgo
// callback's goroutine stays on that thread. Do not start goroutines that touch the Call.
type Step struct {
	Name   string
	Weight int32
	Run    func(call *Call) Outcome
}

// The plugin as Init built it, read by every step run. Init runs before any step (stephost.h, THREADING).
var (
	built     atomic.Pointer[builtPlugin]
	buildOnce sync.Once
	buildErr  error
)

type builtPlugin struct {
	plugin  Plugin
	name    *C.char
	version *C.char
	steps   **C.stephost_step_descriptor
}

// Names of plugins and steps: 1 to 64 bytes of [A-Za-z0-9_.-] (stephost.h).
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Init is the body of stephost_plugin_init: it picks the ABI version, checks the host's descriptor
// capacity and fills the descriptor with `plugin`. It returns STEPHOST_STATUS_OK or, after reporting
// why through the offer's report_error, STEPHOST_STATUS_ERROR. It never panics into the host.
//
// offer and descriptor are the entry point's `const stephost_host_offer *` and
// `stephost_plugin_descriptor *`, passed as unsafe.Pointer because the package main that exports the
// entry point cannot include stephost.h (see ../quota/main.go).
func Init(offerPointer, descriptorPointer unsafe.Pointer, plugin *Plugin) (status int32) {
	offer := (*C.stephost_host_offer)(offerPointer)
	descriptor := (*C.stephost_plugin_descriptor)(descriptorPointer)
	if C.offer_is_complete(offer) == 0 {
		return C.STEPHOST_STATUS_ERROR // nowhere to say why
	}
	report := func(format string, args ...any) int32 {
		message := []byte(fmt.Sprintf(format, args...) + "\x00")
		C.offer_report_error(offer, (*C.char)(unsafe.Pointer(&message[0])), C.size_t(len(message)-1))
		return C.STEPHOST_STATUS_ERROR
	}
	defer func() {
		if recovered := recover(); recovered != nil {
			status = report("%s: init panicked: %v", plugin.Name, recovered)
		}
	}()

	// The highest version both sides know: this header's, or the host's highest of the same major.
	// The package uses only ABI 1.0's fields, so any 1.x will do.
	wanted := uint32(C.abi_current())
	current := wanted >> 16
	if offer.abi_max>>16 == C.uint32_t(current) && uint32(offer.abi_max) < wanted {
		wanted = uint32(offer.abi_max)
	}
	if wanted < uint32(offer.abi_min) || wanted > uint32(offer.abi_max) {
		return report("%s needs ABI %d.x; the host offers %d.%d to %d.%d: rebuild it for this host", plugin.Name,
			current, offer.abi_min>>16, offer.abi_min&0xFFFF, offer.abi_max>>16, offer.abi_max&0xFFFF)
	}
	// The host's capacity must hold the 1.0 descriptor; write no more than it, and say how much was written.
	if descriptor == nil {
		return report("%s: the host passed no plugin descriptor", plugin.Name)
	}
	capacity := uint32(descriptor.struct_size)
	if uint64(capacity) < uint64(C.descriptor_minimum()) {
		return report("%s: the host's plugin descriptor holds %d bytes, less than ABI 1.0's %d", plugin.Name,
			capacity, uint64(C.descriptor_minimum()))
	}

	// The C copies of the names and steps are made once and kept: the host never unloads a plugin, and a
	// second init (not expected) hands out the same descriptors.
	buildOnce.Do(func() { buildErr = build(plugin) })
	if buildErr != nil {
		return report("%s: %v", plugin.Name, buildErr)
	}
	b := built.Load()

	size := uint32(C.descriptor_own_size())
	if capacity < size {
		size = capacity
	}
	descriptor.struct_size = C.uint32_t(size)
	descriptor.abi_version = C.uint32_t(wanted)
	descriptor.name = b.name
	descriptor.name_len = C.size_t(len(b.plugin.Name))
	descriptor.version = b.version
	descriptor.version_len = C.size_t(len(b.plugin.Version))
	descriptor.steps = b.steps
	descriptor.step_count = C.size_t(len(b.plugin.Steps))
	return C.STEPHOST_STATUS_OK
}

// build checks the plugin's declaration against stephost.h's rules and makes its C descriptors.
func build(plugin *Plugin) error {
	if !namePattern.MatchString(plugin.Name) {
		return fmt.Errorf("the plugin name %q is not 1 to 64 bytes of [A-Za-z0-9_.-]", plugin.Name)
	}
	if len(plugin.Version) > 128 {
		return fmt.Errorf("the plugin version is %d bytes, more than 128", len(plugin.Version))
	}
	if len(plugin.Steps) == 0 || len(plugin.Steps) > 4096 {
		return fmt.Errorf("a plugin declares 1 to 4096 steps, not %d", len(plugin.Steps))
	}
	seen := map[string]bool{}
	for _, step := range plugin.Steps {
		switch {
		case !namePattern.MatchString(step.Name):
			return fmt.Errorf("the step name %q is not 1 to 64 bytes of [A-Za-z0-9_.-]", step.Name)
		case step.Name == C.STEPHOST_CREATE_RUNTIME_NAME:
			return fmt.Errorf("the step name %q belongs to the host", step.Name)
		case step.Weight < 1 || step.Weight == C.STEPHOST_CREATE_RUNTIME_WEIGHT:
			return fmt.Errorf("step %s: the weight %d is below 1 or is create_runtime's", step.Name, step.Weight)
		case seen[step.Name]:
			return fmt.Errorf("the step name %s is declared twice", step.Name)
		case step.Run == nil:
			return fmt.Errorf("step %s has no Run function", step.Name)
		}
		seen[step.Name] = true
	}

	b := &builtPlugin{plugin: *plugin}
	b.plugin.Steps = append([]Step(nil), plugin.Steps...) // the list the steps dispatch on; the caller's may change
	b.name = C.CString(plugin.Name)                       // C.CString is C.malloc'd: never freed, on purpose
	b.version = C.CString(plugin.Version)
	pointerSize := C.size_t(unsafe.Sizeof((*C.stephost_step_descriptor)(nil)))
	b.steps = (**C.stephost_step_descriptor)(C.malloc(pointerSize * C.size_t(len(plugin.Steps))))
	if b.steps == nil {
		return fmt.Errorf("out of memory")
	}
	array := unsafe.Slice(b.steps, len(plugin.Steps))
	for index, step := range b.plugin.Steps {
		array[index] = C.new_step(C.int32_t(step.Weight), C.CString(step.Name), C.size_t(len(step.Name)),
			C.size_t(index))
		if array[index] == nil {
			return fmt.Errorf("out of memory")
		}
	}
	built.Store(b)
	return nil
}
