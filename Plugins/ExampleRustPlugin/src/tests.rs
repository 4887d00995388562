//! Unit tests against a fake host: the host's structs are built here the way stephost.h says a host
//! writes them (and the ways a broken or older or newer host might), and its callbacks record what
//! the plugin did. `cargo test --offline` runs them.

use super::*;
use core::ffi::c_char;
use std::cell::{Cell, RefCell};

// ---- The fake host -----------------------------------------------------------------------------

/// What the plugin asked of the host, in order.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    SetField(String, String),
    GlobalOverride(String, String, i32),
    Log(stephost_log_level, String),
    Error(String),
    Report(String),
    /// A callback got a context other than the call's.
    WrongContext,
}

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static SET_FIELD_STATUS: Cell<stephost_status> = const { Cell::new(STEPHOST_STATUS_OK) };
    static CANCELLED: Cell<i32> = const { Cell::new(0) };
}

/// The call's context: a token, never dereferenced.
const CONTEXT: *mut c_void = 0x5eed as *mut c_void;

fn record(ctx: *mut c_void, event: Event) {
    EVENTS.with(|events| events.borrow_mut().push(if ctx == CONTEXT { event } else { Event::WrongContext }));
}

fn take_events() -> Vec<Event> {
    EVENTS.with(|events| events.borrow_mut().drain(..).collect())
}

/// The host's view of a (pointer, length) string: copied, as the header requires.
unsafe fn text(pointer: *const c_char, length: usize) -> String {
    if length == 0 {
        return String::new();
    }
    String::from_utf8_lossy(unsafe { core::slice::from_raw_parts(pointer.cast::<u8>(), length) }).into_owned()
}

unsafe extern "C" fn fake_set_field(
    ctx: *mut c_void,
    key: *const c_char,
    key_len: usize,
    json: *const c_char,
    json_len: usize,
) -> stephost_status {
    record(ctx, Event::SetField(unsafe { text(key, key_len) }, unsafe { text(json, json_len) }));
    SET_FIELD_STATUS.with(Cell::get)
}

