//! The `rust-example` plugin: a stephost step plugin in Rust, against `stephost.h` only.
//!
//! One step, `label_cost_center` (weight 40, before create_runtime). It works out the runtime's cost
//! center once, from the provisioning parameter `costCenter` (or "unassigned"), records it in the
//! custom field `rust_cost_center`, and on every pass adds the global override `global.costCenter`
//! (every component sees it) and logs one line. A repeat pass (a retry, or a host that took the
//! operation over) finds the field and does not choose again, so the step is idempotent; overrides
//! last one pass, so every pass adds the override again.
//!
//! The crate exports one symbol, `stephost_plugin_init`. Nothing may unwind into the host: the
//! crate is built with `panic = "abort"`, and its code does not panic on any input from the host.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};

mod abi;
mod host;
mod json;

use abi::*;
use host::{read_host_struct, version_text, Call};
use json::Value;

// ---- The plugin --------------------------------------------------------------------------------

const PLUGIN_NAME: &str = "rust-example";
const PLUGIN_VERSION: &str = "1.0.0";

const STEP_NAME: &str = "label_cost_center";
const STEP_WEIGHT: i32 = 40;

/// The custom field the step records its choice in.
const FIELD: &str = "rust_cost_center";
/// The global override that carries the cost center to every component.
const OVERRIDE_KEY: &str = "global.costCenter";
/// The cost center of a runtime whose parameters name none.
const NO_COST_CENTER: &str = "unassigned";

/// The ABI version init chose (0 until it ran). Init runs once, before any step (THREADING).
static CHOSEN_VERSION: AtomicU32 = AtomicU32::new(0);

/// Data shared read-only with the host for the life of the process. Raw pointers are not `Sync`;
/// these point only at other immutable statics, so sharing them between threads is sound.
#[repr(transparent)]
struct Shared<T>(T);
// SAFETY: the wrapped values are immutable and point only to immutable statics.
unsafe impl<T> Sync for Shared<T> {}

static STEP: Shared<stephost_step_descriptor> = Shared(stephost_step_descriptor {
    struct_size: core::mem::size_of::<stephost_step_descriptor>() as u32,
    weight: STEP_WEIGHT,
    name: STEP_NAME.as_ptr().cast(),
    name_len: STEP_NAME.len(),
    run: Some(run_label_cost_center),
    step_ctx: core::ptr::null_mut(),
});
static STEPS: Shared<[*const stephost_step_descriptor; 1]> = Shared([&STEP.0]);

// The names follow the header's rules; checked while compiling, so a typo cannot reach a host.
const fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 64 {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-') {
            return false;
        }
        i += 1;
    }
    true
}
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
const _: () = assert!(is_name(PLUGIN_NAME) && is_name(STEP_NAME) && PLUGIN_VERSION.len() <= 128);
const _: () = assert!(!same(STEP_NAME, STEPHOST_CREATE_RUNTIME_NAME), "create_runtime is the host's step");
const _: () = assert!(STEP_WEIGHT >= 1 && STEP_WEIGHT != STEPHOST_CREATE_RUNTIME_WEIGHT);
// The entry point has the header's type.
const _: stephost_plugin_init_fn = Some(stephost_plugin_init);

// ---- Init --------------------------------------------------------------------------------------

/// The highest version both sides know: this binding's (1.1), or the host's highest if it is an
/// older 1.x. The step reads 1.1's `is_cancelled` only when the host's services hold it.
fn negotiate(abi_min: u32, abi_max: u32) -> Result<u32, String> {
    let ours = stephost_abi_version(STEPHOST_ABI_CURRENT_MAJOR, STEPHOST_ABI_CURRENT_MINOR);
    let mut wanted = ours;
    if stephost_abi_major(abi_max) == STEPHOST_ABI_CURRENT_MAJOR && abi_max < ours {
        wanted = abi_max;
    }
    if abi_min > abi_max || wanted < abi_min || wanted > abi_max {
        return Err(format!(
            "{PLUGIN_NAME} speaks ABI {}.0 to {}; the host offers {} to {}: rebuild it against this host's stephost.h",
            STEPHOST_ABI_CURRENT_MAJOR,
            version_text(ours),
            version_text(abi_min),
            version_text(abi_max)
        ));
    }
    Ok(wanted)
}

