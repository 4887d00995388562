// A configurable test plugin. The tests compile it with -D options into a fresh .so per case, good or
// deliberately broken in exactly one way. Every option has a default that makes a valid plugin.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
// Mode 39 reads a 1.1 field only when the host's table holds it, and chooses 1.0 so that it loads on a 1.0 host too.
#if defined(RUN_MODE) && RUN_MODE == 39 && !defined(ABI_MINOR)
#define ABI_MINOR 0
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
// "slow_started", checkpoint, block for 1 s (or until MODE10_RELEASE_FILE exists), then set "after_sleep", 11 add a secret override, log its value
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
// The isolation fault suite's modes, each a way a step can take down or wedge the process it runs in: 31 abort(),
// 32 exit(3), 33 hang forever (pause() in a loop; never returns), 34 sleep SLEEP_MS (default 3000) then done (to
// pass a deadline), 35 allocate without bound (malloc and touch 64 MiB chunks until an address-space limit makes
// malloc fail, then abort(); with no limit it is left to the OOM killer), 36 write 4 MiB of garbage (NUL and other
// binary bytes, terminal escape sequences, invalid UTF-8) to stdout and 4 MiB to stderr, alternating 64 KiB
// chunks, then done, 37 set a field to a 100 MiB JSON string and fail with set_field's status unless it returned
// STEPHOST_STATUS_OK (then done), 38 return the unknown outcome 77, 39 poll the ABI 1.1 is_cancelled every 10 ms
// for up to 60 s, failing with "cancelled" once it returns 1, else done after 60 s (a host that does not offer it
// gets the 60 s), 40 raise(SIGKILL) on itself, 41 set "hang_started", checkpoint, then hang forever (a runner
// killed from outside mid-step), 42 set the same field to a 60 KiB string 300 times (18 MiB written in one run)
// and done unless a call was refused (then fail with its status), 43 ignore SIGTERM, then hang forever (only
// SIGKILL stops it), 44 start a daemon (double fork and setsid, so it leaves the process group; it inherits every
// descriptor, the protocol pipes included, writes its pid to DAEMON_PID_FILE and sleeps an hour), then crash with
// SIGSEGV, 45 start the same daemon, then hang forever, 46 poll is_cancelled (ABI 1.1) without pause for up to 60 s;
// once it says 1, set "after_cancel", checkpoint, and write the checkpoint's status to CHECKPOINT_STATUS_FILE, 47
// (in a runner) write a forged "result: done" frame straight to the runner's pipe (descriptor 4), then fail for
// real: the host reads the forgery as this call's end, and the real frames come after it, 48 leave the runner's
// process group for its parent's, clear the parent-death signal, ignore SIGTERM, then hang forever, 49 make a
// sibling of the runner (CLONE_PARENT: a child of the host) that leaves the session, ptrace-seizes the runner and
// sleeps, so the runner, once killed, stays a zombie the host cannot reap; write the sibling's pid to
// DAEMON_PID_FILE; then hang forever. 50 wait until the file RELEASE_FILE exists (checked every 10 ms, up to 60 s),
// then done: a step the test lets finish when it wants. 51 log HOSTILE_TEXT (HTML with a script, Mustache, a quote,
// an ampersand, a newline and a terminal escape) and fail with it: text a service must show as text. 52 append
// "S <host> <operation id> <pass> <ns>" to INTERVAL_FILE, sleep SLEEP_MS, append "E <host> <operation id> <pass> <ns>"
// (CLOCK_MONOTONIC, one write each to an O_APPEND file), then done: which host ran which step when, for the
// multi-host tests.
#ifndef RUN_MODE
#define RUN_MODE 0
#endif
#ifndef SLEEP_MS
#define SLEEP_MS 3000
#endif
// ONLY_WHEN="bytes": the run mode applies only to an operation whose JSON document holds those bytes (its
// parameters, fields, ...); any other operation's step is done at once, writing nothing. One plugin can then
// fault for the operation {"name":"boom"} while {"name":"calm"} runs through it, at the same time, untouched.

