// A generated benchmark plugin: BENCH_STEPS steps named BENCH_NAME_1 .. BENCH_NAME_n, weights 1 .. n (all
// before create_runtime). BENCH_SET_FIELD=0: every step returns done and writes nothing (a no-op step).
// BENCH_SET_FIELD=1: every step sets its own custom field to the pass number, so every step run is one commit.
// BENCH_WEIGHT (default 1) is the first step's weight; the next steps follow it, skipping 100 (create_runtime's),
// wrapping after 199: plugins of one step each can spread their weights.
// BENCH_SLEEP_US (default 0): every step first sleeps that long, as a step that waits on a remote API does (I/O
// bound: the step holds a worker but no CPU).
// Built by scripts/bench with -DBENCH_NAME=... -DBENCH_STEPS=... -DBENCH_SET_FIELD=... [-DBENCH_WEIGHT=...]
// [-DBENCH_SLEEP_US=...]
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

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
#ifndef BENCH_WEIGHT
#define BENCH_WEIGHT 1
#endif
#ifndef BENCH_SLEEP_US
#define BENCH_SLEEP_US 0
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
#if BENCH_SLEEP_US > 0
    struct timespec pause = {BENCH_SLEEP_US / 1000000, (BENCH_SLEEP_US % 1000000) * 1000L};
    while (nanosleep(&pause, &pause) != 0) {
    }
#endif
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

// The weight of step `index`: 1 + index % 99 by default (weights 1 .. 99, all before create_runtime); from
// BENCH_WEIGHT when it is set: 1 .. 99 and 101 .. 199 in turn, never 100.
#if BENCH_WEIGHT < 1 || BENCH_WEIGHT == 100 || BENCH_WEIGHT > 199
#error "BENCH_WEIGHT is 1 .. 99 or 101 .. 199"
#endif
static int32_t weight(int index) {
#if BENCH_WEIGHT == 1
    return 1 + index % 99;
#else
    int position = (BENCH_WEIGHT > 100 ? BENCH_WEIGHT - 2 : BENCH_WEIGHT - 1) + index;  // 0 .. 197 is 1 .. 199
    position %= 198;
    return position < 99 ? position + 1 : position + 2;
#endif
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
            .weight = weight(index),
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
