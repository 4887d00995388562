#ifndef STEPHOST_SYSTEM_H
#define STEPHOST_SYSTEM_H

/// Names the calling thread (Linux keeps the first 15 bytes), so `top -H`, gdb and the plugins see it.
/// pthread_setname_np is a GNU extension that Swift's Glibc module does not import.
void stephost_name_current_thread(const char *name);

/// An anonymous in-memory file (memfd_create with MFD_CLOEXEC | MFD_ALLOW_SEALING), or -1 with errno set.
int stephost_memfd_create(const char *name);

/// Seals a memfd against every change (shrink, grow, write, more seals). Returns 0, or -1 with errno set.
int stephost_memfd_seal(int fd);

/// The process holding a lock on byte `offset` of the file at `path` that keeps a write lock out (fcntl
/// F_GETLK), or 0 when none does, or -1 with errno set (ENOENT: no such file). The file is opened and closed:
/// never call it on a file this process locks (closing drops the process's POSIX locks on it).
int stephost_lock_holder(const char *path, long offset);

/// Tags the calling thread with `tag` (a thread-local pointer; NULL clears it), and reads the tag back. An
/// executor tags its own threads so it can tell whether code already runs on one of them.
void stephost_set_thread_tag(const void *tag);
const void *stephost_thread_tag(void);

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated) as a child in a process group of its own, with an empty signal
/// mask and default signal dispositions. `fds[i]` becomes the child's descriptor i for i < fd_count <= 256 (-1: opened
/// on /dev/null); every other descriptor is closed in the child, so it inherits nothing else. Returns the child's
/// pid, or -1 with errno set.
pid_t stephost_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int fd_count);

/// Applies resource limits to the calling process (0: leave as it is) and turns core dumps off: a runner or
/// scanner child calls it before it loads a plugin. Returns 0, or -1 with errno set.
int stephost_limit_self(unsigned long long address_space, unsigned long long cpu_seconds,
                        unsigned long long open_files);

/// Asks the kernel to SIGKILL the calling process when its parent dies, and checks that the parent is still
/// `parent` (it may have died before the request). Returns 0, or -1 when the parent is already gone.
int stephost_die_with_parent(pid_t parent);

/// waitpid(pid, &status, WNOHANG or 0): 0 while it runs, the pid once it ended (then *exit_code is its exit
/// status or -1, *signal_number the signal that ended it or 0), -1 with errno set.
pid_t stephost_wait(pid_t pid, int block, int *exit_code, int *signal_number);

/// A number an executor gives each of its threads (0: none), and a flag it sets on a thread while work
/// enqueued from that thread should run next on the same thread.
void stephost_set_thread_slot(long slot);
long stephost_thread_slot(void);
void stephost_set_thread_handoff(int on);
int stephost_thread_handoff(void);

/// pidfd_open(pid, 0): a descriptor that turns readable when the process ends, or -1 with errno set.
int stephost_pidfd_open(pid_t pid);

/// Waits until `fd` has data or its writers are gone (1), or the process of `pidfd` ended while `fd` has nothing
/// to read (2: a descendant may still hold the pipe open, so no end of file would ever come), or `timeout_ms`
/// passes (0; -1 waits without end). -1 with errno set on failure. `pidfd` may be -1.
int stephost_wait_data(int fd, int pidfd, int timeout_ms);

/// Sends `signal_number` to every descendant of `root` (found through /proc/PID/task/TID/children, a few rounds
/// so that forks during the walk are caught); returns how many were signalled. A runner is a child subreaper
/// (stephost_become_subreaper), so even a daemon its plugin double-forked stays its descendant while it lives.
int stephost_kill_descendants(pid_t root, int signal_number);

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants of the caller are re-parented to it, not to init.
int stephost_become_subreaper(void);

/// Makes exit() called while in-process plugin code runs (between stephost_enter_plugin_code and
/// stephost_leave_plugin_code, on any thread) end the process with status 70 and a message on standard error,
/// instead of the status the plugin chose: a plugin's exit(0) must not read as the host's success. Installs an
/// atexit handler once; a host calls it at start, a runner or scanner child never does.
void stephost_guard_exit(void);
/// The host itself exits now (its command ended): the exit guard lets it, even while a stuck in-process step still
/// runs plugin code on another thread.
void stephost_host_exits(void);
void stephost_enter_plugin_code(void);
void stephost_leave_plugin_code(void);

/// pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not import.
int stephost_pipe(int fds[2]);

/// Copies the main program's GNU build-id (at most `capacity` bytes) into `out`; returns its length, 0 if it has none.
size_t stephost_build_id(unsigned char *out, size_t capacity);

#endif
