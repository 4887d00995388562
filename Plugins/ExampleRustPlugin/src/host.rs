//! Safe reading of what the host passes in, and a safe face over one step call's services.
//!
//! The rules (stephost.h, STRUCT GROWTH and OWNERSHIP): a struct the host wrote is read only after
//! the ABI version is known; one whose `struct_size` is below that version's minimum is refused,
//! naming the struct, its size and the minimum; otherwise `min(struct_size, sizeof)` bytes are
//! copied into a zeroed struct, so a field past `struct_size` reads as zero (absent) and a newer
//! host's extra tail is ignored. The plugin never holds a `&T` into host memory that might be
//! shorter than `T`, and nothing borrowed outlives the call.

use core::ffi::{c_char, c_void};
use core::marker::PhantomData;
use core::mem::{align_of, size_of, MaybeUninit};

use crate::abi::*;

/// The host's messages are read up to 64 KiB and kept to 4 KiB (stephost.h, STRINGS): never
/// send more than it keeps.
pub(crate) const MESSAGE_LIMIT: usize = 4096;

/// The longest operation document this plugin reads. The header sets no limit on the whole
/// document (custom fields are at most 1 MiB together); a length past this is taken for garbage
/// rather than trusted as the extent of readable memory.
pub(crate) const OPERATION_LIMIT: usize = 256 << 20;

/// `version` as major.minor, for messages.
pub(crate) fn version_text(version: u32) -> String {
    format!("{}.{}", stephost_abi_major(version), stephost_abi_minor(version))
}

