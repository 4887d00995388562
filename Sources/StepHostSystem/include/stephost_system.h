#ifndef STEPHOST_SYSTEM_H
#define STEPHOST_SYSTEM_H

/// Names the calling thread (Linux keeps the first 15 bytes), so `top -H`, gdb and the plugins see it.
/// pthread_setname_np is a GNU extension that Swift's Glibc module does not import.
void stephost_name_current_thread(const char *name);

#endif
