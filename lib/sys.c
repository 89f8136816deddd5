/* lib/sys.c — operating-system helpers. Nothing here keeps state. */
#include "sys.h"

#include <sys/resource.h>

unsigned long sys_raise_nofile(unsigned long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    if (rl.rlim_max < want) {
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            return want;
        }
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    return rl.rlim_cur;
}
