//! Hand-written Rust bindings of `stephost.h` (Sources/StepHostABI/include/stephost.h), ABI 1.1.
//!
//! Every typedef, constant, function pointer type and struct of the header, in header order, under
//! the header's own names, so a reader can hold the two side by side. Nothing here is generated:
//! there is no bindgen and no network. The layout is pinned twice:
//!
//! - at compile time, by `const` assertions of every struct's size and alignment and every field's
//!   offset and size, with the numbers a C compiler gave for this header on x86_64 Linux (LP64);
//!   a binding that does not match them does not compile;
//! - against the header itself, by `scripts/check-rust-bindings`, which compiles
//!   `layout/print_layout.c` against the real header and compares its output with
//!   [`layout_report`], so numbers copied wrongly into this file are caught too, by name.
//!
//! Nullability, which C does not spell: every function pointer is an `Option<unsafe extern "C" fn>`
//! (NULL is `None`, the same bits: Rust guarantees the null-pointer optimisation for `Option` of a
//! function pointer), and every raw pointer field says whether the header lets it be NULL.
//!
//! Strings are `*const c_char` plus a `usize` length in bytes: UTF-8, not NUL-terminated.
#![allow(non_camel_case_types)]
// The binding is the whole header; this plugin uses a part of it.
#![allow(dead_code)]

use core::ffi::{c_char, c_void, CStr};

// ---- Versions ----------------------------------------------------------------------------------

/// `STEPHOST_ABI_VERSION(major, minor)`: the packed version. Bits of `major` above 16 are shifted
/// out and bits of `minor` above 16 are masked off, as in the C macro.
pub const fn stephost_abi_version(major: u32, minor: u32) -> u32 {
    (major << 16) | (minor & 0xFFFF)
}

/// `STEPHOST_ABI_MAJOR(version)`.
pub const fn stephost_abi_major(version: u32) -> u32 {
    version >> 16
}

/// `STEPHOST_ABI_MINOR(version)`.
pub const fn stephost_abi_minor(version: u32) -> u32 {
    version & 0xFFFF
}

/// The ABI version this binding describes.
pub const STEPHOST_ABI_CURRENT_MAJOR: u32 = 1;
pub const STEPHOST_ABI_CURRENT_MINOR: u32 = 1;

/// The name of the one symbol a plugin exports (NUL-terminated, for `dlsym`).
pub const STEPHOST_ENTRY_SYMBOL: &CStr = c"stephost_plugin_init";

/// The name of the built-in step that sends the provisioning request. No plugin step may use it.
/// (A `&str`: the ABI passes names with a length, never NUL-terminated.)
pub const STEPHOST_CREATE_RUNTIME_NAME: &str = "create_runtime";
/// The weight of the built-in `create_runtime` step. Plugin steps use any other weight >= 1.
pub const STEPHOST_CREATE_RUNTIME_WEIGHT: i32 = 100;

/// `STEPHOST_SIZE_THROUGH(type, field)`: the size of `type` up to and including `field`, the least
/// `struct_size` that holds the field. Usable in `const` items.
macro_rules! stephost_size_through {
    ($type:ty, $field:ident) => {{
        // The size of a field, from a pointer to it: a field's type cannot be named from outside.
        const fn size_of_pointee<F>(_: *const F) -> usize {
            ::core::mem::size_of::<F>()
        }
        let probe = ::core::mem::MaybeUninit::<$type>::uninit();
        // SAFETY: addr_of! takes the field's address without reading or referencing it.
        let field = unsafe { ::core::ptr::addr_of!((*probe.as_ptr()).$field) };
        ::core::mem::offset_of!($type, $field) + size_of_pointee(field)
    }};
}

// ---- Status codes ------------------------------------------------------------------------------

/// Returned by `stephost_plugin_init` and by host callbacks.
pub type stephost_status = i32;
pub const STEPHOST_STATUS_OK: stephost_status = 0;
/// The call failed; a message explains why (reported through `report_error` at init).
pub const STEPHOST_STATUS_ERROR: stephost_status = 1;
/// An argument was invalid (bad UTF-8, invalid JSON, reserved or malformed key).
pub const STEPHOST_STATUS_INVALID_ARGUMENT: stephost_status = 2;

