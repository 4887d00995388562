//! A Rust plugin whose step panics. Since Rust 1.81 a panic that would unwind out of an `extern "C"` function
//! aborts the process ("panic in a function that cannot unwind"): the real-world way a Rust plugin takes its host
//! down. The bindings are written by hand for ABI 1.0, as a team without bindgen would write them.
//!
//! The plugin name, the step name and its weight are fixed at build time through the environment variables
//! STEPHOST_FIXTURE_PLUGIN_NAME, STEPHOST_FIXTURE_STEP_NAME and STEPHOST_FIXTURE_STEP_WEIGHT (defaults
//! "rust_panic", "rust_panic_step" and 10). With STEPHOST_FIXTURE_ONLY_WHEN set, only an operation whose JSON
//! document holds those bytes panics; any other is done at once (fixture_plugin.c's ONLY_WHEN).

use std::ffi::c_void;
use std::os::raw::c_char;

// ---- stephost.h at ABI 1.0, as far as this plugin uses it ----

type Status = i32;
type Outcome = i32;
const STATUS_OK: Status = 0;
const LOG_INFO: i32 = 1;

const fn abi_version(major: u32, minor: u32) -> u32 {
    (major << 16) | (minor & 0xFFFF)
}

#[repr(C)]
pub struct HostServices {
    struct_size: u32,
    ctx: *mut c_void,
    report_error: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize)>,
    log: Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char, usize)>,
}

#[repr(C)]
pub struct HostOffer {
    struct_size: u32,
    abi_min: u32,
    abi_max: u32,
    services: *const HostServices,
}

type Callback = Option<unsafe extern "C" fn()>;

#[repr(C)]
pub struct CallServices {
    struct_size: u32,
    set_field: Callback,
    remove_field: Callback,
    add_component_override: Callback,
    add_global_override: Callback,
    add_label: Callback,
    log: Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char, usize)>,
    checkpoint: Callback,
    set_retry_after: Callback,
    set_error: Callback,
}

#[repr(C)]
pub struct StepCall {
    struct_size: u32,
    operation_json: *const c_char,
    operation_json_len: usize,
    ctx: *mut c_void,
    services: *const CallServices,
}

type RunFn = unsafe extern "C" fn(*mut c_void, *const StepCall) -> Outcome;

#[repr(C)]
pub struct StepDescriptor {
    struct_size: u32,
    weight: i32,
    name: *const c_char,
    name_len: usize,
    run: Option<RunFn>,
    step_ctx: *mut c_void,
}

#[repr(C)]
pub struct PluginDescriptor {
    struct_size: u32,
    abi_version: u32,
    name: *const c_char,
    name_len: usize,
    version: *const c_char,
    version_len: usize,
    steps: *const *const StepDescriptor,
    step_count: usize,
}

// ---- The plugin ----

const PLUGIN_NAME: &str = match option_env!("STEPHOST_FIXTURE_PLUGIN_NAME") {
    Some(name) => name,
    None => "rust_panic",
};
const STEP_NAME: &str = match option_env!("STEPHOST_FIXTURE_STEP_NAME") {
    Some(name) => name,
    None => "rust_panic_step",
};
const STEP_WEIGHT: i32 = match option_env!("STEPHOST_FIXTURE_STEP_WEIGHT") {
    Some(text) => parse_weight(text),
    None => 10,
};
const VERSION: &str = "1.0.0";
const ONLY_WHEN: Option<&str> = option_env!("STEPHOST_FIXTURE_ONLY_WHEN");
const OUTCOME_DONE: Outcome = 0;

/// A decimal weight, checked while the plugin is compiled.
const fn parse_weight(text: &str) -> i32 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "STEPHOST_FIXTURE_STEP_WEIGHT is empty");
    let mut value: i32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "STEPHOST_FIXTURE_STEP_WEIGHT is not a decimal number");
        value = value * 10 + (bytes[i] - b'0') as i32;
        i += 1;
    }
    value
}

/// The step: logs, then panics. The panic cannot unwind out of this `extern "C"` function, so Rust aborts.
unsafe extern "C" fn run(_step_ctx: *mut c_void, call: *const StepCall) -> Outcome {
    let call = &*call;
    if let Some(needle) = ONLY_WHEN {
        let document = std::slice::from_raw_parts(call.operation_json.cast::<u8>(), call.operation_json_len);
        if !document.windows(needle.len()).any(|window| window == needle.as_bytes()) {
            return OUTCOME_DONE;
        }
    }
    let services = &*call.services;
    if let Some(log) = services.log {
        let message = "about to panic";
        log(call.ctx, LOG_INFO, message.as_ptr().cast(), message.len());
    }
    panic!("rust_panic: a Rust panic in a step's run function");
}

/// Pointers to immutable statics, shared read-only with the host for the life of the process.
struct Shared<T>(T);
unsafe impl<T> Sync for Shared<T> {}

static STEP: Shared<StepDescriptor> = Shared(StepDescriptor {
    struct_size: std::mem::size_of::<StepDescriptor>() as u32,
    weight: STEP_WEIGHT,
    name: STEP_NAME.as_ptr().cast(),
    name_len: STEP_NAME.len(),
    run: Some(run),
    step_ctx: std::ptr::null_mut(),
});
static STEPS: Shared<[*const StepDescriptor; 1]> = Shared([&STEP.0]);

#[no_mangle]
pub unsafe extern "C" fn stephost_plugin_init(offer: *const HostOffer, descriptor: *mut PluginDescriptor) -> Status {
    let _ = offer;
    let descriptor = &mut *descriptor;
    // The host's capacity, and never more than this plugin's own struct.
    let capacity = descriptor.struct_size as usize;
    descriptor.struct_size = capacity.min(std::mem::size_of::<PluginDescriptor>()) as u32;
    descriptor.abi_version = abi_version(1, 0);
    descriptor.name = PLUGIN_NAME.as_ptr().cast();
    descriptor.name_len = PLUGIN_NAME.len();
    descriptor.version = VERSION.as_ptr().cast();
    descriptor.version_len = VERSION.len();
    descriptor.steps = STEPS.0.as_ptr();
    descriptor.step_count = STEPS.0.len();
    STATUS_OK
}
