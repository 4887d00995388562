#ifndef STEPHOST_ABI_TEXT_H
#define STEPHOST_ABI_TEXT_H
#include <stddef.h>

/** The bytes of stephost.h as it was at build time (not NUL-terminated). */
const char *stephost_abi_header_bytes(void);
/** The length of stephost.h in bytes. */
size_t stephost_abi_header_length(void);

#endif
