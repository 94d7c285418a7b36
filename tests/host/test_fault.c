/*
 * fault_decode (arch/arm64/fault.c) on hand-built ESR_EL2 values: the ISS encoding
 * of data and instruction aborts from a lower EL (Arm ARM D19.2, ESR_EL2),
 * and the IPA from HPFAR_EL2.FIPA and FAR_EL2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <arch/fault_decode.h>
#include <quire/fault.h>

#define EC_IABT_LOW 0x20u
#define EC_DABT_LOW 0x24u
#define IL (1u << 25)
#define ISV (1u << 24)
#define SAS(n) ((u32)(n) << 22)
#define SSE (1u << 21)
#define SRT(n) ((u32)(n) << 16)
#define SF (1u << 15)
#define AR (1u << 14)
#define FNV (1u << 10)
#define EA (1u << 9)
#define CM (1u << 8)
#define S1PTW (1u << 7)
#define WNR (1u << 6)

static u64 esr(u32 ec, u32 iss_and_il)
{
	return (u64)ec << 26 | iss_and_il;
}

static u64 hpfar_of(u64 ipa)
{
	return (ipa >> 12) << 4;
}

static struct s2_fault decode_ok(u64 e, u64 far, u64 hpfar)
{
	struct s2_fault f;

	memset(&f, 0xa5, sizeof(f));
	assert_true(fault_decode(e, far, hpfar, &f));
	return f;
}

static void data_abort_translation_l3_write_with_syndrome(void **state)
{
	const u64 far = 0xffff800012345678ULL;
	struct s2_fault f;

	(void)state;
	f = decode_ok(esr(EC_DABT_LOW, IL | ISV | SAS(2) | SSE | SRT(5) | SF | AR | WNR | 0x07), far,
		      hpfar_of(0x48123000));
	assert_int_equal(f.ec, 0x24);
	assert_false(f.instr);
	assert_true(f.write);
	assert_int_equal(f.cls, FAULT_TRANSLATION);
	assert_int_equal(f.level, 3);
	assert_int_equal(f.fsc, 0x07);
	assert_false(f.s1ptw);
	assert_false(f.cm);
	assert_false(f.ea);
	assert_true(f.far_valid);
	assert_true(f.isv);
	assert_int_equal(f.sas, 2);
	assert_true(f.sse);
	assert_int_equal(f.srt, 5);
	assert_true(f.sf);
	assert_true(f.ar);
	assert_true(f.il);
	assert_int_equal(f.va, far);
	assert_int_equal(f.ipa.bits, 0x48123678);
}

static void syndrome_fields(void **state)
{
	struct s2_fault f;

	(void)state;
	for (u32 sas = 0; sas < 4; sas++) {
		f = decode_ok(esr(EC_DABT_LOW, ISV | SAS(sas) | SRT(31) | 0x07), 0, 0);
		assert_true(f.isv);
		assert_int_equal(f.sas, sas);
		assert_int_equal(f.srt, 31);
		assert_false(f.sse);
		assert_false(f.sf);
		assert_false(f.ar);
		assert_false(f.write);
		assert_false(f.il);
	}
	/* Without ISV the syndrome bits mean nothing and decode as zero. */
	f = decode_ok(esr(EC_DABT_LOW, SAS(3) | SSE | SRT(17) | SF | AR | 0x07), 0, 0);
	assert_false(f.isv);
	assert_int_equal(f.sas, 0);
	assert_int_equal(f.srt, 0);
	assert_false(f.sse);
	assert_false(f.sf);
	assert_false(f.ar);
}

static void permission_fault_level2_read(void **state)
{
	struct s2_fault f;

	(void)state;
	f = decode_ok(esr(EC_DABT_LOW, IL | 0x0e), 0x1000, hpfar_of(0x80000000));
	assert_int_equal(f.cls, FAULT_PERMISSION);
	assert_int_equal(f.level, 2);
	assert_false(f.write);
	assert_false(f.isv);
	assert_int_equal(f.ipa.bits, 0x80000000);
}

static void four_classes_and_levels(void **state)
{
	static const enum fault_class cls[4] = { FAULT_ADDR_SIZE, FAULT_TRANSLATION, FAULT_ACCESS_FLAG,
						 FAULT_PERMISSION };
	struct s2_fault f;

	(void)state;
	for (u32 c = 0; c < 4; c++)
		for (u32 l = 0; l < 4; l++) {
			f = decode_ok(esr(EC_DABT_LOW, c << 2 | l), 0, 0);
			assert_int_equal(f.cls, cls[c]);
			assert_int_equal(f.level, l);
			assert_int_equal(f.fsc, c << 2 | l);
			f = decode_ok(esr(EC_IABT_LOW, c << 2 | l), 0, 0);
			assert_int_equal(f.cls, cls[c]);
			assert_int_equal(f.level, l);
		}
}

