// nosync_preload: an LD_PRELOAD shim that turns fsync, fdatasync, syncfs and sync into no-ops.
//
// scripts/bench uses it for one thing only: to fill figure 6's queue (`stephost-bench enqueue` of up to 20,000
// operations, one synced commit each) in seconds instead of minutes. That setup is not timed and its durability
// does not matter: the script runs sync(1) afterwards, before anything is measured, and every timed process
// runs without the shim. (The same idea as Debian's eatmydata, without another package.)
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

int fsync(int fd) {
    (void)fd;
    return 0;
}

int fdatasync(int fd) {
    (void)fd;
    return 0;
}

int syncfs(int fd) {
    (void)fd;
    return 0;
}

void sync(void) {}
