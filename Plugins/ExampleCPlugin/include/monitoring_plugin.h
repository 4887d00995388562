// The monitoring example plugin has no API of its own: its only export is stephost_plugin_init from stephost.h.
#include "stephost.h"
