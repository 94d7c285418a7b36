#ifndef QUIRE_ERRNO_H
#define QUIRE_ERRNO_H
#define ENOENT 2
#define EIO 5
#define EAGAIN 11
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOSPC 28
#define EPROTO 71
#define EDQUOT 122
#endif
