// The `monitoring` example plugin, in plain C against stephost.h only.
//
// It shows the ABI without the Swift kit: negotiation, a static descriptor, overrides (one of
// them secret), a custom field, and a step after create_runtime that asks for a retry once.
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "stephost.h"

#define LITERAL(s) (s), (sizeof(s) - 1)

// Whether the host's call holds everything ABI 1.0 has. A newer host's larger structs are fine: this plugin
// reads only the 1.0 fields, which keep their place (stephost.h, STRUCT GROWTH).
static bool call_is_complete(const stephost_step_call *call) {
    return call->struct_size >= STEPHOST_SIZE_THROUGH(stephost_step_call, services) && call->services != NULL &&
           call->services->struct_size >= STEPHOST_SIZE_THROUGH(stephost_call_services, set_error);
}

static void say(const stephost_step_call *call, stephost_log_level level, const char *text) {
    call->services->log(call->ctx, level, text, strlen(text));
}

// Weight 30: before create_runtime. Adds the monitoring component's overrides on every pass.
static stephost_outcome configure_monitoring(void *step_ctx, const stephost_step_call *call) {
    (void)step_ctx;
    if (!call_is_complete(call)) return STEPHOST_OUTCOME_FAIL;
    const stephost_call_services *s = call->services;
    if (s->add_component_override(call->ctx, LITERAL("monitoring"), LITERAL("retention"), LITERAL("7d"), 0) != 0 ||
        s->add_component_override(
            call->ctx, LITERAL("monitoring"), LITERAL("grafana.adminPassword"), LITERAL("s3cr3t-grafana-admin"), 1) !=
            0 ||
        s->add_global_override(call->ctx, LITERAL("global.tracing.enabled"), LITERAL("true"), 0) != 0) {
        s->set_error(call->ctx, LITERAL("the host refused a monitoring override"));
        return STEPHOST_OUTCOME_FAIL;
    }
    return STEPHOST_OUTCOME_DONE;
}

// True when the operation's custom field `key` is the JSON literal true.
static bool field_is_true(const stephost_step_call *call, const char *key) {
    const char *fields = memmem(call->operation_json, call->operation_json_len, LITERAL("\"fields\""));
    if (fields == NULL) return false;
    size_t rest = call->operation_json_len - (size_t)(fields - call->operation_json);
    char quoted[80];
    size_t n = (size_t)snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = memmem(fields, rest, quoted, n);
    if (at == NULL) return false;
    const char *end = call->operation_json + call->operation_json_len;
    for (at += n; at < end && (*at == ' ' || *at == ':' || *at == '\n' || *at == '\t'); at++) {}
    return (size_t)(end - at) >= 4 && memcmp(at, "true", 4) == 0;
}

// Weight 120: after create_runtime. The first pass starts a probe and asks to be repeated; the
// next pass finds the probe recorded in the operation and finishes.
static stephost_outcome verify_monitoring(void *step_ctx, const stephost_step_call *call) {
    (void)step_ctx;
    if (!call_is_complete(call)) return STEPHOST_OUTCOME_FAIL;
    const stephost_call_services *s = call->services;
    if (field_is_true(call, "monitoring_probe_started")) {
        say(call, STEPHOST_LOG_INFO, "monitoring answered the probe");
        return STEPHOST_OUTCOME_DONE;
    }
    if (s->set_field(call->ctx, LITERAL("monitoring_probe_started"), LITERAL("true")) != 0) {
        s->set_error(call->ctx, LITERAL("the host refused field monitoring_probe_started"));
        return STEPHOST_OUTCOME_FAIL;
    }
    say(call, STEPHOST_LOG_INFO, "probe sent to monitoring; checking again shortly");
    s->set_retry_after(call->ctx, 500);
    return STEPHOST_OUTCOME_RETRY;
}

static const stephost_step_descriptor configure_step = {
    .struct_size = sizeof(stephost_step_descriptor),
    .weight = 30,
    .name = "configure_monitoring",
    .name_len = sizeof("configure_monitoring") - 1,
    .run = configure_monitoring,
};

static const stephost_step_descriptor verify_step = {
    .struct_size = sizeof(stephost_step_descriptor),
    .weight = 120,
    .name = "verify_monitoring",
    .name_len = sizeof("verify_monitoring") - 1,
    .run = verify_monitoring,
};

static const stephost_step_descriptor *const steps[] = {&configure_step, &verify_step};

// Reports `message` through the host's services, if the offer holds them and they hold report_error.
static void report(const stephost_host_offer *offer, const char *message, size_t length) {
    if (offer->struct_size < STEPHOST_SIZE_THROUGH(stephost_host_offer, services) || offer->services == NULL ||
        offer->services->struct_size < STEPHOST_SIZE_THROUGH(stephost_host_services, report_error)) {
        return;
    }
    offer->services->report_error(offer->services->ctx, message, length);
}

__attribute__((visibility("default"))) stephost_status stephost_plugin_init(
    const stephost_host_offer *offer, stephost_plugin_descriptor *descriptor) {
    // The offer is read as ABI 1.0 has it; a newer host's larger offer is fine.
    if (offer == NULL || offer->struct_size < STEPHOST_SIZE_THROUGH(stephost_host_offer, services)) {
        return STEPHOST_STATUS_ERROR;
    }
    // The highest version both sides know: this header's, or the host's highest of the same major. The plugin
    // uses only ABI 1.0's fields, so any 1.x will do.
    uint32_t wanted = STEPHOST_ABI_VERSION(STEPHOST_ABI_CURRENT_MAJOR, STEPHOST_ABI_CURRENT_MINOR);
    if (STEPHOST_ABI_MAJOR(offer->abi_max) == STEPHOST_ABI_CURRENT_MAJOR && offer->abi_max < wanted) {
        wanted = offer->abi_max;
    }
    if (wanted < offer->abi_min || wanted > offer->abi_max) {
        report(offer, LITERAL("monitoring needs ABI 1.x; rebuild it for this host"));
        return STEPHOST_STATUS_ERROR;
    }
    // The host's capacity must hold the 1.0 descriptor; write no more than it, and say how much was written.
    const size_t capacity = descriptor->struct_size;
    if (capacity < STEPHOST_SIZE_THROUGH(stephost_plugin_descriptor, step_count)) {
        report(offer, LITERAL("the host's plugin descriptor is smaller than ABI 1.0's"));
        return STEPHOST_STATUS_ERROR;
    }
    descriptor->struct_size = (uint32_t)(capacity < sizeof *descriptor ? capacity : sizeof *descriptor);
    descriptor->abi_version = wanted;
    descriptor->name = "monitoring";
    descriptor->name_len = strlen("monitoring");
    descriptor->version = "2.0.0";
    descriptor->version_len = strlen("2.0.0");
    descriptor->steps = steps;
    descriptor->step_count = sizeof steps / sizeof steps[0];
    return STEPHOST_STATUS_OK;
}
