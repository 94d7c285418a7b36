/* For the tests that link the violation handler without the balloon's policy (core/balloon_policy.c). */
#include <quire/balloon.h>

void balloon_policy(unsigned cpu)
{
	(void)cpu;
}