/// Copies the struct the host wrote at `pointer` by the rules above.
///
/// # Safety
/// `pointer` is NULL, or points to at least `struct_size` readable bytes that begin with the
/// struct's `u32 struct_size`, as the header promises for everything the host passes.
pub(crate) unsafe fn read_host_struct<T: AbiStruct>(
    pointer: *const T,
    minimum: usize,
    version: u32,
) -> Result<T, String> {
    if pointer.is_null() {
        return Err(format!("the host passed a NULL {}", T::NAME));
    }
    if (pointer as usize) % align_of::<T>() != 0 {
        return Err(format!("the host's {} at {pointer:p} is not aligned to {} bytes", T::NAME, align_of::<T>()));
    }
    // SAFETY: non-NULL and aligned; every struct of the ABI begins with its u32 struct_size.
    let declared = unsafe { pointer.cast::<u32>().read() } as usize;
    if declared < minimum {
        return Err(format!(
            "the host's {} declares struct_size {declared}, below the {minimum} bytes ABI {} needs",
            T::NAME,
            version_text(version)
        ));
    }
    // Whole fields only: a struct_size that ends inside a field leaves that field absent.
    let known = declared.min(size_of::<T>());
    let copied = T::FIELD_ENDS.iter().copied().take_while(|&end| end <= known).last().unwrap_or(0);
    let mut copy = MaybeUninit::<T>::zeroed();
    // SAFETY: the host's struct holds `declared >= copied` bytes, ours `size_of::<T>() >= copied`;
    // the bytes are whole fields of the same layout, and zeroes are valid for the rest (AbiStruct).
    unsafe {
        core::ptr::copy_nonoverlapping(pointer.cast::<u8>(), copy.as_mut_ptr().cast::<u8>(), copied);
        Ok(copy.assume_init())
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
pub(crate) fn clip(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// The type of `stephost_call_services.set_error`.
pub(crate) type SetErrorFn = unsafe extern "C" fn(ctx: *mut c_void, message: *const c_char, message_len: usize);

/// Why a call could not be used, and how to tell the host (the call's ctx and `set_error`), if it can be told.
pub(crate) struct CallRefused {
    pub(crate) message: String,
    pub(crate) set_error: Option<(*mut c_void, SetErrorFn)>,
}

/// One step call: the operation document and the call's services, valid during the call only and
/// on the calling thread only (the raw `ctx` makes this type neither `Send` nor `Sync`).
pub(crate) struct Call<'call> {
    ctx: *mut c_void,
    services: stephost_call_services,
    operation: &'call [u8],
    _call: PhantomData<&'call stephost_step_call>,
}

/// The host refused a callback: its status, or that the callback is missing.
pub(crate) type HostResult = Result<(), String>;

fn status_text(status: stephost_status) -> &'static str {
    match status {
        STEPHOST_STATUS_ERROR => "STEPHOST_STATUS_ERROR",
        STEPHOST_STATUS_INVALID_ARGUMENT => "STEPHOST_STATUS_INVALID_ARGUMENT",
        _ => "an unknown status",
    }
}

impl<'call> Call<'call> {
    /// Reads the host's call, at the ABI version the plugin chose at init.
    ///
    /// # Safety
    /// `call` is the pointer the host passed to the step's run function, used during that run.
    pub(crate) unsafe fn new(call: *const stephost_step_call, version: u32) -> Result<Self, CallRefused> {
        let refused = |message: String| CallRefused { message, set_error: None };
        if stephost_abi_major(version) != STEPHOST_ABI_CURRENT_MAJOR {
            return Err(refused(format!(
                "init chose no ABI {}.x version before this step ran",
                STEPHOST_ABI_CURRENT_MAJOR
            )));
        }
        // SAFETY: the host's call and services are readable for the call (caller's contract).
        let step_call = unsafe { read_host_struct(call, STEP_CALL_MIN_1_0, version) }.map_err(refused)?;
        // The services first, so what is wrong with the rest can be said through set_error.
        let minimum = if stephost_abi_minor(version) >= 1 { CALL_SERVICES_MIN_1_1 } else { CALL_SERVICES_MIN_1_0 };
        let services = match unsafe { read_host_struct(step_call.services, minimum, version) } {
            Ok(services) => services,
            Err(message) => {
                // Below the chosen version's minimum but holding 1.0's set_error: still say why.
                let fallback = unsafe { read_host_struct(step_call.services, CALL_SERVICES_MIN_1_0, version) };
                let set_error = fallback.ok().and_then(|services| services.set_error).map(|f| (step_call.ctx, f));
                return Err(CallRefused { message, set_error });
            }
        };
        let with_services =
            |message: String| CallRefused { message, set_error: services.set_error.map(|f| (step_call.ctx, f)) };
        let length = step_call.operation_json_len;
        let operation: &'call [u8] = if length == 0 {
            &[]
        } else if step_call.operation_json.is_null() {
            return Err(with_services(format!("the host passed a NULL operation_json with length {length}")));
        } else if length > OPERATION_LIMIT {
            return Err(with_services(format!(
                "the host passed an operation_json of {length} bytes, more than the {OPERATION_LIMIT} this plugin reads"
            )));
        } else {
            // SAFETY: the header lends operation_json_len bytes for the call; the length is
            // bounded above, so the slice stays within isize::MAX.
            unsafe { core::slice::from_raw_parts(step_call.operation_json.cast::<u8>(), length) }
        };
        Ok(Call { ctx: step_call.ctx, services, operation, _call: PhantomData })
    }

    /// The operation document, as the host lent it: not NUL-terminated.
    pub(crate) fn operation(&self) -> &'call [u8] {
        self.operation
    }

    fn check(name: &str, status: stephost_status) -> HostResult {
        match status {
            STEPHOST_STATUS_OK => Ok(()),
            other => Err(format!("the host refused {name}: {} ({other})", status_text(other))),
        }
    }

    fn missing(name: &str) -> String {
        format!("the host's call services have no {name}")
    }

    pub(crate) fn set_field(&self, key: &str, json: &str) -> HostResult {
        let set_field = self.services.set_field.ok_or_else(|| Self::missing("set_field"))?;
        // SAFETY: a callback of this call, on its thread, with buffers valid for the call (it copies).
        let status = unsafe { set_field(self.ctx, key.as_ptr().cast(), key.len(), json.as_ptr().cast(), json.len()) };
        Self::check("set_field", status)
    }

    /// Adds an override for every component (a global override).
    pub(crate) fn add_global_override(&self, key: &str, value: &str, secret: bool) -> HostResult {
        let add = self.services.add_global_override.ok_or_else(|| Self::missing("add_global_override"))?;
        // SAFETY: as in set_field.
        let status = unsafe {
            add(self.ctx, key.as_ptr().cast(), key.len(), value.as_ptr().cast(), value.len(), i32::from(secret))
        };
        Self::check("add_global_override", status)
    }

    /// Logs one line; a host without `log` gets nothing. Long lines are cut at the host's 4 KiB.
    pub(crate) fn log(&self, level: stephost_log_level, message: &str) {
        if let Some(log) = self.services.log {
            let message = clip(message, MESSAGE_LIMIT);
            // SAFETY: as in set_field.
            unsafe { log(self.ctx, level, message.as_ptr().cast::<c_char>(), message.len()) }
        }
    }

    /// Whether the step has passed its deadline (ABI 1.1); false when the host does not offer it.
    pub(crate) fn is_cancelled(&self) -> bool {
        // SAFETY: as in set_field.
        self.services.is_cancelled.is_some_and(|is_cancelled| unsafe { is_cancelled(self.ctx) } == 1)
    }
}

/// Sets the failure message through a call's `set_error`, cut to what the host keeps.
///
/// # Safety
/// `ctx` and `set_error` are the current call's, used on its thread during the call.
pub(crate) unsafe fn set_error(ctx: *mut c_void, set_error: SetErrorFn, message: &str) {
    let message = clip(message, MESSAGE_LIMIT);
    // SAFETY: the caller's contract; the message is valid for the call (the host copies it).
    unsafe { set_error(ctx, message.as_ptr().cast(), message.len()) }
}

impl Call<'_> {
    /// Sets the failure message, if the host offered `set_error`.
    pub(crate) fn set_error(&self, message: &str) {
        if let Some(function) = self.services.set_error {
            // SAFETY: this call's ctx and callback, during the call (a Call lives no longer).
            unsafe { set_error(self.ctx, function, message) }
        }
    }
}
