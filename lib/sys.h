/* lib/sys.h — small helpers over the operating system shared by every subcommand. */
#ifndef LAUREL_SYS_H
#define LAUREL_SYS_H

/**
 * Raise this process's limit of open descriptors to @want: the hard limit too when the
 * process may (CAP_SYS_RESOURCE), else the soft one up to the hard one. Call before a
 * library sizes its tables from the limit (libwebsockets does at context creation).
 * @return the soft limit now in force (0 if unknown): less than @want means fewer fit.
 */
unsigned long sys_raise_nofile(unsigned long want);

#endif
