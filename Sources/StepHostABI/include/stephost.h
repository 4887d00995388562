/*
 * stephost.h: the plugin ABI of stephost, the provisioning step host.
 *
 * This header is the only contract between the host and its plugins. A plugin is a
 * shared object (.so) that exports exactly one symbol, `stephost_plugin_init`, with C
 * linkage. Print this header from an installed host with `stephost plugin-header`.
 *
 * VERSIONS
 *   ABI versions are major.minor, packed by STEPHOST_ABI_VERSION. The host offers the
 *   range it supports; the plugin picks one version in that range and writes it into
 *   the descriptor. A different major is refused. Minor versions only append fields.
 *
 * STRUCT GROWTH
 *   Every struct begins with `struct_size`, its size in bytes as the writer knew it.
 *   Structs only grow by appending fields, in a new minor version. The minimum size
 *   of a struct at a minor version is its size up to and including the last field
 *   that version has (STEPHOST_SIZE_THROUGH); a minor version that does not grow a
 *   struct keeps the minimum of the one before. The last fields at ABI 1.0:
 *     stephost_host_services      log          stephost_step_call          services
 *     stephost_host_offer         services     stephost_step_descriptor    step_ctx
 *     stephost_call_services      set_error    stephost_plugin_descriptor  step_count
 *   ABI 1.1 appends one field: stephost_call_services.is_cancelled (its last field at 1.1).
 *   A reader of a struct the other side wrote (the host reads the plugin's, a plugin
 *   the host's):
 *   - checks the ABI version first, and trusts the layout only once it accepts it:
 *     the version the plugin chose, or for the offer, read before a version is
 *     chosen, the lowest minor of its major;
 *   - refuses a struct whose `struct_size` is below the minimum of that version,
 *     naming the struct, the size it declared and the minimum (the host reports the
 *     plugin broken: struct-too-small);
 *   - copies min(struct_size, the sizeof it knows) bytes, never more, into a zeroed
 *     struct: a known field past `struct_size` reads as zero and is absent (a NULL
 *     callback is not offered), and the tail of a larger struct (the fields of a
 *     newer minor) is ignored.
 *   So a plugin built against a newer minor that chose an older one may pass its
 *   larger structs, and a reader built against a newer minor reads an older
 *   writer's smaller ones. Each side writes its structs at its own sizeof, except
 *   the plugin descriptor: the host allocates it, zeroed, with `struct_size` set to
 *   the capacity; the plugin must not write past it and sets `struct_size` to the
 *   size it wrote, the smaller of that capacity and its own sizeof, at least the
 *   minimum of the version it chose (a plugin that needs more reports it through
 *   `report_error` and fails). A `struct_size` above the capacity is refused.
 *   The descriptor's first four fields (struct_size, abi_version, name, name_len)
 *   keep their place in every major version, so a host can name a plugin whose
 *   version it refuses.
 *
 * OWNERSHIP
 *   Everything the host passes in (the offer, the services, the operation JSON, the
 *   call) is borrowed for the duration of the call and must not be kept. Every host
 *   callback that takes a string or a buffer copies it before returning. Nothing the
 *   plugin allocates is ever freed by the host. The descriptor's strings, the step
 *   array and the step descriptors must stay valid for the life of the process: the
 *   host never unloads a plugin.
 *
 * STRINGS
 *   UTF-8 with an explicit length in bytes; no terminating NUL is needed or read.
 *   Every length is a size_t and is read as one: a length above its limit (2^63 and
 *   more included) is an error naming the field, never an empty string. Limits: plugin
 *   and step names 64 bytes, the plugin version 128, field keys 128, any other text a
 *   callback takes (values, keys, components, labels) 1 MiB, step_count 4096. Messages
 *   (log lines, set_error, report_error) are read up to 64 KiB; the host removes secret
 *   values from them and then keeps at most 4 KiB. A message length above 1 GiB is not
 *   read at all. One step run may write at most 16 MiB in all (field keys and values,
 *   overrides and labels, each call counted); past that its run is a fault.
 *
 * THREADING
 *   `stephost_plugin_init` is called once, before any step runs. A step's run function
 *   may be called from any thread, and concurrently for different operations, but
 *   never concurrently for the same operation. Callbacks in a call's services table
 *   may only be used on the calling thread, during that call. The call's `ctx` is a
 *   token, not a pointer, valid only during its call: a callback given a context kept
 *   from an earlier call, or called from another thread, does nothing and returns
 *   STEPHOST_STATUS_ERROR, and the step's run is a fault (none of its writes are kept).
 *
 * FAULTS
 *   Nothing may unwind across this boundary: no C++ exception, Swift error, Rust panic
 *   or longjmp. A plugin reports failure through return values and messages only.
 *
 * INIT
 *   `stephost_plugin_init` has no side effects beyond filling the descriptor (no
 *   threads, no network, no files): the host may load a plugin only to list it.
 *   A plugin that refuses the offer (no common version) reports why, and may still
 *   write the descriptor's struct_size, abi_version (the version it was built for),
 *   name and version before it returns STEPHOST_STATUS_ERROR: the host then reports
 *   the check `abi-version` with both versions under the plugin's name, so that an
 *   operator can disable it by name. It must not write past the capacity.
 *
 * NULLABILITY
 *   Every pointer is marked STEPHOST_NONNULL (never NULL) or STEPHOST_NULLABLE (may be
 *   NULL). Under clang these are `_Nonnull` and `_Nullable`, so a C plugin gets
 *   warnings and a binding generator the right optional types; elsewhere they are
 *   empty. A `ctx` is an opaque token: whatever it holds, pass it back unchanged. A
 *   buffer with a length may be NULL only when its length is 0. A callback in a
 *   services table is never NULL within the minimum size of the version in use; a
 *   field past `struct_size` is absent (read as NULL). The host itself trusts none of
 *   this: every pointer a plugin hands it is checked.
 *
 * LAYOUT
 *   Sizes and offsets on LP64 (x86_64 and aarch64 Linux) are fixed by the
 *   STEPHOST_ASSERT_* checks at the end of this header: a binding in another
 *   language checks its own layout against the same numbers.
 */
