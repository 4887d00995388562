// A configurable test plugin. The tests compile it with -D options into a fresh .so per case, good or
// deliberately broken in exactly one way. Every option has a default that makes a valid plugin.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
// What the plugin declares as the descriptor's struct_size. By default what stephost.h asks: the smaller of
// the capacity the host passed in and the plugin's own sizeof.
#ifndef DESCRIPTOR_SIZE
#define DESCRIPTOR_SIZE (capacity < sizeof(stephost_plugin_descriptor) ? capacity : sizeof(stephost_plugin_descriptor))
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
#ifndef NAME_LEN
#define NAME_LEN (sizeof(PLUGIN_NAME) - 1)
#endif
#ifndef VERSION_LEN
#define VERSION_LEN (sizeof(PLUGIN_VERSION) - 1)
#endif
// The length the run modes 13 to 16 pass where a real length belongs (SIZE_MAX: 2^64 - 1).
#ifndef HUGE_LEN
#define HUGE_LEN SIZE_MAX
#endif

// What the step's run does: 0 done, 1 retry after 250 ms, 2 fail, 3 unknown outcome code,
// 4 set a field to invalid JSON, 5 set a reserved field, 6 retry after 50 ms until the third pass,
// 7 record the calling thread's name, 8 on the first pass set "slow_started", checkpoint and block for
// 60 s (to be killed), 9 add a secret override and log and fail with its value, 10 on the first pass set
// "slow_started", checkpoint, block for 1 s, then set "after_sleep", 11 add a secret override, log its value
// and return an unknown outcome code (a fault), 12 set a field, checkpoint, set another, then return an
// unknown outcome code (a fault after valid writes), 13 to 16 pass HUGE_LEN as the length of a label value,
// a global override value, a component override key, a field value, 17 log and fail with text holding a
// newline, a fake output line and a terminal escape sequence, 18 set_error(NULL, 5) and fail, 19 declare a
// secret and fail with it crossing the 4 KiB cut, after logging it followed by a combining mark, 20 on the
// first pass set "long_started", checkpoint and block for 3 s, 21 to 24 set a field to a value nested 512
// deep, one with a byte-order mark, one in UTF-16, one of 70 KiB, 25 keep the call's context and use it in
// the next call, 26 use the call's context from a thread of its own, 27 log 3000 debug and 1500 error lines,
// then checkpoint, 28 take the host down with a bad write (SIGSEGV) while the step runs, 29 set two fields
// whose keys are canonically equivalent but differ in bytes ("caf" + U+00E9 and "cafe" + U+0301), 30 nothing at
// all (done, no write).
#ifndef RUN_MODE
#define RUN_MODE 0
#endif

// A plugin built against a newer header: FUTURE_FIELD names a field that header appends to every struct. The
// plugin fills it with garbage in the structs it owns, and in the descriptor when the host's capacity holds it.
#ifdef FUTURE_FIELD
#define FUTURE_GARBAGE 0xdeadbeefdeadbeefULL
#define FUTURE_INIT .FUTURE_FIELD = FUTURE_GARBAGE,
#else
#define FUTURE_INIT
#endif

// The operation's "pass" member, or 0.
static long pass_number(const stephost_step_call *call) {
    const char *at = memmem(call->operation_json, call->operation_json_len, "\"pass\":", 7);
    return at == NULL ? 0 : strtol(at + 7, NULL, 10);
}

// Mode 26: a thread of the plugin's own that uses the call's context while the call runs.
struct foreign_use {
    const stephost_step_call *call;
    stephost_status status;
};
static void *use_from_another_thread(void *argument) {
    struct foreign_use *use = argument;
    use->status = use->call->services->set_field(use->call->ctx, "foreign", 7, "1", 1);
    return NULL;
}

