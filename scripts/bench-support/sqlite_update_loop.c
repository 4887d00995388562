// sqlite_update_loop: the bare cost of one durable SQLite commit, the baseline of figures 2, 3 and 5 of scripts/bench.
//
// What it measures: on a fresh database (journal_mode=WAL, synchronous=FULL, the system libsqlite3), one
// UPDATE of one row of ROW_BYTES bytes per transaction (an autocommit statement, prepared once), in a loop for
// SECONDS. It prints one JSON line: commits, seconds, commits per second, and the bytes each commit wrote.
//
// Why it is the right baseline: a stephost step commit is at least this. Its durability contract is the same
// (WAL, synchronous=FULL: every commit waits for an fsync of the WAL), it rewrites a row of the same stored size
// (ROW_BYTES is the row_bytes stephost-bench reports for its operation row), on the same file system, and with
// SQLite's default checkpointing (a PASSIVE checkpoint once the WAL holds 1000 pages). Nothing else is done: no
// other table, no index, no read, no encoding. So commits/s here is what the disk and SQLite allow for one
// writer committing one row at a time; a host doing one commit per step can approach it but not pass it, and a
// host that batches commits (group commit, figure 3) can pass it only by writing several changes per fsync.
//
// Each commit rewrites the whole row: the counter is stamped into every 256-byte block of it, so every page the
// row occupies changes (SQLite writes only the pages of an overwritten row whose bytes differ), as a save of an
// operation row that changes its state and fields does.
//
// Bytes written per commit are counted two ways. As stephost-bench counts them: the bytes this process passed to
// write(2) during the timed loop (/proc/self/io wchar), checkpoints included, / commits. And WAL bytes per
// commit, exactly: a WAL hook sees the frame count after every commit (frames appended = the growth of that
// count, or the count itself after the WAL restarted), and each frame is one page plus a 24-byte header. The hook also runs the checkpoint that SQLite's default auto-checkpoint
// would run (registering a hook replaces it), with the same threshold and mode.
//
// Usage: sqlite_update_loop DATABASE ROW_BYTES SECONDS   (DATABASE and its -wal/-shm are removed first)
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUTOCHECKPOINT_PAGES 1000
#define WARMUP_COMMITS 20

static long long frames_written = 0;
static int last_frames = 0;
static long long checkpoints = 0;

static int wal_hook(void *unused, sqlite3 *db, const char *name, int frames) {
    (void)unused;
    frames_written += frames > last_frames ? frames - last_frames : frames;
    last_frames = frames;
    if (frames >= AUTOCHECKPOINT_PAGES) {  // what sqlite3_wal_autocheckpoint(db, 1000) does
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        checkpoints++;
    }
    return SQLITE_OK;
}

// Bytes this process has passed to write(2) and friends so far.
static long long written_bytes(void) {
    FILE *io = fopen("/proc/self/io", "r");
    long long value = -1;
    char line[256];
    while (io != NULL && fgets(line, sizeof line, io) != NULL) {
        if (strncmp(line, "wchar:", 6) == 0) value = strtoll(line + 6, NULL, 10);
    }
    if (io != NULL) fclose(io);
    return value;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(sqlite3 *db, int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "sqlite_update_loop: %s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        exit(1);
    }
}

static void exec(sqlite3 *db, const char *sql) { check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql); }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: sqlite_update_loop DATABASE ROW_BYTES SECONDS\n");
        return 64;
    }
    const char *path = argv[1];
    long row_bytes = strtol(argv[2], NULL, 10);
    double duration = strtod(argv[3], NULL);
    if (row_bytes < 16 || duration <= 0) {
        fprintf(stderr, "sqlite_update_loop: ROW_BYTES must be >= 16 and SECONDS > 0\n");
        return 64;
    }
    char neighbour[4096];
    unlink(path);
    snprintf(neighbour, sizeof neighbour, "%s-wal", path);
    unlink(neighbour);
    snprintf(neighbour, sizeof neighbour, "%s-shm", path);
    unlink(neighbour);

    sqlite3 *db = NULL;
    check(db, sqlite3_open(path, &db), "open");
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = FULL");
    exec(db, "CREATE TABLE bench (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
    // The row's payload: ROW_BYTES bytes of text-like content; a counter in every 256-byte block changes with
    // every commit.
    unsigned char *data = malloc((size_t)row_bytes);
    memset(data, 'x', (size_t)row_bytes);
    sqlite3_stmt *insert = NULL;
    check(db, sqlite3_prepare_v2(db, "INSERT INTO bench (id, data) VALUES (1, ?1)", -1, &insert, NULL), "prepare");
    sqlite3_bind_blob(insert, 1, data, (int)row_bytes, SQLITE_STATIC);
    check(db, sqlite3_step(insert), "insert");
    sqlite3_finalize(insert);
    sqlite3_wal_hook(db, wal_hook, NULL);

    sqlite3_stmt *update = NULL;
    check(db, sqlite3_prepare_v2(db, "UPDATE bench SET data = ?1 WHERE id = 1", -1, &update, NULL), "prepare");
    long long commits = 0;
    double start = 0;
    long long written_start = 0;
    for (long long iteration = 0;; iteration++) {
        if (iteration == WARMUP_COMMITS) {  // the WAL file exists and has grown: count from here
            commits = 0;
            frames_written = 0;
            checkpoints = 0;
            written_start = written_bytes();
            start = now();
        }
        char stamp[17];
        snprintf(stamp, sizeof stamp, "%016llx", (unsigned long long)iteration);
        for (long offset = 0; offset + 16 <= row_bytes; offset += 256) memcpy(data + offset, stamp, 16);
        sqlite3_bind_blob(update, 1, data, (int)row_bytes, SQLITE_STATIC);
        check(db, sqlite3_step(update), "update");
        sqlite3_reset(update);
        commits++;
        if (iteration >= WARMUP_COMMITS && now() - start >= duration) break;
    }
    double seconds = now() - start;
    long long written = written_bytes() - written_start;
    int page_size = 0;
    sqlite3_stmt *pragma = NULL;
    check(db, sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &pragma, NULL), "prepare");
    if (sqlite3_step(pragma) == SQLITE_ROW) page_size = sqlite3_column_int(pragma, 0);
    sqlite3_finalize(pragma);
    sqlite3_finalize(update);
    sqlite3_close(db);
    double wal_bytes = (double)frames_written * (page_size + 24);
    printf(
        "{\"commits\":%lld,\"seconds\":%.6f,\"commits_per_second\":%.3f,\"row_bytes\":%ld,\"page_size\":%d,"
        "\"wal_frames_per_commit\":%.4f,\"wal_bytes_per_commit\":%.1f,\"written_bytes_per_commit\":%.1f,"
        "\"checkpoints\":%lld,\"sqlite\":\"%s\"}\n",
        commits, seconds, commits / seconds, row_bytes, page_size, (double)frames_written / commits,
        wal_bytes / commits, (double)written / commits, checkpoints, sqlite3_libversion());
    free(data);
    return 0;
}
