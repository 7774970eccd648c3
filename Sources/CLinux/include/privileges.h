// Giving up root after start-up: switching user and keeping a few capabilities, on
// every thread. Not libcap: capset(2), prctl(2) and the setxid calls are all it needs.
#ifndef TUNNELD_PRIVILEGES_H
#define TUNNELD_PRIVILEGES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Leave every thread of the process with exactly the capabilities in `keep` (bit N
/// is CAP_N) as permitted, effective, inheritable and ambient — ambient so that hooks
/// started with posix_spawn have them too — and nothing else.
///
/// With `switch_user`, first switch the process to `uid`, `gid` and the
/// supplementary `groups` (glibc applies those to every thread) and drop everything
/// outside `keep` from the bounding set; this needs root. Without it (the process
/// already runs as the user, e.g. under systemd's User=), only lower the capabilities:
/// `keep` is narrowed to what each thread is permitted.
///
/// Capabilities are per thread in Linux, and capset(2) and prctl(2) only change the
/// calling thread, so the other threads run the same steps from a SIGSYS handler
/// (as libcap's psx does: SIGSYS is one of the few signals libdispatch's threads
/// leave unblocked). Returns 0, or -errno with `*step` naming the call that failed.
int tl_drop_privileges(int switch_user, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                       uint64_t keep, const char **step);

#endif