// ---- Log levels --------------------------------------------------------------------------------

pub type stephost_log_level = i32;
pub const STEPHOST_LOG_DEBUG: stephost_log_level = 0;
pub const STEPHOST_LOG_INFO: stephost_log_level = 1;
pub const STEPHOST_LOG_WARNING: stephost_log_level = 2;
pub const STEPHOST_LOG_ERROR: stephost_log_level = 3;

// ---- Step outcomes -----------------------------------------------------------------------------

/// What a step run returns. Any other value is a fault: every write of that call is discarded.
pub type stephost_outcome = i32;
/// The step finished; the operation goes on to the next step.
pub const STEPHOST_OUTCOME_DONE: stephost_outcome = 0;
/// Repeat the whole operation from the first step later (`set_retry_after`, else the host's default).
pub const STEPHOST_OUTCOME_RETRY: stephost_outcome = 1;
/// The operation fails with the last message passed to `set_error`. Field writes are kept.
pub const STEPHOST_OUTCOME_FAIL: stephost_outcome = 2;

// ---- Host services at init ---------------------------------------------------------------------

/// Services the host offers to `stephost_plugin_init`. Valid only during that call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_host_services {
    pub struct_size: u32,
    /// The host's context, passed back as the first argument of every callback. Opaque: may be
    /// NULL for all the plugin knows, and is never dereferenced by the plugin.
    pub ctx: *mut c_void,
    /// Explain why init fails; call before returning STEPHOST_STATUS_ERROR. Copies the message.
    /// `message` may be NULL only with `message_len` 0.
    pub report_error: Option<unsafe extern "C" fn(ctx: *mut c_void, message: *const c_char, message_len: usize)>,
    /// Write a line to the host's log. Copies the message.
    pub log: Option<
        unsafe extern "C" fn(ctx: *mut c_void, level: stephost_log_level, message: *const c_char, message_len: usize),
    >,
}

/// What the host offers: the ABI versions it supports and its services.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_host_offer {
    pub struct_size: u32,
    /// The lowest ABI version the host supports (`stephost_abi_version`).
    pub abi_min: u32,
    /// The highest ABI version the host supports.
    pub abi_max: u32,
    /// The host's services. The header does not say it cannot be NULL; a plugin checks.
    pub services: *const stephost_host_services,
}

// ---- Step calls --------------------------------------------------------------------------------

/// Callbacks a step uses during one run. Every callback takes the call's `ctx` first, copies what
/// it is given, and returns STEPHOST_STATUS_OK or an error status. String arguments are a pointer
/// and a length; the pointer may be NULL only when the length is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_call_services {
    pub struct_size: u32,
    /// Set the custom field `key` (1 to 128 bytes, not starting "stephost") to `json`, one
    /// complete JSON value of at most 64 KiB. An invalid value is a fault of the step.
    pub set_field: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            key: *const c_char,
            key_len: usize,
            json: *const c_char,
            json_len: usize,
        ) -> stephost_status,
    >,
    /// Remove the custom field `key`. Removing an absent field succeeds.
    pub remove_field:
        Option<unsafe extern "C" fn(ctx: *mut c_void, key: *const c_char, key_len: usize) -> stephost_status>,
    /// Add an override for one component (`secret` is 0 or 1). A later one with the same
    /// component and key replaces an earlier one.
    pub add_component_override: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            component: *const c_char,
            component_len: usize,
            key: *const c_char,
            key_len: usize,
            value: *const c_char,
            value_len: usize,
            secret: i32,
        ) -> stephost_status,
    >,
    /// Add an override for every component (a global override).
    pub add_global_override: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            key: *const c_char,
            key_len: usize,
            value: *const c_char,
            value_len: usize,
            secret: i32,
        ) -> stephost_status,
    >,
    /// Add a label to the runtime.
    pub add_label: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            key: *const c_char,
            key_len: usize,
            value: *const c_char,
            value_len: usize,
        ) -> stephost_status,
    >,
    /// Write a line to the host's log, attributed to this step and operation.
    pub log: Option<
        unsafe extern "C" fn(ctx: *mut c_void, level: stephost_log_level, message: *const c_char, message_len: usize),
    >,
    /// Persist the custom fields set so far now, before the step returns.
    pub checkpoint: Option<unsafe extern "C" fn(ctx: *mut c_void) -> stephost_status>,
    /// Set the delay before the operation is repeated, for STEPHOST_OUTCOME_RETRY.
    pub set_retry_after: Option<unsafe extern "C" fn(ctx: *mut c_void, milliseconds: u64)>,
    /// Set the failure message, for STEPHOST_OUTCOME_FAIL.
    pub set_error: Option<unsafe extern "C" fn(ctx: *mut c_void, message: *const c_char, message_len: usize)>,
    // ---- ABI 1.1 ----
    /// Returns 1 once the step has passed its deadline, else 0. Absent (read as `None`) when the
    /// host's `struct_size` does not cover it (a 1.0 host), and may be NULL even when it does.
    pub is_cancelled: Option<unsafe extern "C" fn(ctx: *mut c_void) -> i32>,
}

