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

#endif
