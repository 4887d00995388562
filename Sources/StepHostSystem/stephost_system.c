#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
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

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

pid_t stephost_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int fd_count) {
    // Each source is first duplicated above every target, so that placing one cannot overwrite another's source.
    int high[256];
    if (fd_count < 0 || fd_count > 256) {
        errno = EINVAL;
        return -1;
    }
    int opened = 0;
    for (; opened < fd_count; opened++) {
        high[opened] = -1;
        if (fds[opened] < 0) continue;
        high[opened] = fcntl(fds[opened], F_DUPFD_CLOEXEC, 300);
        if (high[opened] < 0) break;
    }
    pid_t pid = -1;
    int saved = 0;
    if (opened == fd_count) {
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attributes;
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attributes);
        for (int target = 0; target < fd_count; target++) {
            if (high[target] < 0) {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0);
            } else {
                posix_spawn_file_actions_adddup2(&actions, high[target], target);
            }
        }
        posix_spawn_file_actions_addclosefrom_np(&actions, fd_count);
        sigset_t empty, all;
        sigemptyset(&empty);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attributes, &empty);
        posix_spawnattr_setsigdefault(&attributes, &all);
        posix_spawnattr_setpgroup(&attributes, 0);
        posix_spawnattr_setflags(
            &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
        int result = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
        if (result != 0) {
            pid = -1;
            saved = result;
        }
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
    } else {
        saved = errno;
    }
    for (int index = 0; index < opened; index++) {
        if (high[index] >= 0) close(high[index]);
    }
    if (pid < 0) errno = saved;
    return pid;
}

static int limit(int resource, unsigned long long value, int hard_margin) {
    if (value == 0) return 0;
    struct rlimit current;
    if (getrlimit(resource, &current) != 0) return -1;
    rlim_t soft = (rlim_t)value;
    rlim_t hard = (rlim_t)value + (rlim_t)hard_margin;
    // Never above what the process may have: a limit can only be lowered without privileges.
    if (current.rlim_max != RLIM_INFINITY && hard > current.rlim_max) hard = current.rlim_max;
    if (soft > hard) soft = hard;
    struct rlimit wanted = {.rlim_cur = soft, .rlim_max = hard};
    return setrlimit(resource, &wanted);
}

int stephost_limit_self(unsigned long long address_space, unsigned long long cpu_seconds,
                        unsigned long long open_files) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return -1;
    if (limit(RLIMIT_AS, address_space, 0) != 0) return -1;
    // The soft CPU limit sends SIGXCPU; the hard one, a second later, SIGKILL.
    if (limit(RLIMIT_CPU, cpu_seconds, 1) != 0) return -1;
    if (limit(RLIMIT_NOFILE, open_files, 0) != 0) return -1;
    return 0;
}

int stephost_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == parent ? 0 : -1;
}