static void access_flag_fault(void **state)
{
	struct s2_fault f;

	(void)state;
	f = decode_ok(esr(EC_DABT_LOW, WNR | 0x0b), 0x1234, hpfar_of(0x40001000));
	assert_int_equal(f.cls, FAULT_ACCESS_FLAG);
	assert_int_equal(f.level, 3);
	assert_true(f.write);
	assert_int_equal(f.ipa.bits, 0x40001234);
}

static void instruction_abort(void **state)
{
	struct s2_fault f;

	(void)state;
	/* Bits 6 (WnR), 8 (CM) and 24 (ISV) are RES0 for instruction aborts: set them anyway. */
	f = decode_ok(esr(EC_IABT_LOW, IL | ISV | SAS(3) | SRT(9) | SF | CM | WNR | 0x06), 0x40200abc,
		      hpfar_of(0x40200000));
	assert_int_equal(f.ec, 0x20);
	assert_true(f.instr);
	assert_false(f.write);
	assert_false(f.cm);
	assert_false(f.isv);
	assert_int_equal(f.sas, 0);
	assert_int_equal(f.srt, 0);
	assert_false(f.sf);
	assert_int_equal(f.cls, FAULT_TRANSLATION);
	assert_int_equal(f.level, 2);
	assert_true(f.il);
	assert_int_equal(f.ipa.bits, 0x40200abc);
	f = decode_ok(esr(EC_IABT_LOW, S1PTW | EA | FNV | 0x0f), 0, 0);
	assert_true(f.s1ptw);
	assert_true(f.ea);
	assert_false(f.far_valid);
	assert_int_equal(f.cls, FAULT_PERMISSION);
}

static void flags_s1ptw_fnv_ea_cm(void **state)
{
	struct s2_fault f;

	(void)state;
	f = decode_ok(esr(EC_DABT_LOW, S1PTW | WNR | 0x05), 0, 0);
	assert_true(f.s1ptw);
	assert_false(f.ea);
	assert_false(f.cm);
	assert_true(f.far_valid);
	assert_int_equal(f.level, 1);

	f = decode_ok(esr(EC_DABT_LOW, FNV | 0x07), 0xdead, hpfar_of(0x41000000));
	assert_false(f.far_valid);
	assert_false(f.s1ptw);
	assert_int_equal(f.ipa.bits >> 12, 0x41000); /* the page still comes from HPFAR */

	f = decode_ok(esr(EC_DABT_LOW, EA | 0x10), 0, 0);
	assert_true(f.ea);
	assert_int_equal(f.cls, FAULT_EXTERNAL);

	/* Cache maintenance faults report WnR = 1. */
	f = decode_ok(esr(EC_DABT_LOW, CM | WNR | 0x06), 0, 0);
	assert_true(f.cm);
	assert_true(f.write);
	assert_false(f.s1ptw);
	assert_false(f.ea);
}

/*
 * A stage-2 fault on the guest's stage-1 walk (S1PTW) writes exactly when it
 * is a permission fault (the walker setting AF/dirty, FEAT_HAFDBS), whatever
 * WnR says and whether the walk was for a load or a fetch (KVM's rule).
 */
static void regression_s1ptw_write_is_a_permission_fault(void **state)
{
	struct s2_fault f;

	(void)state;
	f = decode_ok(esr(EC_DABT_LOW, IL | S1PTW | 0x0f), 0, hpfar_of(0x40001000));
	assert_true(f.s1ptw);
	assert_true(f.write);
	f = decode_ok(esr(EC_IABT_LOW, IL | S1PTW | 0x0e), 0, hpfar_of(0x40001000));
	assert_true(f.instr);
	assert_true(f.write);
	assert_int_equal(f.cls, FAULT_PERMISSION);
	/* Translation and access-flag faults on a walk read, even with WnR set. */
	f = decode_ok(esr(EC_DABT_LOW, IL | S1PTW | WNR | 0x07), 0, 0);
	assert_false(f.write);
	f = decode_ok(esr(EC_IABT_LOW, IL | S1PTW | 0x0b), 0, 0);
	assert_false(f.write);
	/* Without S1PTW nothing changes: WnR, data aborts only. */
	f = decode_ok(esr(EC_DABT_LOW, IL | 0x0f), 0, 0);
	assert_false(f.write);
	f = decode_ok(esr(EC_IABT_LOW, IL | 0x0f), 0, 0);
	assert_false(f.write);
}