#ifndef STEPHOST_H
#define STEPHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Nullability ------------------------------------------------------------- */

/* clang's nullability qualifiers for C and C++ plugins; empty for other compilers and
   for Swift, whose host and kit check every pointer the other side hands them. */
#if defined(__clang__) && !defined(__swift__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-extension"
#define STEPHOST_NULLABLE _Nullable
#define STEPHOST_NONNULL _Nonnull
#else
#define STEPHOST_NULLABLE
#define STEPHOST_NONNULL
#endif

/**
 * A string literal and its length in bytes, for the (text, length) pairs the callbacks
 * take: `s->log(call->ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL("started"))`. The
 * length is counted by the compiler, never by hand; anything but a literal is a
 * compile error.
 */
#define STEPHOST_LITERAL(text) ("" text), (sizeof("" text) - 1)

/* ---- Versions ---------------------------------------------------------------- */

#define STEPHOST_ABI_VERSION(major, minor) ((((uint32_t)(major)) << 16) | ((uint32_t)(minor) & 0xFFFFu))
#define STEPHOST_ABI_MAJOR(version) (((uint32_t)(version)) >> 16)
#define STEPHOST_ABI_MINOR(version) (((uint32_t)(version)) & 0xFFFFu)

/** The ABI version this header describes. */
#define STEPHOST_ABI_CURRENT_MAJOR 1
#define STEPHOST_ABI_CURRENT_MINOR 1

/** The name of the one symbol a plugin exports. */
#define STEPHOST_ENTRY_SYMBOL "stephost_plugin_init"

/** The name of the built-in step that sends the provisioning request. No plugin step may use it. */
#define STEPHOST_CREATE_RUNTIME_NAME "create_runtime"
/** The weight of the built-in `create_runtime` step. Plugin steps use any other weight >= 1. */
#define STEPHOST_CREATE_RUNTIME_WEIGHT 100