/// Reports `message` through the offer's services, when there are any with `report_error`.
fn report(services: Option<&stephost_host_services>, message: &str) -> stephost_status {
    if let Some((ctx, report_error)) = services.and_then(|services| Some((services.ctx, services.report_error?))) {
        let message = host::clip(message, host::MESSAGE_LIMIT);
        // SAFETY: the host's callback, during init, with its ctx; the message is valid for the call.
        unsafe { report_error(ctx, message.as_ptr().cast(), message.len()) }
    }
    STEPHOST_STATUS_ERROR
}

/// The entry point: negotiates the ABI version and fills the host's descriptor, no further than
/// the capacity the host put in its `struct_size`. No other side effects (stephost.h, INIT).
///
/// # Safety
/// Called by the host as `stephost.h` describes: `offer` and `descriptor` are NULL or valid for
/// the call. Both are checked before use.
#[no_mangle]
pub unsafe extern "C" fn stephost_plugin_init(
    offer: *const stephost_host_offer,
    descriptor: *mut stephost_plugin_descriptor,
) -> stephost_status {
    // The offer is read before a version is chosen, so as the lowest minor of our major has it.
    let lowest = stephost_abi_version(STEPHOST_ABI_CURRENT_MAJOR, 0);
    let Ok(offer) = (unsafe { read_host_struct(offer, HOST_OFFER_MIN_1_0, lowest) }) else {
        return STEPHOST_STATUS_ERROR; // nowhere to say why
    };
    let services = if offer.services.is_null() {
        None
    } else {
        match unsafe { read_host_struct(offer.services, HOST_SERVICES_MIN_1_0, lowest) } {
            Ok(services) => Some(services),
            Err(_) => return STEPHOST_STATUS_ERROR, // its report_error cannot be trusted
        }
    };
    let services = services.as_ref();

    let version = match negotiate(offer.abi_min, offer.abi_max) {
        Ok(version) => version,
        Err(message) => return report(services, &message),
    };
    if descriptor.is_null() {
        return report(services, &format!("{PLUGIN_NAME}: the host passed no plugin descriptor"));
    }
    if (descriptor as usize) % core::mem::align_of::<stephost_plugin_descriptor>() != 0 {
        return report(services, &format!("{PLUGIN_NAME}: the host's plugin descriptor is not aligned"));
    }
    // The host's capacity must hold the chosen version's descriptor; write no more than it.
    // SAFETY: non-NULL and aligned; the descriptor begins with its u32 struct_size.
    let capacity = unsafe { descriptor.cast::<u32>().read() } as usize;
    if capacity < PLUGIN_DESCRIPTOR_MIN_1_0 {
        return report(
            services,
            &format!(
                "{PLUGIN_NAME}: the host's stephost_plugin_descriptor holds {capacity} bytes, below the \
                 {PLUGIN_DESCRIPTOR_MIN_1_0} that ABI {} needs",
                version_text(version)
            ),
        );
    }
    let written = capacity.min(core::mem::size_of::<stephost_plugin_descriptor>());
    let filled = stephost_plugin_descriptor {
        struct_size: written as u32, // at most sizeof: fits
        abi_version: version,
        name: PLUGIN_NAME.as_ptr().cast(),
        name_len: PLUGIN_NAME.len(),
        version: PLUGIN_VERSION.as_ptr().cast(),
        version_len: PLUGIN_VERSION.len(),
        steps: STEPS.0.as_ptr(),
        step_count: STEPS.0.len(),
    };
    // SAFETY: the host's descriptor holds `capacity >= written` bytes; ours `sizeof >= written`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (&filled as *const stephost_plugin_descriptor).cast::<u8>(),
            descriptor.cast::<u8>(),
            written,
        );
    }
    CHOSEN_VERSION.store(version, Ordering::Release);
    STEPHOST_STATUS_OK
}

// ---- The step ----------------------------------------------------------------------------------