static void external_and_other_codes(void **state)
{
	static const struct {
		u8 fsc;
		enum fault_class cls;
	} t[] = {
		{ 0x10, FAULT_EXTERNAL },     { 0x14, FAULT_EXTERNAL },	  { 0x15, FAULT_EXTERNAL },
		{ 0x16, FAULT_EXTERNAL },     { 0x17, FAULT_EXTERNAL },	  { 0x21, FAULT_ALIGNMENT },
		{ 0x30, FAULT_TLB_CONFLICT }, { 0x11, FAULT_OTHER },	  { 0x18, FAULT_EXTERNAL },
		{ 0x20, FAULT_OTHER },	      { 0x22, FAULT_OTHER },	  { 0x31, FAULT_OTHER },
		{ 0x34, FAULT_OTHER },	      { 0x3f, FAULT_OTHER },
	};
	struct s2_fault f;

	(void)state;
	for (unsigned k = 0; k < ARRAY_SIZE(t); k++) {
		f = decode_ok(esr(EC_DABT_LOW, t[k].fsc), 0, 0);
		assert_int_equal(f.fsc, t[k].fsc);
		assert_int_equal(f.cls, t[k].cls);
		assert_int_equal(f.level, 0); /* levels only for the four translation classes */
	}
	/* A walk abort at level 3 still reports level 0. */
	f = decode_ok(esr(EC_IABT_LOW, 0x17), 0, 0);
	assert_int_equal(f.cls, FAULT_EXTERNAL);
	assert_int_equal(f.level, 0);
}

static void other_exception_classes_rejected(void **state)
{
	static const u32 ecs[] = { 0x00, 0x01, 0x07, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22,
				   0x25, 0x26, 0x2c, 0x3c, 0x3f, 0x04, 0x28 };
	struct s2_fault f, pristine;

	(void)state;
	memset(&pristine, 0x5c, sizeof(pristine));
	for (unsigned k = 0; k < ARRAY_SIZE(ecs); k++) {
		f = pristine;
		assert_false(fault_decode(esr(ecs[k], IL | WNR | 0x07), 0x1000, 0x100, &f));
		assert_memory_equal(&f, &pristine, sizeof(f));
	}
	/* The EC is bits [31:26]: an abort EC in bits [63:32] does not count. */
	f = pristine;
	assert_false(fault_decode((u64)EC_DABT_LOW << 58 | 0x07, 0, 0, &f));
	assert_memory_equal(&f, &pristine, sizeof(f));
}

static void upper_esr_bits_ignored(void **state)
{
	struct s2_fault a, b;
	const u32 iss = IL | ISV | SAS(1) | SRT(3) | WNR | 0x07;

	(void)state;
	a = decode_ok(esr(EC_DABT_LOW, iss), 0x123, 0x4560);
	b = decode_ok(esr(EC_DABT_LOW, iss) | 0xffffffff00000000ULL, 0x123, 0x4560);
	assert_int_equal(a.ec, b.ec);
	assert_int_equal(a.write, b.write);
	assert_int_equal(a.srt, b.srt);
	assert_int_equal(a.cls, b.cls);
	assert_int_equal(a.ipa.bits, b.ipa.bits);
}

static void ipa_from_hpfar_and_far(void **state)
{
	struct s2_fault f;

	(void)state;
	/* FIPA is HPFAR_EL2[43:4] = IPA[51:12]; NS (bit 63), bits [62:44] and [3:0] are not part of it. */
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0xffffffffffffffffULL, 0xffffffffffffffffULL);
	assert_int_equal(f.ipa.bits, 0x000fffffffffffffULL);
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0xabcdef0123456789ULL, 0x8000000000000000ULL | 0xfULL);
	assert_int_equal(f.ipa.bits, 0x789);
	/* Highest FIPA bit alone: IPA bit 51. */
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0, 1ULL << 43);
	assert_int_equal(f.ipa.bits, 1ULL << 51);
	/* A 48-bit IPA. */
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0xfff, hpfar_of(0xfedcba987000ULL));
	assert_int_equal(f.ipa.bits, 0xfedcba987fffULL);
	/* Bit 44 of HPFAR would be IPA bit 52: not there. */
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0, 1ULL << 44);
	assert_int_equal(f.ipa.bits, 0);
	/* The VA is FAR_EL2 as it is. */
	assert_int_equal(f.va, 0);
	f = decode_ok(esr(EC_DABT_LOW, 0x07), 0xffff000000000001ULL, 0);
	assert_int_equal(f.va, 0xffff000000000001ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(data_abort_translation_l3_write_with_syndrome),
		cmocka_unit_test(syndrome_fields),
		cmocka_unit_test(permission_fault_level2_read),
		cmocka_unit_test(four_classes_and_levels),
		cmocka_unit_test(access_flag_fault),
		cmocka_unit_test(instruction_abort),
		cmocka_unit_test(flags_s1ptw_fnv_ea_cm),
		cmocka_unit_test(regression_s1ptw_write_is_a_permission_fault),
		cmocka_unit_test(external_and_other_codes),
		cmocka_unit_test(other_exception_classes_rejected),
		cmocka_unit_test(upper_esr_bits_ignored),
		cmocka_unit_test(ipa_from_hpfar_and_far),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
