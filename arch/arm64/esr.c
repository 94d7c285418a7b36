/* Names for ESR_ELx.EC and xFSC values, for crash reports and logs. */
#include <arch/esr.h>

static const char *const ec_names[64] = {
	[0x00] = "Unknown reason",
	[0x01] = "Trapped WFI or WFE instruction",
	[0x03] = "Trapped MCR or MRC access (coproc 0b1111)",
	[0x04] = "Trapped MCRR or MRRC access (coproc 0b1111)",
	[0x05] = "Trapped MCR or MRC access (coproc 0b1110)",
	[0x06] = "Trapped LDC or STC access",
	[0x07] = "Access to SIMD or floating-point registers trapped",
	[0x0c] = "Trapped MRRC access (coproc 0b1110)",
	[0x0d] = "Branch Target Exception",
	[0x0e] = "Illegal Execution state",
	[0x11] = "SVC instruction execution in AArch32 state",
	[0x12] = "HVC instruction execution in AArch32 state",
	[0x13] = "SMC instruction execution in AArch32 state",
	[0x15] = "SVC instruction execution in AArch64 state",
	[0x16] = "HVC instruction execution in AArch64 state",
	[0x17] = "SMC instruction execution in AArch64 state",
	[0x18] = "Trapped MSR, MRS or System instruction execution in AArch64 state",
	[0x19] = "Access to SVE functionality trapped",
	[0x1c] = "Pointer Authentication failure",
	[0x20] = "Instruction Abort from a lower Exception level",
	[0x21] = "Instruction Abort taken without a change in Exception level",
	[0x22] = "PC alignment fault",
	[0x24] = "Data Abort from a lower Exception level",
	[0x25] = "Data Abort taken without a change in Exception level",
	[0x26] = "SP alignment fault",
	[0x28] = "Trapped floating-point exception from AArch32 state",
	[0x2c] = "Trapped floating-point exception from AArch64 state",
	[0x2f] = "SError interrupt",
	[0x30] = "Breakpoint exception from a lower Exception level",
	[0x31] = "Breakpoint exception taken without a change in Exception level",
	[0x32] = "Software Step exception from a lower Exception level",
	[0x33] = "Software Step exception taken without a change in Exception level",
	[0x34] = "Watchpoint exception from a lower Exception level",
	[0x35] = "Watchpoint exception taken without a change in Exception level",
	[0x38] = "BKPT instruction execution in AArch32 state",
	[0x3c] = "BRK instruction execution in AArch64 state",
};

const char *esr_ec_name(u32 ec)
{
	if (ec < 64 && ec_names[ec])
		return ec_names[ec];
	return "Reserved EC";
}

const char *esr_fsc_name(u32 fsc)
{
	switch (fsc & 0x3c) {
	case 0x00:
		return "Address size fault";
	case 0x04:
		return "Translation fault";
	case 0x08:
		return "Access flag fault";
	case 0x0c:
		return "Permission fault";
	}
	switch (fsc) {
	case 0x10:
		return "Synchronous External abort";
	case 0x21:
		return "Alignment fault";
	case 0x30:
		return "TLB conflict abort";
	}
	return "Other fault";
}
