/* SMC Calling Convention: function ID in w0, arguments in x1-x3, result in x0. */
#include <arch/asm.h>

	.text
FUNC(smccc_smc)
	smc	#0
	ret
END(smccc_smc)

FUNC(smccc_hvc)
	hvc	#0
	ret
END(smccc_hvc)