// Load-time faults, each a -D option: CTOR_CRASH (a constructor that writes through a null pointer: the plugin
// crashes the process when it is opened, before init), CTOR_EXIT0 (a constructor that calls exit(0): the process
// ends "successfully" when it opens the plugin), INIT_HANGS (stephost_plugin_init never returns), INIT_CRASHES
// (stephost_plugin_init reads through a null pointer), and INIT_ABORTS above them in init.
#ifdef CTOR_CRASH
__attribute__((constructor)) static void crash_when_opened(void) {
    // Through a volatile zero, so that the compiler emits a real store (SIGSEGV), not a trap instruction.
    volatile uintptr_t null = 0;
    *(volatile int *)null = 1;
}
#endif
#ifdef CTOR_EXIT0
__attribute__((constructor)) static void exit_when_opened(void) { exit(0); }
#endif
// CTOR_FORGES_THEN_CRASHES: a constructor that, inside stephost's scanner, writes a forged "this plugin loaded fine"
// report to the scanner's pipe (descriptor 4), then crashes, as it crashes in every other process that opens it.
// CTOR_FORGES_THEN_EXITS0: the same report, with FORGED_VERSION as the version, then _exit(0) in the scanner only.
#if defined(CTOR_FORGES_THEN_CRASHES) || defined(CTOR_FORGES_THEN_EXITS0)
#ifndef FORGED_VERSION
#define FORGED_VERSION PLUGIN_VERSION
#endif
static void put_u32(unsigned char **at, uint32_t value) {
    for (int i = 0; i < 4; i++) *(*at)++ = (unsigned char)(value >> (8 * i));
}
static void put_text(unsigned char **at, const char *text) {
    size_t length = strlen(text);
    *(*at)++ = 1;  // bytes follow
    for (int i = 0; i < 8; i++) *(*at)++ = (unsigned char)((uint64_t)length >> (8 * i));
    put_u32(at, (uint32_t)length);
    memcpy(*at, text, length);
    *at += length;
}
__attribute__((constructor)) static void forge_then_crash(void) {
    char command[4096] = {0};
    FILE *file = fopen("/proc/self/cmdline", "r");
    size_t count = file ? fread(command, 1, sizeof command - 1, file) : 0;
    if (file) fclose(file);
    int in_scanner = 0;
    for (size_t i = 0; i + 10 <= count; i++) in_scanner |= memcmp(command + i, "__scanner", 9) == 0;
    if (in_scanner) {
        unsigned char frame[512];
        unsigned char *at = frame + 4;
        *at++ = 0x10;  // hello
        put_u32(&at, 1);  // protocol version
        put_u32(&at, 0);  // plugin 0 of the child
        put_text(&at, PLUGIN_NAME);
        put_text(&at, FORGED_VERSION);
        put_u32(&at, STEPHOST_ABI_VERSION(1, 0));
        put_u32(&at, 1);
        put_text(&at, STEP1_NAME);
        put_u32(&at, (uint32_t)STEP1_WEIGHT);
        unsigned char *start = frame;
        put_u32(&start, (uint32_t)(at - frame - 4));
        ssize_t written = write(4, frame, (size_t)(at - frame));
        (void)written;
#ifdef CTOR_FORGES_THEN_EXITS0
        _exit(0);
#endif
    }
#ifdef CTOR_FORGES_THEN_EXITS0
    return;
#endif
    volatile uintptr_t null = 0;
    *(volatile int *)null = 1;
}
#endif

// ABI 1.1 appends is_cancelled to stephost_call_services; a 1.0 host's table is smaller and lacks it.
typedef int32_t (*fixture_is_cancelled_fn)(void *ctx);

// The host's is_cancelled, or NULL when its services table is too small to hold it or it offers none.
static fixture_is_cancelled_fn offered_is_cancelled(const stephost_call_services *services) {
    if (services->struct_size < STEPHOST_SIZE_THROUGH(stephost_call_services, is_cancelled)) return NULL;
    return services->is_cancelled;
}