/// One run of one step for one operation. Borrowed for the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_step_call {
    pub struct_size: u32,
    /// The operation as one JSON object: {"id", "instance_id", "type", "pass", "attempt",
    /// "parameters", "fields"}. UTF-8, NOT NUL-terminated: read exactly `operation_json_len`
    /// bytes. The header does not say it cannot be NULL; a plugin checks.
    pub operation_json: *const c_char,
    pub operation_json_len: usize,
    /// The call's context: a token valid only during this call, on this thread. Never
    /// dereferenced; passed to every callback in `services`.
    pub ctx: *mut c_void,
    /// The call's callbacks. The header does not say it cannot be NULL; a plugin checks.
    pub services: *const stephost_call_services,
}

/// Runs one step. `step_ctx` is the step descriptor's `step_ctx` (NULL if the plugin put NULL
/// there); `call` is borrowed for the call. Returns a STEPHOST_OUTCOME_* value.
/// As a C function pointer typedef it may be NULL, hence the `Option`.
pub type stephost_step_run_fn =
    Option<unsafe extern "C" fn(step_ctx: *mut c_void, call: *const stephost_step_call) -> stephost_outcome>;

// ---- Descriptors -------------------------------------------------------------------------------

/// One step of a plugin. Owned by the plugin; must stay valid for the life of the process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_step_descriptor {
    pub struct_size: u32,
    /// Weight >= 1 and != 100: below 100 the step runs before create_runtime, above it after.
    pub weight: i32,
    /// The step's name: 1 to 64 bytes of [A-Za-z0-9_.-], unique across all plugins. Not NULL.
    pub name: *const c_char,
    pub name_len: usize,
    /// The step's run function. Must not be `None`.
    pub run: stephost_step_run_fn,
    /// Passed back as the first argument of `run`. May be NULL; the host never dereferences it.
    pub step_ctx: *mut c_void,
}

/// What the plugin fills in at init. Allocated by the host, zeroed, `struct_size` set to its
/// capacity: write no more than that, and set `struct_size` to the size written.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stephost_plugin_descriptor {
    pub struct_size: u32,
    /// The ABI version the plugin chose, within the host's offer.
    pub abi_version: u32,
    /// The plugin's name: 1 to 64 bytes of [A-Za-z0-9_.-], unique across plugins. Not NULL.
    pub name: *const c_char,
    pub name_len: usize,
    /// The plugin's own version, free-form UTF-8, at most 128 bytes.
    pub version: *const c_char,
    pub version_len: usize,
    /// The plugin's steps, `step_count` non-NULL pointers, in the order the plugin wants them
    /// among equal weights. Array and descriptors live as long as the process.
    pub steps: *const *const stephost_step_descriptor,
    pub step_count: usize,
}

/// The type of `stephost_plugin_init`, for hosts that look it up with `dlsym`. A plugin defines
/// the function itself (`#[no_mangle] pub unsafe extern "C" fn stephost_plugin_init`); `offer`
/// and `descriptor` are never NULL from a conforming host, but a plugin checks.
pub type stephost_plugin_init_fn = Option<
    unsafe extern "C" fn(
        offer: *const stephost_host_offer,
        descriptor: *mut stephost_plugin_descriptor,
    ) -> stephost_status,