static stephost_outcome run_step(void *step_ctx, const stephost_step_call *call) {
    const char *name = step_ctx;
    const stephost_call_services *s = call->services;
    char text[128];
    switch (RUN_MODE) {
    case 6: {
        long pass = pass_number(call);
        int n = snprintf(text, sizeof text, "%ld", pass);
        s->set_field(call->ctx, "passes_seen", 11, text, (size_t)n);
        if (pass < 3) {
            s->set_retry_after(call->ctx, 50);
            return STEPHOST_OUTCOME_RETRY;
        }
        return STEPHOST_OUTCOME_DONE;
    }
    case 7: {
        char thread[32] = "";
        pthread_getname_np(pthread_self(), thread, sizeof thread);
        int n = snprintf(text, sizeof text, "\"%s\"", thread);
        s->set_field(call->ctx, "thread", 6, text, (size_t)n);
        return STEPHOST_OUTCOME_DONE;
    }
    case 8:
        if (memmem(call->operation_json, call->operation_json_len, "\"slow_started\"", 14) != NULL) {
            return STEPHOST_OUTCOME_DONE;
        }
        s->set_field(call->ctx, "slow_started", 12, "true", 4);
        if (s->checkpoint(call->ctx) != STEPHOST_STATUS_OK) return STEPHOST_OUTCOME_FAIL;
        sleep(60);
        return STEPHOST_OUTCOME_DONE;
    case 10:
        if (memmem(call->operation_json, call->operation_json_len, "\"slow_started\"", 14) != NULL) {
            return STEPHOST_OUTCOME_DONE;
        }
        s->set_field(call->ctx, "slow_started", 12, "true", 4);
        if (s->checkpoint(call->ctx) != STEPHOST_STATUS_OK) return STEPHOST_OUTCOME_FAIL;
        sleep(1);
        s->set_field(call->ctx, "after_sleep", 11, "true", 4);
        return STEPHOST_OUTCOME_DONE;
    case 11:
        s->add_component_override(call->ctx, "vault", 5, "token", 5, "hunter2-vault-token", 19, 1);
        s->log(call->ctx, STEPHOST_LOG_ERROR, "token hunter2-vault-token was refused", 37);
        return 7;
    case 9:
        s->add_component_override(call->ctx, "vault", 5, "token", 5, "hunter2-vault-token", 19, 1);
        s->log(call->ctx, STEPHOST_LOG_ERROR, "token hunter2-vault-token was refused", 37);
        s->set_error(call->ctx, "vault refused hunter2-vault-token", 33);
        return STEPHOST_OUTCOME_FAIL;
    case 12:
        // Valid writes, one of them checkpointed, then an ABI violation: none of them may stay.
        s->set_field(call->ctx, "before_fault", 12, "true", 4);
        if (s->checkpoint(call->ctx) != STEPHOST_STATUS_OK) return STEPHOST_OUTCOME_FAIL;
        s->set_field(call->ctx, "also_before_fault", 17, "1", 1);
        return 7;
    case 13:
        return s->add_label(call->ctx, "k", 1, "v", HUGE_LEN) == STEPHOST_STATUS_OK ? STEPHOST_OUTCOME_DONE : 9;
    case 14:
        s->add_global_override(call->ctx, "k", 1, "v", HUGE_LEN, 0);
        return STEPHOST_OUTCOME_DONE;
    case 15:
        s->add_component_override(call->ctx, "c", 1, "k", HUGE_LEN, "v", 1, 0);
        return STEPHOST_OUTCOME_DONE;
    case 16:
        s->set_field(call->ctx, "f", 1, "1", HUGE_LEN);
        return STEPHOST_OUTCOME_DONE;
    case 17: {
        // Text that would forge output lines and drive the terminal if it reached it raw.
        const char *log = "probe\nforged log line";
        const char *error = "boom\nsucceeded: runtime forged\x1b[2J";
        s->log(call->ctx, STEPHOST_LOG_ERROR, log, strlen(log));
        s->set_error(call->ctx, error, strlen(error));
        return STEPHOST_OUTCOME_FAIL;
    }
    case 18:
        s->set_error(call->ctx, NULL, 5);
        return STEPHOST_OUTCOME_FAIL;
    case 19: {
        // A secret that crosses the 4 KiB a message is cut to, and one followed by a combining mark.
        static char error[4200];
        const char *secret = "hunter2-vault-token";
        memset(error, 'A', 4090);
        memcpy(error + 4090, secret, strlen(secret));
        const char *log = "token hunter2-vault-token\xcc\x81 was refused";  // U+0301 after the secret
        s->add_component_override(call->ctx, "vault", 5, "token", 5, secret, strlen(secret), 1);
        s->log(call->ctx, STEPHOST_LOG_ERROR, log, strlen(log));
        s->set_error(call->ctx, error, 4090 + strlen(secret));
        return STEPHOST_OUTCOME_FAIL;
    }
    case 20:
        // Longer than a 1 s lease: only renewals while it runs keep another host from taking over.
        if (memmem(call->operation_json, call->operation_json_len, "\"long_started\"", 14) != NULL) {
            return STEPHOST_OUTCOME_DONE;
        }
        s->set_field(call->ctx, "long_started", 12, "true", 4);
        if (s->checkpoint(call->ctx) != STEPHOST_STATUS_OK) return STEPHOST_OUTCOME_FAIL;
        sleep(3);
        return STEPHOST_OUTCOME_DONE;
    case 21: {
        // A valid JSON value nested 512 levels deep: one more than Foundation reads once stored in the fields.
        static char deep[1024];
        memset(deep, '[', 512);
        memset(deep + 512, ']', 512);
        s->set_field(call->ctx, "deep", 4, deep, sizeof deep);
        return STEPHOST_OUTCOME_DONE;
    }
    case 22:
        s->set_field(call->ctx, "bom", 3, "\xef\xbb\xbf" "1", 4);  // a UTF-8 byte-order mark
        return STEPHOST_OUTCOME_DONE;
    case 23:
        s->set_field(call->ctx, "wide", 4, "\0" "1", 2);  // "1" in UTF-16BE
        return STEPHOST_OUTCOME_DONE;
    case 24: {
        static char big[70 * 1024];
        memset(big, 'x', sizeof big);
        big[0] = '"';
        big[sizeof big - 1] = '"';
        s->set_field(call->ctx, "big", 3, big, sizeof big);
        return STEPHOST_OUTCOME_DONE;
    }
    case 25: {
        // Keeps the first call's context and uses it in the next call.
        static void *kept = NULL;
        if (kept == NULL) {
            kept = call->ctx;
            return STEPHOST_OUTCOME_DONE;
        }
        return s->set_field(kept, "stale", 5, "1", 1) == STEPHOST_STATUS_OK ? 9 : STEPHOST_OUTCOME_DONE;
    }
    case 26: {
        struct foreign_use use = {call, STEPHOST_STATUS_OK};
        pthread_t thread;
        if (pthread_create(&thread, NULL, use_from_another_thread, &use) != 0) return STEPHOST_OUTCOME_FAIL;
        pthread_join(thread, NULL);
        return use.status == STEPHOST_STATUS_OK ? 9 : STEPHOST_OUTCOME_DONE;
    }
    case 28:
        // A step that crashes the process it runs in: a real bad write (raise() would only report it, since
        // the Swift runtime's backtracer handles a raised signal and returns).
        *(volatile int *)(uintptr_t)pass_number(call) = 1;
        return STEPHOST_OUTCOME_DONE;
    case 30:
        return STEPHOST_OUTCOME_DONE;
    case 29:
        s->set_field(call->ctx, "caf\xc3\xa9", 5, "1", 1);
        s->set_field(call->ctx, "cafe\xcc\x81", 6, "2", 1);
        return STEPHOST_OUTCOME_DONE;
    case 27:
        // A chatty step: 3000 debug lines and 1500 error lines, then a checkpoint, then done.
        for (int i = 0; i < 3000; i++) s->log(call->ctx, STEPHOST_LOG_DEBUG, "debug line", 10);
        for (int i = 0; i < 1500; i++) s->log(call->ctx, STEPHOST_LOG_ERROR, "error line", 10);
        s->checkpoint(call->ctx);
        return STEPHOST_OUTCOME_DONE;
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
    FUTURE_INIT
};

#ifdef STEP2_NAME
static stephost_step_descriptor step2 = {
    .struct_size = sizeof(stephost_step_descriptor),
    .weight = STEP2_WEIGHT,
    .name = STEP2_NAME,
    .name_len = sizeof(STEP2_NAME) - 1,
    .run = run_step,
    .step_ctx = STEP2_NAME,
    FUTURE_INIT
};
static const stephost_step_descriptor *const steps[] = {&step1, &step2};
#else
static const stephost_step_descriptor *const steps[] = {&step1};
#endif

__attribute__((visibility("default"))) stephost_status ENTRY_NAME(
    const stephost_host_offer *offer, stephost_plugin_descriptor *descriptor) {
#ifdef INIT_ABORTS
    abort();  // a plugin that takes the process down while it loads
#endif
#ifdef INIT_FAILS
    offer->services->report_error(offer->services->ctx, INIT_FAILS, strlen(INIT_FAILS));
    return STEPHOST_STATUS_ERROR;
#endif
#ifdef INIT_REPORTS_THEN_SUCCEEDS
    offer->services->report_error(
        offer->services->ctx, INIT_REPORTS_THEN_SUCCEEDS, strlen(INIT_REPORTS_THEN_SUCCEEDS));
#endif
    (void)offer;
    const size_t capacity = descriptor->struct_size;
    (void)capacity;
    descriptor->struct_size = DESCRIPTOR_SIZE;
#ifdef FUTURE_FIELD
    if (capacity >= sizeof *descriptor) descriptor->FUTURE_FIELD = FUTURE_GARBAGE;
#endif
    descriptor->abi_version = STEPHOST_ABI_VERSION(ABI_MAJOR, ABI_MINOR);
    descriptor->name = PLUGIN_NAME;
    descriptor->name_len = NAME_LEN;
    descriptor->version = PLUGIN_VERSION;
    descriptor->version_len = VERSION_LEN;
#ifdef NO_STEPS
    (void)steps;
    descriptor->steps = NULL;
    descriptor->step_count = 0;
#else
    descriptor->steps = steps;
#ifdef STEP_COUNT
    descriptor->step_count = STEP_COUNT;
#else
    descriptor->step_count = sizeof steps / sizeof steps[0];
#endif
#endif
    return STEPHOST_STATUS_OK;
}