unsafe extern "C" fn fake_remove_field(_: *mut c_void, _: *const c_char, _: usize) -> stephost_status {
    STEPHOST_STATUS_OK
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn fake_add_component_override(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
    _: *const c_char,
    _: usize,
    _: *const c_char,
    _: usize,
    _: i32,
) -> stephost_status {
    STEPHOST_STATUS_OK
}

unsafe extern "C" fn fake_add_global_override(
    ctx: *mut c_void,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    secret: i32,
) -> stephost_status {
    record(ctx, unsafe { Event::GlobalOverride(text(key, key_len), text(value, value_len), secret) });
    STEPHOST_STATUS_OK
}

unsafe extern "C" fn fake_add_label(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
    _: *const c_char,
    _: usize,
) -> stephost_status {
    STEPHOST_STATUS_OK
}

unsafe extern "C" fn fake_log(ctx: *mut c_void, level: stephost_log_level, message: *const c_char, length: usize) {
    record(ctx, Event::Log(level, unsafe { text(message, length) }));
}

unsafe extern "C" fn fake_checkpoint(_: *mut c_void) -> stephost_status {
    STEPHOST_STATUS_OK
}

unsafe extern "C" fn fake_set_retry_after(_: *mut c_void, _: u64) {}

unsafe extern "C" fn fake_set_error(ctx: *mut c_void, message: *const c_char, length: usize) {
    record(ctx, Event::Error(unsafe { text(message, length) }));
}

unsafe extern "C" fn fake_is_cancelled(_: *mut c_void) -> i32 {
    CANCELLED.with(Cell::get)
}

unsafe extern "C" fn fake_report_error(ctx: *mut c_void, message: *const c_char, length: usize) {
    record(ctx, Event::Report(unsafe { text(message, length) }));
}

/// A 1.1 host's call services, every callback offered.
fn services() -> stephost_call_services {
    stephost_call_services {
        struct_size: core::mem::size_of::<stephost_call_services>() as u32,
        set_field: Some(fake_set_field),
        remove_field: Some(fake_remove_field),
        add_component_override: Some(fake_add_component_override),
        add_global_override: Some(fake_add_global_override),
        add_label: Some(fake_add_label),
        log: Some(fake_log),
        checkpoint: Some(fake_checkpoint),
        set_retry_after: Some(fake_set_retry_after),
        set_error: Some(fake_set_error),
        is_cancelled: Some(fake_is_cancelled),
    }
}

fn operation(pass: u64, parameters: &str, fields: &str) -> String {
    format!(
        r#"{{"id":"op-1","instance_id":"i-1","type":"provision","pass":{pass},"attempt":{pass},"parameters":{parameters},"fields":{fields}}}"#
    )
}

const V1_0: u32 = stephost_abi_version(1, 0);
const V1_1: u32 = stephost_abi_version(1, 1);

/// Runs the step as a host at `version` would, with `services` and the document `json`.
fn run_with(version: u32, json: &[u8], services: &stephost_call_services) -> (stephost_outcome, Vec<Event>) {
    let call = stephost_step_call {
        struct_size: core::mem::size_of::<stephost_step_call>() as u32,
        operation_json: json.as_ptr().cast(),
        operation_json_len: json.len(),
        ctx: CONTEXT,
        services,
    };
    take_events();
    let outcome = unsafe { run_step(version, &call) };
    (outcome, take_events())
}

fn run(json: &str) -> (stephost_outcome, Vec<Event>) {
    run_with(V1_1, json.as_bytes(), &services())
}

fn only_error(events: &[Event]) -> &str {
    match events {
        [Event::Error(message)] => message,
        other => panic!("expected one set_error and nothing else, got {other:?}"),
    }
}

// ---- The step ----------------------------------------------------------------------------------

#[test]
fn first_pass_records_the_cost_center_adds_the_override_and_logs_one_line() {
    let (outcome, events) = run(&operation(1, r#"{"name":"r1","costCenter":"cc-4711"}"#, "{}"));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
    assert_eq!(
        events,
        vec![
            Event::SetField(
                "rust_cost_center".into(),
                r#"{"cost_center":"cc-4711","runtime":"r1","recorded_in_pass":1}"#.into()
            ),
            Event::Log(STEPHOST_LOG_INFO, "runtime r1 is charged to cost center cc-4711".into()),
            Event::GlobalOverride("global.costCenter".into(), "cc-4711".into(), 0),
        ]
    );
}

#[test]
fn a_runtime_without_cost_center_is_unassigned() {
    let (outcome, events) = run(&operation(1, r#"{"name":"r1","region":"europe-west4"}"#, "{}"));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
    assert!(events.contains(&Event::GlobalOverride("global.costCenter".into(), "unassigned".into(), 0)));
}

#[test]
fn a_repeat_pass_keeps_the_recorded_choice_and_writes_no_field() {
    // The parameters changed since (they cannot, but a newer plugin might choose differently).
    let fields = r#"{"rust_cost_center":{"cost_center":"cc-1","runtime":"r1","recorded_in_pass":1}}"#;
    let (outcome, events) = run(&operation(2, r#"{"name":"r1","costCenter":"cc-2"}"#, fields));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
    assert_eq!(
        events,
        vec![
            Event::Log(STEPHOST_LOG_INFO, "cost center cc-1 of runtime r1, recorded in pass 1, applied again".into()),
            Event::GlobalOverride("global.costCenter".into(), "cc-1".into(), 0),
        ]
    );
}

#[test]
fn a_document_that_mentions_the_field_only_in_a_parameter_is_a_first_pass() {
    // The C example's memmem search would take this for the field; a parser does not.
    let parameters = r#"{"name":"r1","note":"\"fields\":{\"rust_cost_center\":1}"}"#;
    let (outcome, events) = run(&operation(1, parameters, "{}"));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
    assert!(matches!(events.first(), Some(Event::SetField(key, _)) if key == "rust_cost_center"));
}

#[test]
fn an_invalid_cost_center_fails_the_operation_with_a_message() {
    for (parameters, shown) in [
        (r#"{"costCenter":"has space"}"#, r#"not "has space""#),
        (r#"{"costCenter":42}"#, "not 42"),
        (r#"{"costCenter":""}"#, r#"not """#),
        (r#"{"costCenter":{"a":1}}"#, "not an object"),
    ] {
        let (outcome, events) = run(&operation(1, parameters, "{}"));
        assert_eq!(outcome, STEPHOST_OUTCOME_FAIL, "{parameters}");
        let message = only_error(&events);
        assert!(message.starts_with("parameters.costCenter must be") && message.ends_with(shown), "{message}");
    }
}

#[test]
fn an_unreadable_record_fails_instead_of_choosing_again() {
    let (outcome, events) = run(&operation(2, "{}", r#"{"rust_cost_center":{"cost_center":7}}"#));
    assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
    assert!(only_error(&events).contains("holds no valid cost_center"));
}

#[test]
fn a_null_record_counts_as_absent() {
    let (outcome, events) = run(&operation(1, "{}", r#"{"rust_cost_center":null}"#));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
    assert!(matches!(events.first(), Some(Event::SetField(_, _))));
}

#[test]
fn a_refused_set_field_fails_the_step_and_adds_no_override() {
    SET_FIELD_STATUS.with(|status| status.set(STEPHOST_STATUS_INVALID_ARGUMENT));
    let (outcome, events) = run(&operation(1, "{}", "{}"));
    SET_FIELD_STATUS.with(|status| status.set(STEPHOST_STATUS_OK));
    assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
    assert!(matches!(events.as_slice(), [Event::SetField(..), Event::Error(message)]
        if message.contains("the host refused set_field: STEPHOST_STATUS_INVALID_ARGUMENT (2)")));
}

#[test]
fn a_cancelled_step_writes_nothing() {
    CANCELLED.with(|cancelled| cancelled.set(1));
    let (outcome, events) = run(&operation(1, "{}", "{}"));
    CANCELLED.with(|cancelled| cancelled.set(0));
    assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
    assert!(only_error(&events).contains("passed its deadline"));
}

#[test]
fn bad_documents_fail_with_a_message() {
    for (document, expected) in [
        (&b"{\"pass\":1,"[..], "the operation cannot be read: invalid JSON"),
        (&b"{\"fields\":\"\xff\"}"[..], "the operation is not UTF-8"),
        (&b""[..], "the operation cannot be read"),
    ] {
        let (outcome, events) = run_with(V1_1, document, &services());
        assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
        assert!(only_error(&events).contains(expected), "{events:?}");
    }
}

#[test]
fn a_null_document_with_a_length_is_refused_without_reading_it() {
    let services = services();
    let call = stephost_step_call {
        struct_size: core::mem::size_of::<stephost_step_call>() as u32,
        operation_json: core::ptr::null(),
        operation_json_len: 10,
        ctx: CONTEXT,
        services: &services,
    };
    take_events();
    assert_eq!(unsafe { run_step(V1_1, &call) }, STEPHOST_OUTCOME_FAIL);
    assert!(only_error(&take_events()).contains("NULL operation_json with length 10"));
}

#[test]
fn an_absurd_document_length_is_refused_without_reading_it() {
    let services = services();
    let json = b"{}";
    let call = stephost_step_call {
        struct_size: core::mem::size_of::<stephost_step_call>() as u32,
        operation_json: json.as_ptr().cast(),
        operation_json_len: usize::MAX,
        ctx: CONTEXT,
        services: &services,
    };
    take_events();
    assert_eq!(unsafe { run_step(V1_1, &call) }, STEPHOST_OUTCOME_FAIL);
    assert!(only_error(&take_events()).contains("more than the"));
}

#[test]
fn a_null_call_or_services_fails_without_a_callback() {
    take_events();
    assert_eq!(unsafe { run_step(V1_1, core::ptr::null()) }, STEPHOST_OUTCOME_FAIL);
    let json = operation(1, "{}", "{}");
    let call = stephost_step_call {
        struct_size: core::mem::size_of::<stephost_step_call>() as u32,
        operation_json: json.as_ptr().cast(),
        operation_json_len: json.len(),
        ctx: CONTEXT,
        services: core::ptr::null(),
    };
    assert_eq!(unsafe { run_step(V1_1, &call) }, STEPHOST_OUTCOME_FAIL);
    assert_eq!(take_events(), vec![]);
}

#[test]
fn a_step_call_below_the_minimum_is_refused() {
    let services = services();
    let json = operation(1, "{}", "{}");
    let call = stephost_step_call {
        struct_size: (STEP_CALL_MIN_1_0 - 8) as u32,
        operation_json: json.as_ptr().cast(),
        operation_json_len: json.len(),
        ctx: CONTEXT,
        services: &services,
    };
    take_events();
    assert_eq!(unsafe { run_step(V1_1, &call) }, STEPHOST_OUTCOME_FAIL);
    assert_eq!(take_events(), vec![], "the services pointer lies past struct_size: not read");
}

#[test]
fn a_1_0_host_runs_the_step_without_is_cancelled() {
    // A 1.0 host's table ends at set_error; whatever lies after it in memory is not read.
    let mut services = services();
    services.struct_size = CALL_SERVICES_MIN_1_0 as u32;
    CANCELLED.with(|cancelled| cancelled.set(1));
    let (outcome, events) = run_with(V1_0, operation(1, "{}", "{}").as_bytes(), &services);
    CANCELLED.with(|cancelled| cancelled.set(0));
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE, "{events:?}");
}

#[test]
fn a_struct_size_ending_inside_a_field_leaves_that_field_absent() {
    let mut services = services();
    services.struct_size = (CALL_SERVICES_MIN_1_0 + 4) as u32;
    let read = unsafe { read_host_struct(&services, CALL_SERVICES_MIN_1_0, V1_0) }.expect("readable");
    assert!(read.is_cancelled.is_none());
    assert!(read.set_error.is_some());
}

#[test]
fn call_services_below_the_chosen_version_are_refused_naming_the_sizes() {
    // The plugin chose 1.1, so the host's call services must hold is_cancelled.
    let mut services = services();
    services.struct_size = CALL_SERVICES_MIN_1_0 as u32;
    let (outcome, events) = run_with(V1_1, operation(1, "{}", "{}").as_bytes(), &services);
    assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
    assert_eq!(
        only_error(&events),
        "the host's stephost_call_services declares struct_size 80, below the 88 bytes ABI 1.1 needs"
    );
}

#[test]
fn a_newer_hosts_larger_call_services_are_read_as_far_as_known() {
    #[repr(C)]
    struct Newer {
        services: stephost_call_services,
        tail: [usize; 4],
    }
    let mut newer = Newer { services: services(), tail: [usize::MAX; 4] };
    newer.services.struct_size = core::mem::size_of::<Newer>() as u32;
    let (outcome, _) = run_with(V1_1, operation(1, "{}", "{}").as_bytes(), &newer.services);
    assert_eq!(outcome, STEPHOST_OUTCOME_DONE);
}

#[test]
fn a_misaligned_struct_is_refused() {
    #[repr(C, align(8))]
    struct Bytes([u8; 128]);
    let bytes = Bytes([0; 128]);
    let misaligned = unsafe { bytes.0.as_ptr().add(1) }.cast::<stephost_step_call>();
    let error = unsafe { read_host_struct(misaligned, STEP_CALL_MIN_1_0, V1_1) }.expect_err("misaligned");
    assert!(error.contains("not aligned"), "{error}");
}

#[test]
fn a_step_run_before_init_fails() {
    let (outcome, _) = run_with(0, operation(1, "{}", "{}").as_bytes(), &services());
    assert_eq!(outcome, STEPHOST_OUTCOME_FAIL);
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let text = "é".repeat(3000); // 6000 bytes
    let clipped = host::clip(&text, host::MESSAGE_LIMIT);
    assert_eq!(clipped.len(), host::MESSAGE_LIMIT);
    assert_eq!(host::clip("abc", 10), "abc");
    assert_eq!(host::clip("aé", 2), "a");
}

// ---- Negotiation and init ----------------------------------------------------------------------

#[test]
fn negotiation_chooses_the_highest_common_1_x() {
    let v = stephost_abi_version;
    assert_eq!(negotiate(v(1, 0), v(1, 1)), Ok(v(1, 1)));
    assert_eq!(negotiate(v(1, 0), v(1, 0)), Ok(v(1, 0)));
    assert_eq!(negotiate(v(1, 0), v(1, 9)), Ok(v(1, 1)), "a newer 1.x host gets the 1.1 this plugin knows");
    assert_eq!(negotiate(v(1, 0), v(2, 3)), Ok(v(1, 1)), "a host that still speaks 1.x");
    assert_eq!(negotiate(v(1, 1), v(1, 1)), Ok(v(1, 1)));
    for (low, high) in [(v(2, 0), v(2, 1)), (v(1, 2), v(1, 5)), (v(0, 1), v(0, 9)), (v(1, 1), v(1, 0))] {
        let error = negotiate(low, high).expect_err("no common version");
        assert!(error.contains("rust-example speaks ABI 1.0 to 1.1"), "{error}");
    }
}

/// The host's descriptor allocation: `capacity` bytes set aside, the rest of the buffer a sentinel.
#[repr(C, align(8))]
struct DescriptorBuffer([u8; 128]);

impl DescriptorBuffer {
    fn new(capacity: u32) -> Self {
        let mut buffer = DescriptorBuffer([0xAA; 128]);
        buffer.0[..capacity as usize].fill(0);
        buffer.0[..4].copy_from_slice(&capacity.to_ne_bytes());
        buffer
    }
    fn pointer(&mut self) -> *mut stephost_plugin_descriptor {
        self.0.as_mut_ptr().cast()
    }
    fn descriptor(&self) -> stephost_plugin_descriptor {
        unsafe { self.0.as_ptr().cast::<stephost_plugin_descriptor>().read() }
    }
}

fn host_services() -> stephost_host_services {
    stephost_host_services {
        struct_size: core::mem::size_of::<stephost_host_services>() as u32,
        ctx: CONTEXT,
        report_error: Some(fake_report_error),
        log: Some(fake_log),
    }
}

fn offer(services: &stephost_host_services, abi_min: u32, abi_max: u32) -> stephost_host_offer {
    stephost_host_offer { struct_size: core::mem::size_of::<stephost_host_offer>() as u32, abi_min, abi_max, services }
}

unsafe fn bytes_of(pointer: *const u8, length: usize) -> String {
    unsafe { text(pointer.cast(), length) }
}

#[test]
fn init_fills_the_descriptor_and_writes_no_further() {
    let services = host_services();
    let offer = offer(&services, V1_0, V1_1);
    let mut buffer = DescriptorBuffer::new(128); // a newer host's larger descriptor
    take_events();
    assert_eq!(unsafe { stephost_plugin_init(&offer, buffer.pointer()) }, STEPHOST_STATUS_OK);
    assert_eq!(take_events(), vec![], "init has no side effects");
    let descriptor = buffer.descriptor();
    assert_eq!(descriptor.struct_size as usize, core::mem::size_of::<stephost_plugin_descriptor>());
    assert_eq!(descriptor.abi_version, V1_1);
    assert_eq!(unsafe { bytes_of(descriptor.name.cast(), descriptor.name_len) }, "rust-example");
    assert_eq!(unsafe { bytes_of(descriptor.version.cast(), descriptor.version_len) }, "1.0.0");
    assert_eq!(descriptor.step_count, 1);
    let step = unsafe { &**descriptor.steps };
    assert_eq!(step.struct_size as usize, core::mem::size_of::<stephost_step_descriptor>());
    assert_eq!(step.weight, STEP_WEIGHT);
    assert_eq!(unsafe { bytes_of(step.name.cast(), step.name_len) }, "label_cost_center");
    assert!(step.run.is_some());
    // The host zeroed its 128 bytes; the plugin wrote 56 and left the rest alone.
    assert!(buffer.0[core::mem::size_of::<stephost_plugin_descriptor>()..].iter().all(|&b| b == 0));
}

#[test]
fn init_chooses_1_0_from_a_1_0_host() {
    let services = host_services();
    let offer = offer(&services, V1_0, V1_0);
    let mut buffer = DescriptorBuffer::new(PLUGIN_DESCRIPTOR_MIN_1_0 as u32);
    assert_eq!(unsafe { stephost_plugin_init(&offer, buffer.pointer()) }, STEPHOST_STATUS_OK);
    assert_eq!(buffer.descriptor().abi_version, V1_0);
    assert!(buffer.0[PLUGIN_DESCRIPTOR_MIN_1_0..].iter().all(|&b| b == 0xAA), "wrote past the capacity");
}

#[test]
fn init_refuses_a_descriptor_below_the_minimum_and_says_so() {
    let services = host_services();
    let offer = offer(&services, V1_0, V1_1);
    let mut buffer = DescriptorBuffer::new(48);
    take_events();
    assert_eq!(unsafe { stephost_plugin_init(&offer, buffer.pointer()) }, STEPHOST_STATUS_ERROR);
    assert_eq!(
        take_events(),
        vec![Event::Report(
            "rust-example: the host's stephost_plugin_descriptor holds 48 bytes, below the 56 that ABI 1.1 needs"
                .into()
        )]
    );
    assert_eq!(buffer.descriptor().struct_size, 48, "nothing written");
}

#[test]
fn init_refuses_a_host_without_a_common_version_and_says_so() {
    let services = host_services();
    let offer = offer(&services, stephost_abi_version(2, 0), stephost_abi_version(2, 4));
    let mut buffer = DescriptorBuffer::new(64);
    take_events();
    assert_eq!(unsafe { stephost_plugin_init(&offer, buffer.pointer()) }, STEPHOST_STATUS_ERROR);
    assert_eq!(
        take_events(),
        vec![Event::Report(
            "rust-example speaks ABI 1.0 to 1.1; the host offers 2.0 to 2.4: rebuild it against this host's stephost.h"
                .into()
        )]
    );
}

#[test]
fn init_survives_null_and_short_inputs() {
    let services = host_services();
    let mut buffer = DescriptorBuffer::new(64);
    take_events();
    assert_eq!(unsafe { stephost_plugin_init(core::ptr::null(), buffer.pointer()) }, STEPHOST_STATUS_ERROR);

    let good = offer(&services, V1_0, V1_1);
    assert_eq!(unsafe { stephost_plugin_init(&good, core::ptr::null_mut()) }, STEPHOST_STATUS_ERROR);
    assert_eq!(take_events(), vec![Event::Report("rust-example: the host passed no plugin descriptor".into())]);

    let mut short = good;
    short.struct_size = 16; // ends before services
    assert_eq!(unsafe { stephost_plugin_init(&short, buffer.pointer()) }, STEPHOST_STATUS_ERROR);

    let no_services = stephost_host_offer { services: core::ptr::null(), ..good };
    assert_eq!(unsafe { stephost_plugin_init(&no_services, buffer.pointer()) }, STEPHOST_STATUS_OK);

    let mut short_services = services;
    short_services.struct_size = 24; // ends before log
    let with_short_services = offer(&short_services, V1_0, V1_1);
    assert_eq!(unsafe { stephost_plugin_init(&with_short_services, buffer.pointer()) }, STEPHOST_STATUS_ERROR);
    assert_eq!(take_events(), vec![]);
}

#[test]
fn init_reads_a_newer_hosts_larger_offer() {
    #[repr(C)]
    struct Newer {
        offer: stephost_host_offer,
        tail: [u64; 2],
    }
    let services = host_services();
    let mut newer = Newer { offer: offer(&services, V1_0, stephost_abi_version(1, 3)), tail: [u64::MAX; 2] };
    newer.offer.struct_size = core::mem::size_of::<Newer>() as u32;
    let mut buffer = DescriptorBuffer::new(64);
    assert_eq!(unsafe { stephost_plugin_init(&newer.offer, buffer.pointer()) }, STEPHOST_STATUS_OK);
    assert_eq!(buffer.descriptor().abi_version, V1_1);
}

// ---- Layout ------------------------------------------------------------------------------------

/// Writes this crate's layout report to $STEPHOST_RUST_LAYOUT_OUT, for scripts/check-rust-bindings
/// to compare with layout/print_layout.c's. Without the variable it only checks the report's shape.
#[test]
fn layout_report() {
    let report = abi::layout_report();
    for line in report.lines() {
        assert!(line.split(' ').count() >= 3, "malformed line {line:?}");
    }
    if let Some(path) = std::env::var_os("STEPHOST_RUST_LAYOUT_OUT") {
        std::fs::write(&path, report).expect("write the layout report");
    }
}