/**
 * The size of `type` up to and including `field`: the least `struct_size` that holds the
 * field. The minimum size of a struct at a minor version is this for the last field that
 * version has (see STRUCT GROWTH), for example
 * STEPHOST_SIZE_THROUGH(stephost_plugin_descriptor, step_count) at 1.0.
 */
#define STEPHOST_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/** STEPHOST_ABI_VERSION and its parts as functions, for languages that cannot use C macros. */
static inline uint32_t stephost_abi_version(uint32_t major, uint32_t minor) {
    return STEPHOST_ABI_VERSION(major, minor);
}
static inline uint32_t stephost_abi_major(uint32_t version) { return STEPHOST_ABI_MAJOR(version); }
static inline uint32_t stephost_abi_minor(uint32_t version) { return STEPHOST_ABI_MINOR(version); }

/* ---- Status codes ------------------------------------------------------------ */
/* Each code is a constant of its type, usable in `case` labels and in #if-free code alike. */

/** Returned by `stephost_plugin_init` and by host callbacks. */
typedef int32_t stephost_status;
#define STEPHOST_STATUS_OK ((stephost_status)0)
/** The call failed; a message explains why (reported through `report_error` at init). */
#define STEPHOST_STATUS_ERROR ((stephost_status)1)
/** An argument was invalid (bad UTF-8, invalid JSON, reserved or malformed key). */
#define STEPHOST_STATUS_INVALID_ARGUMENT ((stephost_status)2)

/* ---- Log levels -------------------------------------------------------------- */

typedef int32_t stephost_log_level;
#define STEPHOST_LOG_DEBUG ((stephost_log_level)0)
#define STEPHOST_LOG_INFO ((stephost_log_level)1)
#define STEPHOST_LOG_WARNING ((stephost_log_level)2)
#define STEPHOST_LOG_ERROR ((stephost_log_level)3)

/* ---- Step outcomes ----------------------------------------------------------- */

/** What a step run returns. */
typedef int32_t stephost_outcome;
/** The step finished; the operation goes on to the next step. */
#define STEPHOST_OUTCOME_DONE ((stephost_outcome)0)
/**
 * Repeat the whole operation from the first step later. The delay is the last value
 * passed to `set_retry_after` during the call (the host's default retry delay if none).
 */
#define STEPHOST_OUTCOME_RETRY ((stephost_outcome)1)
/** The operation fails. The message is the last one passed to `set_error` during the call. */
#define STEPHOST_OUTCOME_FAIL ((stephost_outcome)2)
/*
 * What happens to a step's writes (set_field, remove_field, overrides, labels):
 * - DONE and RETRY keep them; a retry's overrides and labels are rebuilt by the next
 *   pass, its fields are kept.
 * - FAIL keeps its field writes (they are stored with the failed operation, so an
 *   operator sees what the step had recorded, for example the id of a resource it
 *   created) and the failure message.
 * - A fault (any other return value, or a callback the host refused with
 *   STEPHOST_STATUS_INVALID_ARGUMENT or through a stale context) discards every write of
 *   that call, checkpoints included: the operation is stored as it was when the step
 *   began, and fails naming the fault.
 */

/* ---- Host services at init --------------------------------------------------- */

/** Services the host offers to `stephost_plugin_init`. Valid only during that call. */
typedef struct stephost_host_services {
    uint32_t struct_size;
    /** The host's context; pass it back as the first argument of every callback. */
    void *STEPHOST_NULLABLE ctx;
    /** Explain why init fails. Call before returning STEPHOST_STATUS_ERROR. Copies the message. */
    void (*STEPHOST_NONNULL report_error)(void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE message, size_t message_len);
    /** Write a line to the host's log. Copies the message. */
    void (*STEPHOST_NONNULL log)(void *STEPHOST_NULLABLE ctx, stephost_log_level level, const char *STEPHOST_NULLABLE message, size_t message_len);
} stephost_host_services;

