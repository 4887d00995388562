#ifndef STEPHOST_TEMPLATES_H
#define STEPHOST_TEMPLATES_H

#include <stddef.h>

/// The files `stephost new-plugin --language rust` starts from, embedded at build time from the Rust example
/// plugin (whose bindings the test suite checks against stephost.h), so an installed host needs no source tree.
/// `index` 0 to stephost_template_count() - 1; the path is relative to the crate's root. NULL past the end.
size_t stephost_rust_template_count(void);
const char *stephost_rust_template_path(size_t index);
const char *stephost_rust_template_bytes(size_t index);
size_t stephost_rust_template_length(size_t index);

#endif
