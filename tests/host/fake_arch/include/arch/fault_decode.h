/* The host tests build faults as arm64 syndromes: arm64's decoder, a pure function, is theirs too. */
#include "../../../../../arch/arm64/include/arch/fault_decode.h"