/** What the host offers: the ABI versions it supports and its services. */
typedef struct stephost_host_offer {
    uint32_t struct_size;
    /** The lowest ABI version the host supports (STEPHOST_ABI_VERSION). */
    uint32_t abi_min;
    /** The highest ABI version the host supports (STEPHOST_ABI_VERSION). */
    uint32_t abi_max;
    const stephost_host_services *STEPHOST_NONNULL services;
} stephost_host_offer;

/* ---- Step calls -------------------------------------------------------------- */

/**
 * Callbacks a step uses during one run. Every callback takes the call's `ctx` first,
 * copies what it is given, and returns STEPHOST_STATUS_OK or an error status.
 */
typedef struct stephost_call_services {
    uint32_t struct_size;
    /**
     * Set the custom field `key` of the operation to `json` (one complete JSON value).
     * Field keys are 1 to 128 bytes of UTF-8; the host reserves the prefix "stephost".
     * Keys are bytes: two keys that differ in bytes are two fields, even where Unicode
     * calls them the same text (no normalization). A value is stored and handed back to
     * later steps exactly as written.
     * A value is UTF-8 JSON (no byte-order mark, no UTF-16 or UTF-32, no raw control
     * characters) of at most 64 KiB, nested at most 64 levels deep; all custom fields of
     * an operation together (keys and values) are at most 1 MiB. A value outside these
     * limits is a fault of the step (the call returns STEPHOST_STATUS_INVALID_ARGUMENT and
     * none of the step's writes are kept), so no value can make an operation unreadable.
     */
    stephost_status (*STEPHOST_NONNULL set_field)(
        void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE key, size_t key_len, const char *STEPHOST_NULLABLE json, size_t json_len);
    /** Remove the custom field `key`. Removing an absent field succeeds. */
    stephost_status (*STEPHOST_NONNULL remove_field)(void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE key, size_t key_len);
    /** Add an override for one component. A later override of the same component and key replaces an earlier one. */
    stephost_status (*STEPHOST_NONNULL add_component_override)(
        void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE component, size_t component_len, const char *STEPHOST_NULLABLE key, size_t key_len,
        const char *STEPHOST_NULLABLE value, size_t value_len, int32_t secret);
    /** Add an override for every component (a global override). */
    stephost_status (*STEPHOST_NONNULL add_global_override)(
        void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE key, size_t key_len, const char *STEPHOST_NULLABLE value, size_t value_len, int32_t secret);
    /** Add a label to the runtime. */
    stephost_status (*STEPHOST_NONNULL add_label)(
        void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE key, size_t key_len, const char *STEPHOST_NULLABLE value, size_t value_len);
    /** Write a line to the host's log, attributed to this step and operation. */
    void (*STEPHOST_NONNULL log)(void *STEPHOST_NULLABLE ctx, stephost_log_level level, const char *STEPHOST_NULLABLE message, size_t message_len);
    /** Persist the custom fields set so far now, before the step returns. */
    stephost_status (*STEPHOST_NONNULL checkpoint)(void *STEPHOST_NULLABLE ctx);
    /** Set the delay before the operation is repeated, for STEPHOST_OUTCOME_RETRY. */
    void (*STEPHOST_NONNULL set_retry_after)(void *STEPHOST_NULLABLE ctx, uint64_t milliseconds);
    /** Set the failure message, for STEPHOST_OUTCOME_FAIL. */
    void (*STEPHOST_NONNULL set_error)(void *STEPHOST_NULLABLE ctx, const char *STEPHOST_NULLABLE message, size_t message_len);
    /*
     * ---- ABI 1.1 ----
     * A host at 1.0 writes a smaller table: a plugin reads this field only when
     * services->struct_size covers it (STEPHOST_SIZE_THROUGH(stephost_call_services,
     * is_cancelled)) and it is not NULL.
     */
    /**
     * Returns 1 once the step has passed its deadline, else 0. A long step polls it and,
     * once it returns 1, stops its work and returns (FAIL or RETRY): the host has already
     * failed the operation and stopped waiting, and it cannot stop a thread that never
     * returns. Cheap: no system call in process; one round trip to the host when the
     * plugin runs isolated.
     */
    int32_t (*STEPHOST_NULLABLE is_cancelled)(void *STEPHOST_NULLABLE ctx);
} stephost_call_services;