>;

// ---- Layout, pinned to what cc makes of stephost.h on x86_64 Linux ----------------------------

/// A struct of this ABI, with what a reader needs to copy one the other side wrote (stephost.h,
/// STRUCT GROWTH: copy `min(struct_size, sizeof)` bytes into a zeroed struct).
///
/// # Safety
/// All-zero bytes must be a valid value of the type, and `FIELD_ENDS` must hold the end (offset
/// plus size) of every field, in order. `pin_layout!` implements it for every struct below.
pub unsafe trait AbiStruct: Copy {
    /// The struct's name in stephost.h, for messages.
    const NAME: &'static str;
    /// The end of each field, in order: a copy of a prefix keeps whole fields only.
    const FIELD_ENDS: &'static [usize];
}

/// Asserts a struct's size and alignment and every field's offset and size at compile time, and
/// lists the same numbers for [`layout_report`]. A failed assertion names the struct and field.
macro_rules! pin_layout {
    ($( $type:ident size $size:literal align $align:literal {
        $( $field:ident offset $offset:literal size $field_size:literal ),* $(,)?
    } )*) => {
        $(
            const _: () = assert!(
                core::mem::size_of::<$type>() == $size,
                concat!("abi.rs: sizeof(", stringify!($type), ") in Rust differs from the pinned ", stringify!($size)),
            );
            const _: () = assert!(
                core::mem::align_of::<$type>() == $align,
                concat!("abi.rs: alignof(", stringify!($type), ") in Rust differs from the pinned ", stringify!($align)),
            );
            $(
                const _: () = assert!(
                    core::mem::offset_of!($type, $field) == $offset,
                    concat!("abi.rs: offsetof(", stringify!($type), ", ", stringify!($field),
                        ") in Rust differs from the pinned ", stringify!($offset)),
                );
                const _: () = assert!(
                    stephost_size_through!($type, $field) - core::mem::offset_of!($type, $field) == $field_size,
                    concat!("abi.rs: sizeof(", stringify!($type), ".", stringify!($field),
                        ") in Rust differs from the pinned ", stringify!($field_size)),
                );
            )*
        )*

        $(
            // SAFETY: every field of these structs is an integer, a raw pointer or an `Option` of a
            // function pointer, all of which are valid as all-zero bytes (0, NULL, `None`); the ends
            // are the pinned offsets and sizes, which the assertions above hold to the real layout.
            unsafe impl AbiStruct for $type {
                const NAME: &'static str = stringify!($type);
                const FIELD_ENDS: &'static [usize] = &[ $( $offset + $field_size ),* ];
            }
        )*

        /// Every struct as pinned above: (name, size, align, [(field, offset, size)]).
        #[cfg(test)]
        pub(crate) const PINNED_STRUCTS: &[(&str, usize, usize, &[(&str, usize, usize)])] = &[
            $( (stringify!($type), $size, $align, &[ $( (stringify!($field), $offset, $field_size) ),* ]) ),*
        ];
    };
}

pin_layout! {
    stephost_host_services size 32 align 8 {
        struct_size offset 0 size 4,
        ctx offset 8 size 8,
        report_error offset 16 size 8,
        log offset 24 size 8,
    }
    stephost_host_offer size 24 align 8 {
        struct_size offset 0 size 4,
        abi_min offset 4 size 4,
        abi_max offset 8 size 4,
        services offset 16 size 8,
    }
    stephost_call_services size 88 align 8 {
        struct_size offset 0 size 4,
        set_field offset 8 size 8,
        remove_field offset 16 size 8,
        add_component_override offset 24 size 8,
        add_global_override offset 32 size 8,
        add_label offset 40 size 8,
        log offset 48 size 8,
        checkpoint offset 56 size 8,
        set_retry_after offset 64 size 8,
        set_error offset 72 size 8,
        is_cancelled offset 80 size 8,
    }
    stephost_step_call size 40 align 8 {
        struct_size offset 0 size 4,
        operation_json offset 8 size 8,
        operation_json_len offset 16 size 8,
        ctx offset 24 size 8,
        services offset 32 size 8,
    }
    stephost_step_descriptor size 40 align 8 {
        struct_size offset 0 size 4,
        weight offset 4 size 4,
        name offset 8 size 8,
        name_len offset 16 size 8,
        run offset 24 size 8,
        step_ctx offset 32 size 8,
    }
    stephost_plugin_descriptor size 56 align 8 {
        struct_size offset 0 size 4,
        abi_version offset 4 size 4,
        name offset 8 size 8,
        name_len offset 16 size 8,
        version offset 24 size 8,
        version_len offset 32 size 8,
        steps offset 40 size 8,
        step_count offset 48 size 8,
    }
}

