/* Host fake of core/disk.c: see fake_disk.h. */
#include "fake_disk.h"

static struct pool *bounce;
static const struct gpt *table;

void fake_disk_set(struct pool *p, const struct gpt *t)
{
	bounce = p;
	table = t;
}

void disk_init(struct pool *p, unsigned cpu)
{
	(void)cpu;
	bounce = p;
}

const struct gpt *disk_table(void)
{
	return table;
}

struct pool *disk_pool(void)
{
	return bounce;
}
