package stephost

// Go cannot call C function pointers: every callback of a call's services goes through one of the
// small static helpers below. (cgo resolves C names per file, so each helper lives in the preamble of
// the file that calls it.)

/*
#include "stephost.h"

// The index new_step (abi.go) keeps in a step's step_ctx.
static size_t step_index(void *step_ctx) { return *(const size_t *)step_ctx; }

// Whether the host's call holds everything ABI 1.0 has, every callback included (a newer host's larger
// structs are fine: only the 1.0 fields are read, and they keep their place).
static int call_is_complete(const stephost_step_call *call) {
    if (call == NULL || call->struct_size < STEPHOST_SIZE_THROUGH(stephost_step_call, services) ||
        call->operation_json == NULL || call->services == NULL) {
        return 0;
    }
    const stephost_call_services *s = call->services;
    return s->struct_size >= STEPHOST_SIZE_THROUGH(stephost_call_services, set_error) && s->set_field != NULL &&
           s->remove_field != NULL && s->add_component_override != NULL && s->add_global_override != NULL &&
           s->add_label != NULL && s->log != NULL && s->checkpoint != NULL && s->set_retry_after != NULL &&
           s->set_error != NULL;
}

static stephost_status call_set_field(const stephost_step_call *c, const char *key, size_t key_len,
                                      const char *json, size_t json_len) {
    return c->services->set_field(c->ctx, key, key_len, json, json_len);
}

static stephost_status call_remove_field(const stephost_step_call *c, const char *key, size_t key_len) {
    return c->services->remove_field(c->ctx, key, key_len);
}

static stephost_status call_add_component_override(const stephost_step_call *c, const char *component,
                                                   size_t component_len, const char *key, size_t key_len,
                                                   const char *value, size_t value_len, int32_t secret) {
    return c->services->add_component_override(c->ctx, component, component_len, key, key_len, value, value_len,
                                               secret);
}

static stephost_status call_add_global_override(const stephost_step_call *c, const char *key, size_t key_len,
                                                const char *value, size_t value_len, int32_t secret) {
    return c->services->add_global_override(c->ctx, key, key_len, value, value_len, secret);
}

static stephost_status call_add_label(const stephost_step_call *c, const char *key, size_t key_len,
                                      const char *value, size_t value_len) {
    return c->services->add_label(c->ctx, key, key_len, value, value_len);
}

static void call_log(const stephost_step_call *c, stephost_log_level level, const char *message, size_t length) {
    c->services->log(c->ctx, level, message, length);
}

static stephost_status call_checkpoint(const stephost_step_call *c) { return c->services->checkpoint(c->ctx); }

static void call_set_retry_after(const stephost_step_call *c, uint64_t milliseconds) {
    c->services->set_retry_after(c->ctx, milliseconds);
}

static void call_set_error(const stephost_step_call *c, const char *message, size_t length) {
    c->services->set_error(c->ctx, message, length);
}
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unsafe"
)

// Level is a log level (STEPHOST_LOG_*).
type Level int32

const (
	Debug   Level = C.STEPHOST_LOG_DEBUG
	Info    Level = C.STEPHOST_LOG_INFO
	Warning Level = C.STEPHOST_LOG_WARNING
	Error   Level = C.STEPHOST_LOG_ERROR
)

// Outcome is what a step's Run returns: Done, Retry or Fail.
type Outcome struct {
	code       C.stephost_outcome
	message    string
	retryAfter time.Duration
	hasDelay   bool
}

// Done: the step finished and the operation goes on to the next step.
func Done() Outcome { return Outcome{code: C.STEPHOST_OUTCOME_DONE} }

// Retry: repeat the whole operation from the first step after `after` (a new pass).
func Retry(after time.Duration) Outcome {
	return Outcome{code: C.STEPHOST_OUTCOME_RETRY, retryAfter: after, hasDelay: true}
}

// Fail: the operation fails with this message. The step's field writes are kept (stephost.h).
func Fail(format string, args ...any) Outcome {
	return Outcome{code: C.STEPHOST_OUTCOME_FAIL, message: fmt.Sprintf(format, args...)}
}

// Operation is the operation a step runs for, decoded from the call's operation JSON.
type Operation struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id"`
	Type       string `json:"type"`
	// Pass is the number of the pass this call belongs to: 1 on the first; every retry starts a new
	// pass from the first step.
	Pass int `json:"pass"`
	// Attempt is the deprecated name of Pass, read only when a host sends no "pass".
	Attempt    int                        `json:"attempt"`
	Parameters json.RawMessage            `json:"parameters"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

// DecodeParameters decodes the provisioning parameters into `into` (a pointer to a struct or a map).
func (o *Operation) DecodeParameters(into any) error {
	if len(o.Parameters) == 0 {
		return nil
	}
	if err := json.Unmarshal(o.Parameters, into); err != nil {
		return fmt.Errorf("the parameters cannot be read: %w", err)
	}
	return nil
}

// Field decodes the custom field `key` into `into`, and says whether the operation has it; a field that
// holds null counts as absent. Fields set earlier in this call are seen too.
func (o *Operation) Field(key string, into any) (bool, error) {
	raw, ok := o.Fields[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return true, fmt.Errorf("field %s cannot be read: %w", key, err)
	}
	return true, nil
}

// Call is one run of one step: the operation and the host's services for this call. It is valid only
// on the goroutine Run was called on, and only until Run returns.
type Call struct {
	Operation Operation
	StepName  string
	call      *C.stephost_step_call
}

// StatusError is a host callback's refusal. STEPHOST_STATUS_INVALID_ARGUMENT means the host counts the
// step's run as a fault: none of its writes are kept, whatever the step returns.
type StatusError struct {
	Callback string
	Status   int32
}

func (e *StatusError) Error() string {
	if e.Status == C.STEPHOST_STATUS_INVALID_ARGUMENT {
		return fmt.Sprintf("the host refused %s: invalid argument", e.Callback)
	}
	return fmt.Sprintf("the host refused %s (status %d)", e.Callback, e.Status)
}

func statusError(callback string, status C.stephost_status) error {
	if status == C.STEPHOST_STATUS_OK {
		return nil
	}
	return &StatusError{Callback: callback, Status: int32(status)}
}

// text is `s` as a pointer and a length in bytes for one callback. The bytes are a Go copy with no Go
// pointers in it, which cgo lets C read during the call; the host copies it before returning. A NUL
// follows, so an empty string still has a valid address; the host reads only `length` bytes.
func text(s string) (*C.char, C.size_t) {
	bytes := make([]byte, len(s)+1)
	copy(bytes, s)
	return (*C.char)(unsafe.Pointer(&bytes[0])), C.size_t(len(s))
}

func secretFlag(secret bool) C.int32_t {
	if secret {
		return 1
	}
	return 0
}

func (c *Call) live() *C.stephost_step_call {
	if c.call == nil {
		panic("stephost: a Call was used after its step returned")
	}
	return c.call
}

// SetField sets the custom field `key` to `value` encoded as JSON, and records it in c.Operation.Fields.
func (c *Call) SetField(key string, value any) error {
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("field %s cannot be encoded: %w", key, err)
	}
	return c.SetFieldJSON(key, encoded)
}

// SetFieldJSON sets the custom field `key` to `value`, one complete JSON value, as given.
func (c *Call) SetFieldJSON(key string, value []byte) error {
	k, kn := text(key)
	v, vn := text(string(value))
	if err := statusError("set_field "+key, C.call_set_field(c.live(), k, kn, v, vn)); err != nil {
		return err
	}
	if c.Operation.Fields == nil {
		c.Operation.Fields = map[string]json.RawMessage{}
	}
	c.Operation.Fields[key] = append(json.RawMessage(nil), value...)
	return nil
}

// RemoveField removes the custom field `key`; removing an absent field succeeds.
func (c *Call) RemoveField(key string) error {
	k, kn := text(key)
	if err := statusError("remove_field "+key, C.call_remove_field(c.live(), k, kn)); err != nil {
		return err
	}
	delete(c.Operation.Fields, key)
	return nil
}

// AddComponentOverride adds an override for one component. Overrides live for one pass: a step adds
// them on every pass, the repeat ones included.
func (c *Call) AddComponentOverride(component, key, value string, secret bool) error {
	cp, cn := text(component)
	k, kn := text(key)
	v, vn := text(value)
	status := C.call_add_component_override(c.live(), cp, cn, k, kn, v, vn, secretFlag(secret))
	return statusError("add_component_override "+component+"/"+key, status)
}

// AddGlobalOverride adds an override for every component, for this pass.
func (c *Call) AddGlobalOverride(key, value string, secret bool) error {
	k, kn := text(key)
	v, vn := text(value)
	return statusError("add_global_override "+key, C.call_add_global_override(c.live(), k, kn, v, vn, secretFlag(secret)))
}

// AddLabel adds a label to the runtime, for this pass.
func (c *Call) AddLabel(key, value string) error {
	k, kn := text(key)
	v, vn := text(value)
	return statusError("add_label "+key, C.call_add_label(c.live(), k, kn, v, vn))
}

// Logf writes a line to the host's log, attributed to this step and operation.
func (c *Call) Logf(level Level, format string, args ...any) {
	m, mn := text(fmt.Sprintf(format, args...))
	C.call_log(c.live(), C.stephost_log_level(level), m, mn)
}

// Checkpoint persists the custom fields set so far now, before the step returns.
func (c *Call) Checkpoint() error {
	return statusError("checkpoint", C.call_checkpoint(c.live()))
}

// runStep runs one step for stephostGoRunStep (export.go): it finds the step from step_ctx, decodes the
// operation, runs the step and reports its outcome. A panic in the step is recovered here and becomes a
// failure with a message: nothing unwinds into the host (stephost.h, FAULTS).
func runStep(stepContext unsafe.Pointer, call *C.stephost_step_call) (outcome C.stephost_outcome) {
	if C.call_is_complete(call) == 0 {
		return C.STEPHOST_OUTCOME_FAIL // no set_error to explain with
	}
	c := &Call{call: call, StepName: "?"}
	defer func() {
		if recovered := recover(); recovered != nil {
			setError(call, fmt.Sprintf("step %s panicked: %v", c.StepName, recovered))
			outcome = C.STEPHOST_OUTCOME_FAIL
		}
		c.call = nil // the call's context dies with it; a kept Call panics instead of using it
	}()

	b := built.Load()
	if b == nil || stepContext == nil || int(C.step_index(stepContext)) >= len(b.plugin.Steps) {
		setError(call, "a Go step was called before stephost_plugin_init or with a step_ctx it did not hand out")
		return C.STEPHOST_OUTCOME_FAIL
	}
	step := b.plugin.Steps[C.step_index(stepContext)]
	c.StepName = step.Name

	const maximumDocument = 64 << 20 // far above what a host sends: 64 KiB of parameters, 1 MiB of fields
	if call.operation_json_len > maximumDocument {
		setError(call, fmt.Sprintf("step %s: the operation JSON is %d bytes, more than %d", step.Name,
			uint64(call.operation_json_len), maximumDocument))
		return C.STEPHOST_OUTCOME_FAIL
	}
	document := C.GoBytes(unsafe.Pointer(call.operation_json), C.int(call.operation_json_len))
	if err := json.Unmarshal(document, &c.Operation); err != nil {
		setError(call, fmt.Sprintf("step %s: the operation JSON cannot be read: %v", step.Name, err))
		return C.STEPHOST_OUTCOME_FAIL
	}
	if c.Operation.Pass == 0 {
		c.Operation.Pass = c.Operation.Attempt
	}

	result := step.Run(c)
	switch result.code {
	case C.STEPHOST_OUTCOME_FAIL:
		setError(call, result.message)
	case C.STEPHOST_OUTCOME_RETRY:
		if result.hasDelay {
			milliseconds := result.retryAfter.Milliseconds()
			if milliseconds < 0 {
				milliseconds = 0
			}
			C.call_set_retry_after(call, C.uint64_t(milliseconds))
		}
	}
	return result.code
}

func setError(call *C.stephost_step_call, message string) {
	m, mn := text(message)
	C.call_set_error(call, m, mn)
}
