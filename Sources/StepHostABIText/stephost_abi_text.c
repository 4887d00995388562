// Embeds the real header at build time, so `stephost plugin-header` prints exactly the contract the
// host was compiled against and no copy of it can drift.
#include "stephost_abi_text.h"

#pragma clang diagnostic ignored "-Wc23-extensions"
static const char header_text[] = {
#embed "../StepHostABI/include/stephost.h"
};

const char *stephost_abi_header_bytes(void) { return header_text; }

size_t stephost_abi_header_length(void) { return sizeof header_text; }
