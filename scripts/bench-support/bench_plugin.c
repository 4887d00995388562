// A generated benchmark plugin: BENCH_STEPS steps named BENCH_NAME_1 .. BENCH_NAME_n, weights 1 .. n (all
// before create_runtime). BENCH_SET_FIELD=0: every step returns done and writes nothing (a no-op step).
// BENCH_SET_FIELD=1: every step sets its own custom field to the pass number, so every step run is one commit.
// Built by scripts/bench with -DBENCH_NAME=... -DBENCH_STEPS=... -DBENCH_SET_FIELD=...
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "stephost.h"

#ifndef BENCH_NAME
#define BENCH_NAME bench
#endif
#ifndef BENCH_STEPS
#define BENCH_STEPS 10
#endif
#ifndef BENCH_SET_FIELD
#define BENCH_SET_FIELD 0
#endif
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x)

typedef struct {
    stephost_step_descriptor descriptor;
    char name[72];
    char field[24];
} bench_step;

static bench_step steps[BENCH_STEPS];
static const stephost_step_descriptor *step_list[BENCH_STEPS];

static stephost_outcome run(void *step_ctx, const stephost_step_call *call) {
#if BENCH_SET_FIELD
    const bench_step *step = step_ctx;
    // The pass number, as the field's value: a repeated pass writes a new value.
    const char *pass = memmem(call->operation_json, call->operation_json_len, "\"pass\":", 7);
    char value[24] = "1";
    size_t length = 1;
    if (pass != NULL) {
        pass += 7;
        length = 0;
        while (length < sizeof value - 1 && pass + length < call->operation_json + call->operation_json_len &&
               pass[length] >= '0' && pass[length] <= '9') {
            value[length] = pass[length];
            length++;
        }
    }
    if (call->services->set_field(call->ctx, step->field, strlen(step->field), value, length) != 0) {
        return STEPHOST_OUTCOME_FAIL;
    }
#else
    (void)step_ctx;
    (void)call;
#endif
    return STEPHOST_OUTCOME_DONE;
}

__attribute__((visibility("default"))) stephost_status stephost_plugin_init(
    const stephost_host_offer *offer, stephost_plugin_descriptor *descriptor) {
    if (offer == NULL || offer->struct_size < STEPHOST_SIZE_THROUGH(stephost_host_offer, services) ||
        descriptor->struct_size < STEPHOST_SIZE_THROUGH(stephost_plugin_descriptor, step_count) ||
        offer->abi_min > STEPHOST_ABI_VERSION(1, 0)) {
        return STEPHOST_STATUS_ERROR;
    }
    for (int index = 0; index < BENCH_STEPS; index++) {
        bench_step *step = &steps[index];
        snprintf(step->name, sizeof step->name, "%s_%d", TEXT(BENCH_NAME), index + 1);
        snprintf(step->field, sizeof step->field, "bench_%d", index + 1);
        step->descriptor = (stephost_step_descriptor){
            .struct_size = sizeof(stephost_step_descriptor),
            .weight = 1 + index % 99,
            .name = step->name,
            .name_len = strlen(step->name),
            .run = run,
            .step_ctx = step,
        };
        step_list[index] = &step->descriptor;
    }
    descriptor->struct_size = sizeof *descriptor;
    descriptor->abi_version = STEPHOST_ABI_VERSION(1, 0);
    descriptor->name = TEXT(BENCH_NAME);
    descriptor->name_len = strlen(TEXT(BENCH_NAME));
    descriptor->version = "1.0.0";
    descriptor->version_len = 5;
    descriptor->steps = step_list;
    descriptor->step_count = BENCH_STEPS;
    return STEPHOST_STATUS_OK;
}
