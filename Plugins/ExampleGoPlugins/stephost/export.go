package stephost

// The one run function of every Go step, exported so that run_step (abi.go) can call it. A file that
// exports a Go function may hold only declarations in its preamble (cgo copies it into two C files), so
// this file holds nothing else.

/*
#include "stephost.h"
*/
import "C"

import "unsafe"

//export stephostGoRunStep
func stephostGoRunStep(stepContext unsafe.Pointer, call *C.stephost_step_call) C.stephost_outcome {
	return runStep(stepContext, call)
}
