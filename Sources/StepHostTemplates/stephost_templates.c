// Embeds the Rust example plugin's sources at build time (see stephost_templates.h).
#include "stephost_templates.h"

#pragma clang diagnostic ignored "-Wc23-extensions"

static const char cargo_toml[] = {
#embed "../../Plugins/ExampleRustPlugin/Cargo.toml"
};
static const char lib_rs[] = {
#embed "../../Plugins/ExampleRustPlugin/src/lib.rs"
};
static const char abi_rs[] = {
#embed "../../Plugins/ExampleRustPlugin/src/abi.rs"
};
static const char host_rs[] = {
#embed "../../Plugins/ExampleRustPlugin/src/host.rs"
};
static const char json_rs[] = {
#embed "../../Plugins/ExampleRustPlugin/src/json.rs"
};
static const char tests_rs[] = {
#embed "../../Plugins/ExampleRustPlugin/src/tests.rs"
};
static const char rustfmt_toml[] = {
#embed "../../Plugins/ExampleRustPlugin/rustfmt.toml"
};

static const struct {
    const char *path;
    const char *bytes;
    size_t length;
} files[] = {
    {"Cargo.toml", cargo_toml, sizeof cargo_toml},
    {"src/lib.rs", lib_rs, sizeof lib_rs},
    {"src/abi.rs", abi_rs, sizeof abi_rs},
    {"src/host.rs", host_rs, sizeof host_rs},
    {"src/json.rs", json_rs, sizeof json_rs},
    {"src/tests.rs", tests_rs, sizeof tests_rs},
    {"rustfmt.toml", rustfmt_toml, sizeof rustfmt_toml},
};

size_t stephost_rust_template_count(void) { return sizeof files / sizeof files[0]; }

const char *stephost_rust_template_path(size_t index) {
    return index < stephost_rust_template_count() ? files[index].path : 0;
}

const char *stephost_rust_template_bytes(size_t index) {
    return index < stephost_rust_template_count() ? files[index].bytes : 0;
}

size_t stephost_rust_template_length(size_t index) {
    return index < stephost_rust_template_count() ? files[index].length : 0;
}