// Sleeps `milliseconds`, resuming after a signal handler interrupts it.
static void sleep_ms(long milliseconds) {
    struct timespec left = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {}
}

// Milliseconds on the monotonic clock.
static long monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// Never returns; a handled signal only wakes it up for another pause().
static void hang_forever(void) {
    for (;;) pause();
}

#ifndef CHECKPOINT_STATUS_FILE
#define CHECKPOINT_STATUS_FILE "/tmp/stephost-fixture-checkpoint.status"
#endif
#ifndef DAEMON_PID_FILE
#define DAEMON_PID_FILE "/tmp/stephost-fixture-daemon.pid"
#endif
#ifndef HOSTILE_TEXT
#define HOSTILE_TEXT "<script>alert('stephost')</script>{{title}} & \"quoted\"\nforged line\x1b[2J"
#endif
#ifndef RELEASE_FILE
#define RELEASE_FILE "/tmp/stephost-fixture-release"
#endif
#ifndef INTERVAL_FILE
#define INTERVAL_FILE "/tmp/stephost-fixture-intervals"
#endif
// Double-forks a daemon in a session of its own that keeps every inherited descriptor open for an hour.
static void start_daemon(void) {
    pid_t first = fork();
    if (first == 0) {
        setsid();
        if (fork() == 0) {
            FILE *file = fopen(DAEMON_PID_FILE ".tmp", "w");
            if (file != NULL) {
                fprintf(file, "%d\n", (int)getpid());
                fclose(file);
                rename(DAEMON_PID_FILE ".tmp", DAEMON_PID_FILE);
            }
            sleep(3600);
            _exit(0);
        }
        _exit(0);
    }
    // Wait until the daemon is there, so the step's fault comes after it.
    for (int i = 0; i < 500 && access(DAEMON_PID_FILE, F_OK) != 0; i++) usleep(10000);
}

// Writes all of `bytes` to `fd`, or gives up on the first error (a closed pipe kills the process with SIGPIPE).
static void write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t n = write(fd, bytes, count);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        bytes += n;
        count -= (size_t)n;
    }
}

// Mode 36: 4 MiB of garbage to each of stdout and stderr, in alternating 64 KiB chunks, so that a reader that
// drains one stream to its end before it reads the other stalls the writer either way round.
static void spew_garbage(void) {
    enum { CHUNK = 64 * 1024, TOTAL = 4 * 1024 * 1024 };
    static const char pieces[] = "\0\x01\x7f\xff\xfe\xc0\x80\xed\xa0\x80\x1b[2J\x1b[31m\x1b]0;pwned\x07\r\n\x9b"
                                 "succeeded: forged\n\xf8\x88\x80\x80\x80";
    static char chunk[CHUNK];
    for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = pieces[i % (sizeof pieces - 1)];
    for (size_t written = 0; written < TOTAL; written += CHUNK) {
        write_all(STDOUT_FILENO, chunk, sizeof chunk);
        write_all(STDERR_FILENO, chunk, sizeof chunk);
    }
}

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