/** One run of one step for one operation. Borrowed for the call. */
typedef struct stephost_step_call {
    uint32_t struct_size;
    /**
     * The operation as one JSON object: {"id", "instance_id", "type", "pass",
     * "parameters": {...}, "defaulted_parameters": [...], "fields": {...}}. UTF-8, not
     * NUL-terminated. "pass" is the number of the pass this call belongs to (1 on the
     * first; every retry starts a new pass from the first step). "parameters" are the
     * request's with the host's defaults applied (a step reading "region" sees the region
     * the provisioning request will use); "defaulted_parameters" names, sorted, the
     * members whose values are the host's defaults rather than the request's. "attempt"
     * carries the same number as "pass" for plugins written before it was renamed; it is
     * deprecated and goes away with ABI 2.
     */
    const char *STEPHOST_NONNULL operation_json;
    size_t operation_json_len;
    /** The call's context; pass it to every callback in `services`. */
    void *STEPHOST_NULLABLE ctx;
    const stephost_call_services *STEPHOST_NONNULL services;
} stephost_step_call;

/** Runs one step. `step_ctx` is the step descriptor's `step_ctx`. Returns a STEPHOST_OUTCOME_* value. */
typedef stephost_outcome (*stephost_step_run_fn)(void *STEPHOST_NULLABLE step_ctx, const stephost_step_call *STEPHOST_NONNULL call);

/* ---- Descriptors ------------------------------------------------------------- */

/** One step of a plugin. Owned by the plugin; must stay valid for the life of the process. */
typedef struct stephost_step_descriptor {
    uint32_t struct_size;
    /** Weight >= 1 and != 100: steps below 100 run before create_runtime, above 100 after it. */
    int32_t weight;
    /** The step's name: 1 to 64 bytes of [A-Za-z0-9_.-], unique across all plugins. */
    const char *STEPHOST_NONNULL name;
    size_t name_len;
    stephost_step_run_fn STEPHOST_NONNULL run;
    /** Passed back as the first argument of `run`. */
    void *STEPHOST_NULLABLE step_ctx;
} stephost_step_descriptor;

/** What the plugin fills in at init. Allocated by the host, zeroed, `struct_size` set to its capacity. */
typedef struct stephost_plugin_descriptor {
    uint32_t struct_size;
    /** The ABI version the plugin chose, within the host's offer (STEPHOST_ABI_VERSION). */
    uint32_t abi_version;
    /** The plugin's name: 1 to 64 bytes of [A-Za-z0-9_.-], unique across plugins. */
    const char *STEPHOST_NONNULL name;
    size_t name_len;
    /** The plugin's own version, free-form UTF-8 (for example "1.4.2"). */
    const char *STEPHOST_NONNULL version;
    size_t version_len;
    /** The plugin's steps, in the order the plugin wants them among equal weights. */
    const stephost_step_descriptor *STEPHOST_NONNULL const *STEPHOST_NONNULL steps;
    size_t step_count;
} stephost_plugin_descriptor;

/* Declared with default visibility, so a plugin built with -fvisibility=hidden (the way to
   keep every other symbol inside it) still exports its entry point. */
#if defined(__GNUC__) || defined(__clang__)
#define STEPHOST_EXPORT __attribute__((visibility("default")))
#else
#define STEPHOST_EXPORT
#endif

/**
 * The entry point every plugin exports. Fill `descriptor` and return
 * STEPHOST_STATUS_OK, or report a message through `offer->services->report_error` and
 * return STEPHOST_STATUS_ERROR.
 */
STEPHOST_EXPORT stephost_status stephost_plugin_init(
    const stephost_host_offer *STEPHOST_NONNULL offer, stephost_plugin_descriptor *STEPHOST_NONNULL descriptor);

