// A configurable test plugin. The tests compile it with -D options into a fresh .so per case, good or
// deliberately broken in exactly one way. Every option has a default that makes a valid plugin.
#include <string.h>

#include "stephost.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "fixture"
#endif
#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0"
#endif
#ifndef ABI_MAJOR
#define ABI_MAJOR STEPHOST_ABI_CURRENT_MAJOR
#endif
#ifndef ABI_MINOR
#define ABI_MINOR STEPHOST_ABI_CURRENT_MINOR
#endif
#ifndef DESCRIPTOR_SIZE
#define DESCRIPTOR_SIZE sizeof(stephost_plugin_descriptor)
#endif
#ifndef STEP_SIZE
#define STEP_SIZE sizeof(stephost_step_descriptor)
#endif
#ifndef STEP1_NAME
#define STEP1_NAME "fixture_step"
#endif
#ifndef STEP1_WEIGHT
#define STEP1_WEIGHT 10
#endif
#ifndef ENTRY_NAME
#define ENTRY_NAME stephost_plugin_init
#endif

// What the step's run does: 0 done, 1 retry after 250 ms, 2 fail, 3 unknown outcome code,
// 4 set a field to invalid JSON, 5 set a reserved field.
#ifndef RUN_MODE
#define RUN_MODE 0
#endif

static stephost_outcome run_step(void *step_ctx, const stephost_step_call *call) {
    const char *name = step_ctx;
    const stephost_call_services *s = call->services;
    switch (RUN_MODE) {
    case 1:
        s->set_retry_after(call->ctx, 250);
        return STEPHOST_OUTCOME_RETRY;
    case 2:
        s->set_error(call->ctx, "fixture failure", strlen("fixture failure"));
        return STEPHOST_OUTCOME_FAIL;
    case 3:
        return 7;
    case 4:
        s->set_field(call->ctx, "broken", 6, "{not json", 9);
        return STEPHOST_OUTCOME_DONE;
    case 5:
        s->set_field(call->ctx, "stephost_state", 14, "1", 1);
        return STEPHOST_OUTCOME_DONE;
    default: {
        char json[96];
        size_t n = 0;
        json[n++] = '"';
        for (const char *c = name; *c != '\0' && n < sizeof json - 2; c++) json[n++] = *c;
        json[n++] = '"';
        s->set_field(call->ctx, "last_fixture_step", strlen("last_fixture_step"), json, n);
        return STEPHOST_OUTCOME_DONE;
    }
    }
}

static stephost_step_descriptor step1 = {
    .struct_size = STEP_SIZE,
    .weight = STEP1_WEIGHT,
    .name = STEP1_NAME,
    .name_len = sizeof(STEP1_NAME) - 1,
    .run = run_step,
    .step_ctx = STEP1_NAME,
};

#ifdef STEP2_NAME
static stephost_step_descriptor step2 = {
    .struct_size = sizeof(stephost_step_descriptor),
    .weight = STEP2_WEIGHT,
    .name = STEP2_NAME,
    .name_len = sizeof(STEP2_NAME) - 1,
    .run = run_step,
    .step_ctx = STEP2_NAME,
};
static const stephost_step_descriptor *const steps[] = {&step1, &step2};
#else
static const stephost_step_descriptor *const steps[] = {&step1};
#endif

__attribute__((visibility("default"))) stephost_status ENTRY_NAME(
    const stephost_host_offer *offer, stephost_plugin_descriptor *descriptor) {
#ifdef INIT_FAILS
    offer->services->report_error(offer->services->ctx, INIT_FAILS, strlen(INIT_FAILS));
    return STEPHOST_STATUS_ERROR;
#endif
    (void)offer;
    descriptor->struct_size = DESCRIPTOR_SIZE;
    descriptor->abi_version = STEPHOST_ABI_VERSION(ABI_MAJOR, ABI_MINOR);
    descriptor->name = PLUGIN_NAME;
    descriptor->name_len = sizeof(PLUGIN_NAME) - 1;
    descriptor->version = PLUGIN_VERSION;
    descriptor->version_len = sizeof(PLUGIN_VERSION) - 1;
#ifdef NO_STEPS
    (void)steps;
    descriptor->steps = NULL;
    descriptor->step_count = 0;
#else
    descriptor->steps = steps;
    descriptor->step_count = sizeof steps / sizeof steps[0];
#endif
    return STEPHOST_STATUS_OK;
}