// The scalar and function pointer typedefs: an `Option` of a function pointer is one pointer wide.
const _: () = assert!(core::mem::size_of::<stephost_status>() == 4);
const _: () = assert!(core::mem::size_of::<stephost_log_level>() == 4);
const _: () = assert!(core::mem::size_of::<stephost_outcome>() == 4);
const _: () = assert!(core::mem::size_of::<stephost_step_run_fn>() == 8);
const _: () = assert!(core::mem::size_of::<stephost_plugin_init_fn>() == 8);

// ---- The minimum sizes (stephost.h, STRUCT GROWTH) ---------------------------------------------

/// The minimum `struct_size` of each struct at ABI 1.0: the size through its last 1.0 field.
pub const HOST_SERVICES_MIN_1_0: usize = stephost_size_through!(stephost_host_services, log);
pub const HOST_OFFER_MIN_1_0: usize = stephost_size_through!(stephost_host_offer, services);
pub const CALL_SERVICES_MIN_1_0: usize = stephost_size_through!(stephost_call_services, set_error);
pub const STEP_CALL_MIN_1_0: usize = stephost_size_through!(stephost_step_call, services);
pub const STEP_DESCRIPTOR_MIN_1_0: usize = stephost_size_through!(stephost_step_descriptor, step_ctx);
pub const PLUGIN_DESCRIPTOR_MIN_1_0: usize = stephost_size_through!(stephost_plugin_descriptor, step_count);
/// ABI 1.1 grows only the call services, by `is_cancelled`.
pub const CALL_SERVICES_MIN_1_1: usize = stephost_size_through!(stephost_call_services, is_cancelled);

// ---- The report scripts/check-rust-bindings compares with layout/print_layout.c ----------------

