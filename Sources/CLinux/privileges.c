#define _GNU_SOURCE
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

// What every thread does, in two phases: 1 while still root (keep the permitted set
// across the uid change, shrink the bounding set), 2 after it (the final sets).
enum { PHASE_PREPARE = 1, PHASE_CAPABILITIES = 2 };

static _Atomic int broadcast_phase;
static _Atomic uint64_t broadcast_keep;
static atomic_int broadcast_pending;
static atomic_int broadcast_error;
static const char *_Atomic broadcast_step;

static int phase_prepare(uint64_t keep, const char **step) {
    // Without it the uid change would empty the permitted set (capabilities(7)).
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) { *step = "prctl(PR_SET_KEEPCAPS)"; return -errno; }
    // So that no program a hook runs (a setuid one, one with file capabilities) can
    // gain more than `keep`. EINVAL: a number beyond this kernel's last capability.
    for (int cap = 0; cap < 64; cap++) {
        if (keep & (UINT64_C(1) << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
            *step = "prctl(PR_CAPBSET_DROP)";
            return -errno;
        }
    }
    return 0;
}

static int phase_capabilities(uint64_t keep, const char **step) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2] = { { 0 } };
    if (syscall(SYS_capget, &header, data) != 0) { *step = "capget"; return -errno; }
    // A thread can only keep what it is permitted (without root, what it was given).
    keep &= (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    for (int i = 0; i < 2; i++) {
        uint32_t half = (uint32_t)(keep >> (32 * i));
        data[i].permitted = data[i].effective = data[i].inheritable = half;
    }
    if (syscall(SYS_capset, &header, data) != 0) { *step = "capset"; return -errno; }
    // Ambient: kept across execve of ordinary programs, so hooks, `ip` and `tc` get
    // exactly these (a capability must be permitted and inheritable to be raised).
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) { *step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)"; return -errno; }
    for (int cap = 0; cap < 64; cap++) {
        if (!(keep & (UINT64_C(1) << cap))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) { *step = "prctl(PR_CAP_AMBIENT_RAISE)"; return -errno; }
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) { *step = "prctl(PR_SET_KEEPCAPS)"; return -errno; }
    return 0;
}

static int run_phase(int phase, uint64_t keep, const char **step) {
    return phase == PHASE_PREPARE ? phase_prepare(keep, step) : phase_capabilities(keep, step);
}

// Runs on each other thread; only system calls, so async-signal-safe.
static void broadcast_handler(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    if (info->si_code != SI_TKILL || info->si_pid != getpid()) return;  // not ours
    int saved = errno;
    const char *step = NULL;
    int rc = run_phase(atomic_load(&broadcast_phase), atomic_load(&broadcast_keep), &step);
    if (rc != 0) {
        int none = 0;
        if (atomic_compare_exchange_strong(&broadcast_error, &none, rc)) atomic_store(&broadcast_step, step);
    }
    atomic_fetch_sub(&broadcast_pending, 1);
    errno = saved;
}

// Run `phase` on the calling thread, then on every other thread of the process, and
// wait (bounded) until all have.
static int on_every_thread(int phase, uint64_t keep, const char **step) {
    int rc = run_phase(phase, keep, step);
    if (rc != 0) return rc;
    atomic_store(&broadcast_phase, phase);
    atomic_store(&broadcast_keep, keep);
    atomic_store(&broadcast_error, 0);
    atomic_store(&broadcast_step, (const char *)NULL);
    atomic_store(&broadcast_pending, 0);

    struct sigaction action = { 0 }, previous;
    action.sa_sigaction = broadcast_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, &previous) != 0) { *step = "sigaction(SIGSYS)"; return -errno; }

    pid_t pid = getpid();
    pid_t self = (pid_t)syscall(SYS_gettid);
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) {
        int err = errno;
        sigaction(SIGSYS, &previous, NULL);
        *step = "opendir(/proc/self/task)";
        return -err;
    }
    int failed = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        pid_t tid = (pid_t)atoi(entry->d_name);
        if (tid <= 0 || tid == self) continue;
        atomic_fetch_add(&broadcast_pending, 1);
        if (syscall(SYS_tgkill, pid, tid, SIGSYS) != 0) {
            int err = errno;
            atomic_fetch_sub(&broadcast_pending, 1);
            if (err != ESRCH) { failed = -err; break; }  // ESRCH: the thread has ended
        }
    }
    closedir(tasks);

    // Every thread answers within microseconds unless it blocks SIGSYS.
    struct timespec tick = { .tv_sec = 0, .tv_nsec = 1000000 };
    for (int waited = 0; atomic_load(&broadcast_pending) > 0; waited++) {
        if (waited >= 5000) {
            // Leave the handler in place: a late signal must not kill the process.
            *step = "a thread did not run the change (does it block SIGSYS?)";
            return -ETIMEDOUT;
        }
        nanosleep(&tick, NULL);
    }
    sigaction(SIGSYS, &previous, NULL);
    if (failed != 0) { *step = "tgkill"; return failed; }
    int error = atomic_load(&broadcast_error);
    if (error != 0) { *step = atomic_load(&broadcast_step); return error; }
    return 0;
}

int tl_drop_privileges(int switch_user, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                       uint64_t keep, const char **step) {
    *step = "";
    if (switch_user) {
        int rc = on_every_thread(PHASE_PREPARE, keep, step);
        if (rc != 0) return rc;
        // glibc makes every thread take these (its setxid broadcast); groups first,
        // while the process may still change them.
        if (setgroups(ngroups, groups) != 0) { *step = "setgroups"; return -errno; }
        if (setresgid(gid, gid, gid) != 0) { *step = "setresgid"; return -errno; }
        if (setresuid(uid, uid, uid) != 0) { *step = "setresuid"; return -errno; }
    }
    return on_every_thread(PHASE_CAPABILITIES, keep, step);
}
