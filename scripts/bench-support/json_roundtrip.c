// json_roundtrip: the bare cost of handing an operation to a step as JSON, the baseline of figure 1 of
// scripts/bench.
//
// What it measures: one decode (json_loadb) and one encode (json_dumps, compact) of the operation document in
// FILE (the exact document a plugin receives, as `stephost-bench document` prints it), repeated for SECONDS
// after a short warm-up, with jansson (Debian's libjansson). It prints one JSON line: the document's bytes, the
// round trips done, and seconds per round trip.
//
// Why it is the right baseline: a host that keeps operations as stored JSON has to read the stored operation
// and write the document the step gets, at least once per step (the step's writes change it); with a small,
// plain C JSON library that is one decode plus one encode of this document. stephost's own per-step overhead
// (figure 1: the time a no-op step adds, everything the host does around one in-process call) is compared with
// it: within 2x means the host does little beyond this unavoidable work.
//
// Usage: json_roundtrip FILE SECONDS
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t roundtrip(const char *text, size_t length) {
    json_error_t error;
    json_t *document = json_loadb(text, length, 0, &error);
    if (document == NULL) {
        fprintf(stderr, "json_roundtrip: line %d: %s\n", error.line, error.text);
        exit(1);
    }
    char *encoded = json_dumps(document, JSON_COMPACT);
    size_t encoded_length = strlen(encoded);
    free(encoded);
    json_decref(document);
    return encoded_length;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: json_roundtrip FILE SECONDS\n");
        return 64;
    }
    double duration = strtod(argv[2], NULL);
    FILE *file = fopen(argv[1], "rb");
    if (file == NULL) {
        perror(argv[1]);
        return 1;
    }
    static char text[16 << 20];
    size_t length = fread(text, 1, sizeof text, file);
    fclose(file);
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r')) length--;
    if (length == 0) {
        fprintf(stderr, "json_roundtrip: %s is empty\n", argv[1]);
        return 1;
    }
    size_t encoded_length = 0;
    for (int warmup = 0; warmup < 1000; warmup++) encoded_length = roundtrip(text, length);
    long long iterations = 0;
    double start = now(), elapsed = 0;
    do {
        for (int batch = 0; batch < 100; batch++) roundtrip(text, length);
        iterations += 100;
        elapsed = now() - start;
    } while (elapsed < duration);
    printf(
        "{\"bytes\":%zu,\"encoded_bytes\":%zu,\"roundtrips\":%lld,\"seconds\":%.6f,\"seconds_per_roundtrip\":%.9f,"
        "\"jansson\":\"%s\"}\n",
        length, encoded_length, iterations, elapsed, elapsed / iterations, jansson_version_str());
    return 0;
}
