#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stephost_system.h"

void stephost_name_current_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = '\0';
    pthread_setname_np(pthread_self(), truncated);
}

int stephost_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int stephost_memfd_seal(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
}

int stephost_lock_holder(const char *path, long offset) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
    int result = fcntl(fd, F_GETLK, &probe);
    close(fd);
    if (result != 0) return -1;
    return probe.l_type == F_UNLCK ? 0 : (int)probe.l_pid;
}

static _Thread_local const void *thread_tag;

void stephost_set_thread_tag(const void *tag) { thread_tag = tag; }

const void *stephost_thread_tag(void) { return thread_tag; }
