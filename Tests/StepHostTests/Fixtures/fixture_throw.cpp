// A C++ plugin whose step throws: a std::runtime_error leaves the extern "C" run function and unwinds into the
// host, which stephost.h (FAULTS) forbids. The tests compile it with g++ -fexceptions, so the exception really
// propagates out of the plugin; in a host with no handler for it, the C++ runtime calls std::terminate, which
// aborts the process (SIGABRT). The -D options PLUGIN_NAME, STEP1_NAME and STEP1_WEIGHT work as in
// fixture_plugin.c, and so does ONLY_WHEN: with it, only an operation whose JSON holds those bytes throws.
#include <cstring>
#include <stdexcept>

#include "stephost.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "fixture_throw"
#endif
#ifndef STEP1_NAME
#define STEP1_NAME "fixture_throw_step"
#endif
#ifndef STEP1_WEIGHT
#define STEP1_WEIGHT 10
#endif

// Not noexcept: an extern "C" function compiled with -fexceptions lets an exception through. Hidden: the plugin
// exports only its entry point.
extern "C" __attribute__((visibility("hidden"))) stephost_outcome fixture_throw_run(void *, const stephost_step_call *call) {
#ifdef ONLY_WHEN
    if (memmem(call->operation_json, call->operation_json_len, ONLY_WHEN, sizeof(ONLY_WHEN) - 1) == nullptr) {
        return STEPHOST_OUTCOME_DONE;
    }
#endif
    call->services->log(call->ctx, STEPHOST_LOG_INFO, "about to throw", std::strlen("about to throw"));
    throw std::runtime_error("fixture_throw: a C++ exception out of a step's run function");
}

static const stephost_step_descriptor step1 = {
    sizeof(stephost_step_descriptor), STEP1_WEIGHT, STEP1_NAME, sizeof(STEP1_NAME) - 1, fixture_throw_run, nullptr,
};
static const stephost_step_descriptor *const steps[] = {&step1};

extern "C" __attribute__((visibility("default"))) stephost_status stephost_plugin_init(
    const stephost_host_offer *, stephost_plugin_descriptor *descriptor) {
    const size_t capacity = descriptor->struct_size;
    descriptor->struct_size = static_cast<uint32_t>(
        capacity < sizeof(stephost_plugin_descriptor) ? capacity : sizeof(stephost_plugin_descriptor));
    descriptor->abi_version = STEPHOST_ABI_VERSION(1, 0);
    descriptor->name = PLUGIN_NAME;
    descriptor->name_len = sizeof(PLUGIN_NAME) - 1;
    descriptor->version = "1.0.0";
    descriptor->version_len = 5;
    descriptor->steps = steps;
    descriptor->step_count = 1;
    return STEPHOST_STATUS_OK;
}
