// Emulation stand-in for <cuda_fp16.h> (see cuemu.h).
#include "cuemu.h"
