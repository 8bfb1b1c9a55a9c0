// Emulation stand-in for <cudnn.h> (see cuemu.h).
#include "cuemu.h"
