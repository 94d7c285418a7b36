/* Build-time limits; safe to include from assembly. */
#ifndef QUIRE_CONFIG_H
#define QUIRE_CONFIG_H
#define MAX_CPUS 8
#define MAX_VMS 8
#define MAX_VCPUS 8 /* per VM */
#endif
