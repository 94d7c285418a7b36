#ifndef QUIRE_ERRNO_H
#define QUIRE_ERRNO_H
#define ENOENT 2
#define ENOMEM 12
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28
#define EDQUOT 122
#endif