/// The layout and constants of these bindings in print_layout.c's format, line for line.
#[cfg(test)]
pub(crate) fn layout_report() -> String {
    use core::mem::{align_of, size_of};

    fn signed<T: PartialOrd + Default>(minus_one: T) -> u8 {
        u8::from(minus_one < T::default())
    }
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let int = |name: &str, value: i64| format!("const {name} {value}");
    let typedef = |name: &str, size: usize, align: usize, signed: u8| {
        format!("typedef {name} size {size} align {align} signed {signed}")
    };

    line(int("STEPHOST_ABI_CURRENT_MAJOR", STEPHOST_ABI_CURRENT_MAJOR.into()));
    line(int("STEPHOST_ABI_CURRENT_MINOR", STEPHOST_ABI_CURRENT_MINOR.into()));
    line(format!("const STEPHOST_ENTRY_SYMBOL \"{}\"", STEPHOST_ENTRY_SYMBOL.to_str().unwrap_or("<not UTF-8>")));
    line(format!("const STEPHOST_CREATE_RUNTIME_NAME \"{STEPHOST_CREATE_RUNTIME_NAME}\""));
    line(int("STEPHOST_CREATE_RUNTIME_WEIGHT", STEPHOST_CREATE_RUNTIME_WEIGHT.into()));

    for (expression, value) in [
        ("STEPHOST_ABI_VERSION(1,0)", stephost_abi_version(1, 0)),
        ("STEPHOST_ABI_VERSION(1,1)", stephost_abi_version(1, 1)),
        ("STEPHOST_ABI_VERSION(2,0x1FFFF)", stephost_abi_version(2, 0x1FFFF)),
        ("STEPHOST_ABI_VERSION(0x1FFFF,3)", stephost_abi_version(0x1FFFF, 3)),
        ("STEPHOST_ABI_MAJOR(0xFFFFFFFFu)", stephost_abi_major(0xFFFF_FFFF)),
        ("STEPHOST_ABI_MINOR(0xFFFFFFFFu)", stephost_abi_minor(0xFFFF_FFFF)),
        ("STEPHOST_ABI_MAJOR(0x00010002u)", stephost_abi_major(0x0001_0002)),
        ("STEPHOST_ABI_MINOR(0x00010002u)", stephost_abi_minor(0x0001_0002)),
        ("stephost_abi_version(1,1)", stephost_abi_version(1, 1)),
        ("stephost_abi_major(0x00030004u)", stephost_abi_major(0x0003_0004)),
        ("stephost_abi_minor(0x00030004u)", stephost_abi_minor(0x0003_0004)),
    ] {
        line(format!("version {expression} {value}"));
    }

    line(typedef("stephost_status", size_of::<stephost_status>(), align_of::<stephost_status>(), signed(-1)));
    line(int("STEPHOST_STATUS_OK", STEPHOST_STATUS_OK.into()));
    line(int("STEPHOST_STATUS_ERROR", STEPHOST_STATUS_ERROR.into()));
    line(int("STEPHOST_STATUS_INVALID_ARGUMENT", STEPHOST_STATUS_INVALID_ARGUMENT.into()));
    line(typedef("stephost_log_level", size_of::<stephost_log_level>(), align_of::<stephost_log_level>(), signed(-1)));
    line(int("STEPHOST_LOG_DEBUG", STEPHOST_LOG_DEBUG.into()));
    line(int("STEPHOST_LOG_INFO", STEPHOST_LOG_INFO.into()));
    line(int("STEPHOST_LOG_WARNING", STEPHOST_LOG_WARNING.into()));
    line(int("STEPHOST_LOG_ERROR", STEPHOST_LOG_ERROR.into()));
    line(typedef("stephost_outcome", size_of::<stephost_outcome>(), align_of::<stephost_outcome>(), signed(-1)));
    line(int("STEPHOST_OUTCOME_DONE", STEPHOST_OUTCOME_DONE.into()));
    line(int("STEPHOST_OUTCOME_RETRY", STEPHOST_OUTCOME_RETRY.into()));
    line(int("STEPHOST_OUTCOME_FAIL", STEPHOST_OUTCOME_FAIL.into()));

    // The size through the last field each minor version has (stephost.h, STRUCT GROWTH).
    let minima: &[(&str, &str, usize)] = &[
        ("stephost_host_services", "log", HOST_SERVICES_MIN_1_0),
        ("stephost_host_offer", "services", HOST_OFFER_MIN_1_0),
        ("stephost_call_services", "set_error", CALL_SERVICES_MIN_1_0),
        ("stephost_call_services", "is_cancelled", CALL_SERVICES_MIN_1_1),
        ("stephost_step_call", "services", STEP_CALL_MIN_1_0),
        ("stephost_step_descriptor", "step_ctx", STEP_DESCRIPTOR_MIN_1_0),
        ("stephost_plugin_descriptor", "step_count", PLUGIN_DESCRIPTOR_MIN_1_0),
    ];
    for &(name, size, align, fields) in PINNED_STRUCTS {
        if name == "stephost_step_descriptor" {
            line(typedef(
                "stephost_step_run_fn",
                size_of::<stephost_step_run_fn>(),
                align_of::<stephost_step_run_fn>(),
                0,
            ));
        }
        line(format!("struct {name} size {size} align {align}"));
        for &(field, offset, field_size) in fields {
            line(format!("field {name}.{field} offset {offset} size {field_size}"));
        }
        for &(_, last, minimum) in minima.iter().filter(|(struct_name, _, _)| *struct_name == name) {
            line(format!("through {name}.{last} {minimum}"));
        }
    }
    line(typedef(
        "stephost_plugin_init_fn",
        size_of::<stephost_plugin_init_fn>(),
        align_of::<stephost_plugin_init_fn>(),
        0,
    ));
    out
}
