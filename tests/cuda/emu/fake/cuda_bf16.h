// Emulation stand-in for <cuda_bf16.h> (see cuemu.h).
#include "cuemu.h"