pid_t stephost_wait(pid_t pid, int block, int *exit_code, int *signal_number) {
    int status = 0;
    pid_t result;
    do {
        result = waitpid(pid, &status, block ? 0 : WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result > 0) {
        *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        *signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return result;
}

int stephost_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

static _Thread_local long thread_slot;
static _Thread_local int thread_handoff;

void stephost_set_thread_slot(long slot) { thread_slot = slot; }
long stephost_thread_slot(void) { return thread_slot; }
void stephost_set_thread_handoff(int on) { thread_handoff = on; }
int stephost_thread_handoff(void) { return thread_handoff; }

#include <poll.h>
#include <sys/syscall.h>

int stephost_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int stephost_wait_data(int fd, int pidfd, int timeout_ms) {
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    for (;;) {
        int result = poll(fds, pidfd >= 0 ? 2 : 1, timeout_ms);
        if (result < 0 && errno == EINTR) continue;
        if (result < 0) return -1;
        if (result == 0) return 0;
        if (fds[0].revents != 0) return 1;
        return 2;
    }
}

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* Appends the children of `pid` (every thread's) to `list`, growing it; returns the new count. */
static size_t append_children(pid_t pid, pid_t **list, size_t count, size_t *capacity) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL) return count;
    struct dirent *task;
    while ((task = readdir(tasks)) != NULL) {
        if (task->d_name[0] == '.') continue;
        char children_path[128];
        snprintf(children_path, sizeof children_path, "/proc/%d/task/%s/children", (int)pid, task->d_name);
        FILE *file = fopen(children_path, "re");
        if (file == NULL) continue;
        long child;
        while (fscanf(file, "%ld", &child) == 1) {
            if (count == *capacity) {
                size_t grown = *capacity ? *capacity * 2 : 64;
                pid_t *bigger = realloc(*list, grown * sizeof(pid_t));
                if (bigger == NULL) break;
                *list = bigger;
                *capacity = grown;
            }
            (*list)[count++] = (pid_t)child;
        }
        fclose(file);
    }
    closedir(tasks);
    return count;
}

int stephost_kill_descendants(pid_t root, int signal_number) {
    int killed = 0;
    // A few rounds: a descendant may fork while the tree is walked.
    for (int round = 0; round < 3; round++) {
        pid_t *list = NULL;
        size_t count = 0, capacity = 0;
        count = append_children(root, &list, count, &capacity);
        for (size_t index = 0; index < count && index < 100000; index++) {
            count = append_children(list[index], &list, count, &capacity);
        }
        for (size_t index = 0; index < count; index++) {
            if (kill(list[index], signal_number) == 0) killed++;
        }
        free(list);
        if (count == 0) break;
    }
    return killed;
}

int stephost_become_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1); }

#include <stdatomic.h>

static atomic_int plugin_code_depth;
static atomic_int host_exits;

static void refuse_exit_from_plugin(void) {
    if (atomic_load(&host_exits) || atomic_load(&plugin_code_depth) <= 0) return;
    static const char message[] =
        "stephost: an in-process plugin called exit() while the host ran its code (loading it or running one of "
        "its steps); the host stops with status 70. Give the plugin `isolation: process`, where its runner ends "
        "instead, or fix it.\n";
    ssize_t written = write(2, message, sizeof message - 1);
    (void)written;
    _exit(70);
}

void stephost_guard_exit(void) {
    static atomic_int installed;
    if (atomic_exchange(&installed, 1) == 0) atexit(refuse_exit_from_plugin);
}

void stephost_host_exits(void) { atomic_store(&host_exits, 1); }
void stephost_enter_plugin_code(void) { atomic_fetch_add(&plugin_code_depth, 1); }
void stephost_leave_plugin_code(void) { atomic_fetch_sub(&plugin_code_depth, 1); }

struct build_id_search {
    unsigned char *out;
    size_t capacity;
    size_t length;
};

// The first object dl_iterate_phdr reports is the main program: its GNU build-id note, if it has one.
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct build_id_search *search = data;
    for (int index = 0; index < info->dlpi_phnum; index++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[index];
        if (header->p_type != PT_NOTE) continue;
        const char *note = (const char *)(info->dlpi_addr + header->p_vaddr);
        const char *end = note + header->p_memsz;
        while ((size_t)(end - note) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *entry = (const ElfW(Nhdr) *)(const void *)note;
            const char *name = note + sizeof *entry;
            const char *description = name + ((entry->n_namesz + 3u) & ~3u);
            const char *next = description + ((entry->n_descsz + 3u) & ~3u);
            if (next > end || next <= note) break;
            if (entry->n_type == NT_GNU_BUILD_ID && entry->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t length = entry->n_descsz < search->capacity ? entry->n_descsz : search->capacity;
                memcpy(search->out, description, length);
                search->length = length;
                return 1;
            }
            note = next;
        }
    }
    return 1;
}

size_t stephost_build_id(unsigned char *out, size_t capacity) {
    struct build_id_search search = {out, capacity, 0};
    dl_iterate_phdr(find_build_id, &search);
    return search.length;
}