/** The type of `stephost_plugin_init`, for hosts that look it up with dlsym. */
typedef stephost_status (*stephost_plugin_init_fn)(
    const stephost_host_offer *STEPHOST_NONNULL, stephost_plugin_descriptor *STEPHOST_NONNULL);

/* ---- Layout on LP64 ----------------------------------------------------------- */

/* The size of every struct and the offset of every field on LP64 (see LAYOUT). A
   compiler that lays them out otherwise stops here, naming the struct and the field. */
#if defined(__LP64__)
#if defined(__cplusplus)
#define STEPHOST_STATIC_ASSERT(condition, message) static_assert(condition, message)
#else
#define STEPHOST_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#endif
#define STEPHOST_ASSERT_SIZE(type, size) \
    STEPHOST_STATIC_ASSERT(sizeof(type) == (size), "sizeof(" #type ") must be " #size " on LP64")
#define STEPHOST_ASSERT_OFFSET(type, field, offset) \
    STEPHOST_STATIC_ASSERT(offsetof(type, field) == (offset), "offsetof(" #type ", " #field ") must be " #offset " on LP64")
STEPHOST_ASSERT_SIZE(stephost_host_services, 32);
STEPHOST_ASSERT_OFFSET(stephost_host_services, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_host_services, ctx, 8);
STEPHOST_ASSERT_OFFSET(stephost_host_services, report_error, 16);
STEPHOST_ASSERT_OFFSET(stephost_host_services, log, 24);
STEPHOST_ASSERT_SIZE(stephost_host_offer, 24);
STEPHOST_ASSERT_OFFSET(stephost_host_offer, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_host_offer, abi_min, 4);
STEPHOST_ASSERT_OFFSET(stephost_host_offer, abi_max, 8);
STEPHOST_ASSERT_OFFSET(stephost_host_offer, services, 16);
STEPHOST_ASSERT_SIZE(stephost_call_services, 88);
STEPHOST_ASSERT_OFFSET(stephost_call_services, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_call_services, set_field, 8);
STEPHOST_ASSERT_OFFSET(stephost_call_services, remove_field, 16);
STEPHOST_ASSERT_OFFSET(stephost_call_services, add_component_override, 24);
STEPHOST_ASSERT_OFFSET(stephost_call_services, add_global_override, 32);
STEPHOST_ASSERT_OFFSET(stephost_call_services, add_label, 40);
STEPHOST_ASSERT_OFFSET(stephost_call_services, log, 48);
STEPHOST_ASSERT_OFFSET(stephost_call_services, checkpoint, 56);
STEPHOST_ASSERT_OFFSET(stephost_call_services, set_retry_after, 64);
STEPHOST_ASSERT_OFFSET(stephost_call_services, set_error, 72);
STEPHOST_ASSERT_OFFSET(stephost_call_services, is_cancelled, 80);
STEPHOST_ASSERT_SIZE(stephost_step_call, 40);
STEPHOST_ASSERT_OFFSET(stephost_step_call, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_step_call, operation_json, 8);
STEPHOST_ASSERT_OFFSET(stephost_step_call, operation_json_len, 16);
STEPHOST_ASSERT_OFFSET(stephost_step_call, ctx, 24);
STEPHOST_ASSERT_OFFSET(stephost_step_call, services, 32);
STEPHOST_ASSERT_SIZE(stephost_step_descriptor, 40);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, weight, 4);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, name, 8);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, name_len, 16);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, run, 24);
STEPHOST_ASSERT_OFFSET(stephost_step_descriptor, step_ctx, 32);
STEPHOST_ASSERT_SIZE(stephost_plugin_descriptor, 56);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, struct_size, 0);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, abi_version, 4);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, name, 8);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, name_len, 16);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, version, 24);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, version_len, 32);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, steps, 40);
STEPHOST_ASSERT_OFFSET(stephost_plugin_descriptor, step_count, 48);
#endif /* __LP64__ */

#if defined(__clang__) && !defined(__swift__)
#pragma clang diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* STEPHOST_H */
