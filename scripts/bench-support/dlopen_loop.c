// dlopen_loop: the bare cost of loading plugins, the in-process half of figure 4's baseline in scripts/bench.
//
// What it measures: for every *.so in DIRECTORY (read with readdir), dlopen(RTLD_NOW | RTLD_LOCAL),
// dlsym("stephost_plugin_init"), and one call of it with a minimal valid offer (struct_size set, abi_min =
// abi_max = 1.0, services whose report_error and log do nothing) and a zeroed descriptor with struct_size set to
// its capacity. The time is measured inside this process, from before readdir to after the last init (so process
// start-up, the dynamic loader's own start and libc are not in it); it prints one JSON line: plugins, seconds.
//
// Why it is the right baseline: this is the work no plugin host can avoid: find the files, map and relocate
// each shared object, resolve the entry point, let the plugin describe itself. `stephost list-plugins` does
// this and then everything stephost adds (trust checks, its copy-then-load, negotiation, validation, ordering,
// JSON output). Figure 4's baseline adds the time of a whole `stephost plugin-header` process, which is the same
// executable starting and exiting without loading a plugin, so baseline = what a host must do at minimum.
//
// Usage: dlopen_loop DIRECTORY   (exits 1 naming the file if a plugin cannot be loaded or its init fails)
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stephost.h"

static void report_error(void *ctx, const char *message, size_t message_len) {
    (void)ctx;
    (void)message;
    (void)message_len;
}

static void log_line(void *ctx, stephost_log_level level, const char *message, size_t message_len) {
    (void)ctx;
    (void)level;
    (void)message;
    (void)message_len;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_loop DIRECTORY\n");
        return 64;
    }
    const stephost_host_services services = {
        .struct_size = sizeof services,
        .ctx = NULL,
        .report_error = report_error,
        .log = log_line,
    };
    const stephost_host_offer offer = {
        .struct_size = sizeof offer,
        .abi_min = STEPHOST_ABI_VERSION(1, 0),
        .abi_max = STEPHOST_ABI_VERSION(1, 0),
        .services = &services,
    };
    double start = now();
    DIR *directory = opendir(argv[1]);
    if (directory == NULL) {
        perror(argv[1]);
        return 1;
    }
    int plugins = 0;
    size_t steps = 0;
    struct dirent *entry;
    char path[4096];
    while ((entry = readdir(directory)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length < 4 || strcmp(entry->d_name + length - 3, ".so") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", argv[1], entry->d_name);
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            fprintf(stderr, "dlopen_loop: %s\n", dlerror());
            return 1;
        }
        stephost_plugin_init_fn init = (stephost_plugin_init_fn)dlsym(handle, STEPHOST_ENTRY_SYMBOL);
        if (init == NULL) {
            fprintf(stderr, "dlopen_loop: %s: no %s\n", path, STEPHOST_ENTRY_SYMBOL);
            return 1;
        }
        stephost_plugin_descriptor descriptor;
        memset(&descriptor, 0, sizeof descriptor);
        descriptor.struct_size = sizeof descriptor;
        if (init(&offer, &descriptor) != STEPHOST_STATUS_OK || descriptor.step_count == 0) {
            fprintf(stderr, "dlopen_loop: %s: init failed\n", path);
            return 1;
        }
        steps += descriptor.step_count;
        plugins++;
    }
    closedir(directory);
    double seconds = now() - start;
    printf("{\"plugins\":%d,\"steps\":%zu,\"seconds\":%.6f}\n", plugins, steps, seconds);
    return 0;
}