/// The step's run function, as the host calls it.
unsafe extern "C" fn run_label_cost_center(
    _step_ctx: *mut c_void,
    call: *const stephost_step_call,
) -> stephost_outcome {
    // SAFETY: the host's call, during this run.
    unsafe { run_step(CHOSEN_VERSION.load(Ordering::Acquire), call) }
}

/// Reads the call at `version`, runs the step, and turns its result into an outcome: a failure
/// is reported through `set_error` (when the host offers it) and ends in STEPHOST_OUTCOME_FAIL.
/// The messages do not name the step or plugin: the host's last error does.
///
/// # Safety
/// As `run_label_cost_center`.
unsafe fn run_step(version: u32, call: *const stephost_step_call) -> stephost_outcome {
    let call = match unsafe { Call::new(call, version) } {
        Ok(call) => call,
        Err(refused) => {
            if let Some((ctx, set_error)) = refused.set_error {
                // SAFETY: the ctx and set_error of this call, during it.
                unsafe { host::set_error(ctx, set_error, &refused.message) }
            }
            return STEPHOST_OUTCOME_FAIL;
        }
    };
    match label_cost_center(&call) {
        Ok(()) => STEPHOST_OUTCOME_DONE,
        Err(message) => {
            call.set_error(&message);
            STEPHOST_OUTCOME_FAIL
        }
    }
}

/// A cost center: 1 to 64 bytes of [A-Za-z0-9_.-], so it is also a valid label value.
fn valid_cost_center(text: &str) -> bool {
    is_name(text)
}

/// The step itself, over the safe `Call`.
fn label_cost_center(call: &Call<'_>) -> Result<(), String> {
    if call.is_cancelled() {
        return Err("the step passed its deadline before it began".into());
    }
    let text =
        core::str::from_utf8(call.operation()).map_err(|error| format!("the operation is not UTF-8: {error}"))?;
    let operation = json::parse(text).map_err(|error| format!("the operation cannot be read: {error}"))?;
    let pass = operation.get("pass").or_else(|| operation.get("attempt")).and_then(Value::as_u64).unwrap_or(1);
    let fields = operation.get("fields");
    let parameters = operation.get("parameters");
    let runtime = parameters.and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("(unnamed)");

    let recorded = fields.and_then(|fields| fields.get(FIELD)).filter(|value| **value != Value::Null);
    let cost_center = match recorded {
        // A repeat pass: keep what the first pass chose, even if the parameters now say otherwise.
        Some(record) => {
            let cost_center =
                record.get("cost_center").and_then(Value::as_str).filter(|text| valid_cost_center(text)).ok_or_else(
                    || format!("the field {FIELD} holds no valid cost_center; remove it to choose again"),
                )?;
            let chosen_in = record.get("recorded_in_pass").and_then(Value::as_u64).unwrap_or(0);
            call.log(
                STEPHOST_LOG_INFO,
                &format!("cost center {cost_center} of runtime {runtime}, recorded in pass {chosen_in}, applied again"),
            );
            cost_center.to_owned()
        }
        // The first pass: choose, and record the choice before anything else can fail.
        None => {
            let cost_center = match parameters.and_then(|p| p.get("costCenter")) {
                None | Some(Value::Null) => NO_COST_CENTER.to_owned(),
                Some(Value::String(text)) if valid_cost_center(text) => text.clone(),
                Some(other) => {
                    return Err(format!(
                        "parameters.costCenter must be 1 to 64 characters of [A-Za-z0-9_.-], not {}",
                        host::clip(&other.describe(), 200)
                    ))
                }
            };
            let record = format!(
                "{{\"cost_center\":{},\"runtime\":{},\"recorded_in_pass\":{pass}}}",
                json::quote(&cost_center),
                json::quote(host::clip(runtime, 1024))
            );
            call.set_field(FIELD, &record)?;
            call.log(STEPHOST_LOG_INFO, &format!("runtime {runtime} is charged to cost center {cost_center}"));
            cost_center
        }
    };
    // Overrides last one pass: add it on every pass.
    call.add_global_override(OVERRIDE_KEY, &cost_center, false)
}

#[cfg(test)]
mod tests;