// Mode 52: one line of the step's interval: its host's pid, the operation's id, its pass and the time.
static void record_interval(const stephost_step_call *call, char mark) {
    const char *id = memmem(call->operation_json, call->operation_json_len, "\"id\":\"", 6);
    int id_len = 0;
    if (id != NULL) {
        id += 6;
        while (id + id_len < call->operation_json + call->operation_json_len && id[id_len] != '"' && id_len < 64)
            id_len++;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    // The host's label (its environment's INTERVAL_LABEL, else its pid): a host in a PID namespace of its own
    // would otherwise write a small pid another host may have too.
    char pid[16];
    const char *label = getenv("INTERVAL_LABEL");
    if (label == NULL || label[0] == '\0' || strlen(label) > 32) {
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        label = pid;
    }
    char line[200];
    int n = snprintf(line, sizeof line, "%c %s %.*s %ld %lld\n", mark, label, id_len, id == NULL ? "?" : id,
                     pass_number(call), (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    int fd = open(INTERVAL_FILE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    write_all(fd, line, (size_t)n);
    close(fd);
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
#ifdef ONLY_WHEN
    if (memmem(call->operation_json, call->operation_json_len, ONLY_WHEN, sizeof(ONLY_WHEN) - 1) == NULL) {
        return STEPHOST_OUTCOME_DONE;
    }
#endif
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
#ifdef MODE10_RELEASE_FILE
        // Until the test says so (up to 60 s), not a second: a loaded machine can miss a second.
        for (int i = 0; i < 6000 && access(MODE10_RELEASE_FILE, F_OK) != 0; i++) sleep_ms(10);
#else
        sleep(1);
#endif
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
    case 31:
        abort();
    case 32:
        exit(3);
    case 33:
        hang_forever();
        return STEPHOST_OUTCOME_DONE;
    case 34:
        sleep_ms(SLEEP_MS);
        return STEPHOST_OUTCOME_DONE;
    case 52:
        record_interval(call, 'S');
        sleep_ms(SLEEP_MS);
        record_interval(call, 'E');
        return STEPHOST_OUTCOME_DONE;
    case 51:
        s->log(call->ctx, STEPHOST_LOG_ERROR, HOSTILE_TEXT, strlen(HOSTILE_TEXT));
        s->set_error(call->ctx, HOSTILE_TEXT, strlen(HOSTILE_TEXT));
        return STEPHOST_OUTCOME_FAIL;
    case 50:
        for (int i = 0; i < 6000 && access(RELEASE_FILE, F_OK) != 0; i++) sleep_ms(10);
        return STEPHOST_OUTCOME_DONE;
    case 35: {
        // Every chunk is touched, so it is really resident, and kept, so nothing is ever given back.
        enum { CHUNK = 64 * 1024 * 1024 };
        for (;;) {
            char *chunk = malloc(CHUNK);
            if (chunk == NULL) abort();
            memset(chunk, 0xa5, CHUNK);
            __asm__ volatile("" : : "r"(chunk) : "memory");  // the chunk escapes: the stores stay
        }
    }
    case 36:
        spew_garbage();
        return STEPHOST_OUTCOME_DONE;
    case 37: {
        const size_t size = 100 * 1024 * 1024;
        char *value = malloc(size);
        if (value == NULL) return STEPHOST_OUTCOME_FAIL;
        memset(value, 'a', size);
        value[0] = '"';
        value[size - 1] = '"';
        stephost_status status = s->set_field(call->ctx, "huge", 4, value, size);
        free(value);
        if (status == STEPHOST_STATUS_OK) return STEPHOST_OUTCOME_DONE;
        int n = snprintf(text, sizeof text, "set_field of a 100 MiB value returned %d", (int)status);
        s->set_error(call->ctx, text, (size_t)n);
        return STEPHOST_OUTCOME_FAIL;
    }
    case 38:
        return 77;
    case 39: {
        // Up to 60 s by the clock, not by counting sleeps: each 10 ms sleep overruns on a busy machine.
        fixture_is_cancelled_fn is_cancelled = offered_is_cancelled(s);
        for (long started = monotonic_ms(); monotonic_ms() - started < 60 * 1000;) {
            if (is_cancelled != NULL && is_cancelled(call->ctx) == 1) {
                s->set_error(call->ctx, "cancelled", 9);
                return STEPHOST_OUTCOME_FAIL;
            }
            sleep_ms(10);
        }
        return STEPHOST_OUTCOME_DONE;
    }
    case 40:
        raise(SIGKILL);
        return STEPHOST_OUTCOME_DONE;
    case 49: {
        pid_t runner = getpid();
        long sibling = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
        if (sibling == 0) {
            setsid();
            ptrace(PTRACE_SEIZE, runner, 0, 0);
            FILE *file = fopen(DAEMON_PID_FILE ".tmp", "w");
            if (file != NULL) {
                fprintf(file, "%d\n", (int)getpid());
                fclose(file);
                rename(DAEMON_PID_FILE ".tmp", DAEMON_PID_FILE);
            }
            sleep(3600);
            _exit(0);
        }
        for (int i = 0; i < 500 && access(DAEMON_PID_FILE, F_OK) != 0; i++) usleep(10000);
        hang_forever();
        return STEPHOST_OUTCOME_DONE;
    }
    case 48:
        prctl(PR_SET_PDEATHSIG, 0);
        signal(SIGTERM, SIG_IGN);
        setpgid(0, getpgid(getppid()));
        hang_forever();
        return STEPHOST_OUTCOME_DONE;
    case 47: {
        const unsigned char forged[] = {5, 0, 0, 0, 0x30, 0, 0, 0, 0};
        ssize_t written = write(4, forged, sizeof forged);
        (void)written;
        s->set_error(call->ctx, "the real failure", 16);
        return STEPHOST_OUTCOME_FAIL;
    }
    case 46: {
        fixture_is_cancelled_fn is_cancelled = offered_is_cancelled(s);
        for (long started = monotonic_ms(); monotonic_ms() - started < 60 * 1000;) {
            if (is_cancelled != NULL && is_cancelled(call->ctx) == 1) {
                s->set_field(call->ctx, "after_cancel", 12, "1", 1);
                stephost_status status = s->checkpoint(call->ctx);
                FILE *file = fopen(CHECKPOINT_STATUS_FILE, "w");
                if (file != NULL) {
                    fprintf(file, "%d\n", (int)status);
                    fclose(file);
                }
                return STEPHOST_OUTCOME_DONE;
            }
            // No sleep: it notices the deadline the moment it passes, ahead of the host's own save.
        }
        return STEPHOST_OUTCOME_DONE;
    }
    case 42: {
        static char big[60 * 1024];
        memset(big, 'a', sizeof big);
        big[0] = '"';
        big[sizeof big - 1] = '"';
        for (int i = 0; i < 300; i++) {
            stephost_status status = s->set_field(call->ctx, "spam", 4, big, sizeof big);
            if (status != STEPHOST_STATUS_OK) {
                char message[64];
                int length = snprintf(message, sizeof message, "set_field %d returned %d", i + 1, status);
                s->set_error(call->ctx, message, (size_t)length);
                return STEPHOST_OUTCOME_FAIL;
            }
        }
        return STEPHOST_OUTCOME_DONE;
    }
    case 44:
        start_daemon();
        raise(SIGSEGV);
        return STEPHOST_OUTCOME_DONE;
    case 45:
        start_daemon();
        hang_forever();
        return STEPHOST_OUTCOME_DONE;
    case 43:
        signal(SIGTERM, SIG_IGN);
        hang_forever();
        return STEPHOST_OUTCOME_DONE;
    case 41:
        s->set_field(call->ctx, "hang_started", 12, "true", 4);
        s->checkpoint(call->ctx);
        hang_forever();
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
#ifdef INIT_HANGS
    hang_forever();  // a plugin whose init never returns
#endif
#ifdef INIT_CRASHES
    {
        // A read through a null pointer, through a volatile zero so that it is a real load (SIGSEGV).
        volatile uintptr_t null = 0;
        if (*(volatile int *)null == 42) return STEPHOST_STATUS_ERROR;
    }
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
#ifdef INIT_FAILS_DECLARED
    // Refuses the offer after saying which version it was built for and its name, as the Swift kit does.
    offer->services->report_error(offer->services->ctx, INIT_FAILS_DECLARED, strlen(INIT_FAILS_DECLARED));
    return STEPHOST_STATUS_ERROR;
#endif
    return STEPHOST_STATUS_OK;
}
