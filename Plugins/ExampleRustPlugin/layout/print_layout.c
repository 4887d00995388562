// Prints what a C compiler makes of stephost.h on this machine: the size and alignment of every
// typedef and struct, the offset and size of every field, the value of every constant and of the
// version macros for a few inputs. scripts/check-rust-bindings compiles this against the real header
// and compares its output, line by line, with the same report printed by the Rust bindings
// (src/abi.rs), so a binding that drifts from the header is named by struct and field.
//
// One item per line, "KIND NAME VALUES", in header order (NAME has no spaces, so the two first words
// are the item's key):
//   typedef T size N align N signed 0|1   a scalar or function pointer typedef
//   struct T size N align N               a struct
//   field T.F offset N size N             one field of it
//   through T.F N                         STEPHOST_SIZE_THROUGH(T, F)
//   const NAME VALUE                      a constant (strings quoted)
//   version EXPR VALUE                    a version macro applied to fixed inputs
//
// Build: cc -std=c11 -Wall -Wextra -Werror -I Sources/StepHostABI/include print_layout.c
#include <stdalign.h>
#include <stdio.h>

#include "stephost.h"

#define TYPEDEF(T) \
    printf("typedef %s size %zu align %zu signed %d\n", #T, sizeof(T), alignof(T), (T)-1 < (T)0 ? 1 : 0)
#define POINTER_TYPEDEF(T) printf("typedef %s size %zu align %zu signed 0\n", #T, sizeof(T), alignof(T))
#define STRUCT(T) printf("struct %s size %zu align %zu\n", #T, sizeof(T), alignof(T))
#define FIELD(T, F) printf("field %s.%s offset %zu size %zu\n", #T, #F, offsetof(T, F), sizeof(((T *)0)->F))
#define THROUGH(T, F) printf("through %s.%s %zu\n", #T, #F, (size_t)STEPHOST_SIZE_THROUGH(T, F))
#define INT_CONST(C) printf("const %s %lld\n", #C, (long long)(C))
#define STRING_CONST(C) printf("const %s \"%s\"\n", #C, C)
#define VERSION(EXPR) printf("version %s %lu\n", #EXPR, (unsigned long)(EXPR))

int main(void) {
    INT_CONST(STEPHOST_ABI_CURRENT_MAJOR);
    INT_CONST(STEPHOST_ABI_CURRENT_MINOR);
    STRING_CONST(STEPHOST_ENTRY_SYMBOL);
    STRING_CONST(STEPHOST_CREATE_RUNTIME_NAME);
    INT_CONST(STEPHOST_CREATE_RUNTIME_WEIGHT);

    // The macros and their static inline twins, at the edges: a major or minor above 16 bits is cut.
    // (No spaces in the arguments: the expression is the item's name.)
    VERSION(STEPHOST_ABI_VERSION(1,0));
    VERSION(STEPHOST_ABI_VERSION(1,1));
    VERSION(STEPHOST_ABI_VERSION(2,0x1FFFF));
    VERSION(STEPHOST_ABI_VERSION(0x1FFFF,3));
    VERSION(STEPHOST_ABI_MAJOR(0xFFFFFFFFu));
    VERSION(STEPHOST_ABI_MINOR(0xFFFFFFFFu));
    VERSION(STEPHOST_ABI_MAJOR(0x00010002u));
    VERSION(STEPHOST_ABI_MINOR(0x00010002u));
    VERSION(stephost_abi_version(1,1));
    VERSION(stephost_abi_major(0x00030004u));
    VERSION(stephost_abi_minor(0x00030004u));

    TYPEDEF(stephost_status);
    INT_CONST(STEPHOST_STATUS_OK);
    INT_CONST(STEPHOST_STATUS_ERROR);
    INT_CONST(STEPHOST_STATUS_INVALID_ARGUMENT);

    TYPEDEF(stephost_log_level);
    INT_CONST(STEPHOST_LOG_DEBUG);
    INT_CONST(STEPHOST_LOG_INFO);
    INT_CONST(STEPHOST_LOG_WARNING);
    INT_CONST(STEPHOST_LOG_ERROR);

    TYPEDEF(stephost_outcome);
    INT_CONST(STEPHOST_OUTCOME_DONE);
    INT_CONST(STEPHOST_OUTCOME_RETRY);
    INT_CONST(STEPHOST_OUTCOME_FAIL);

    STRUCT(stephost_host_services);
    FIELD(stephost_host_services, struct_size);
    FIELD(stephost_host_services, ctx);
    FIELD(stephost_host_services, report_error);
    FIELD(stephost_host_services, log);
    THROUGH(stephost_host_services, log);

    STRUCT(stephost_host_offer);
    FIELD(stephost_host_offer, struct_size);
    FIELD(stephost_host_offer, abi_min);
    FIELD(stephost_host_offer, abi_max);
    FIELD(stephost_host_offer, services);
    THROUGH(stephost_host_offer, services);

    STRUCT(stephost_call_services);
    FIELD(stephost_call_services, struct_size);
    FIELD(stephost_call_services, set_field);
    FIELD(stephost_call_services, remove_field);
    FIELD(stephost_call_services, add_component_override);
    FIELD(stephost_call_services, add_global_override);
    FIELD(stephost_call_services, add_label);
    FIELD(stephost_call_services, log);
    FIELD(stephost_call_services, checkpoint);
    FIELD(stephost_call_services, set_retry_after);
    FIELD(stephost_call_services, set_error);
    FIELD(stephost_call_services, is_cancelled);
    THROUGH(stephost_call_services, set_error);
    THROUGH(stephost_call_services, is_cancelled);

    STRUCT(stephost_step_call);
    FIELD(stephost_step_call, struct_size);
    FIELD(stephost_step_call, operation_json);
    FIELD(stephost_step_call, operation_json_len);
    FIELD(stephost_step_call, ctx);
    FIELD(stephost_step_call, services);
    THROUGH(stephost_step_call, services);

    POINTER_TYPEDEF(stephost_step_run_fn);

    STRUCT(stephost_step_descriptor);
    FIELD(stephost_step_descriptor, struct_size);
    FIELD(stephost_step_descriptor, weight);
    FIELD(stephost_step_descriptor, name);
    FIELD(stephost_step_descriptor, name_len);
    FIELD(stephost_step_descriptor, run);
    FIELD(stephost_step_descriptor, step_ctx);
    THROUGH(stephost_step_descriptor, step_ctx);

    STRUCT(stephost_plugin_descriptor);
    FIELD(stephost_plugin_descriptor, struct_size);
    FIELD(stephost_plugin_descriptor, abi_version);
    FIELD(stephost_plugin_descriptor, name);
    FIELD(stephost_plugin_descriptor, name_len);
    FIELD(stephost_plugin_descriptor, version);
    FIELD(stephost_plugin_descriptor, version_len);
    FIELD(stephost_plugin_descriptor, steps);
    FIELD(stephost_plugin_descriptor, step_count);
    THROUGH(stephost_plugin_descriptor, step_count);

    POINTER_TYPEDEF(stephost_plugin_init_fn);
    return 0;
}
