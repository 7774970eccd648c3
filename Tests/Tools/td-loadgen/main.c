/*
 * td-loadgen: many tunneldigger clients from one process, to load a broker.
 *
 * Why it exists: the l2tp-broker profile has to hold 10 000 community-router
 * tunnels on a 2-core VM, and nobody can start 10 000 real clients (each wants
 * its own kernel L2TP tunnel). This program plays only the control plane of the
 * C client (docs/tunneldigger-protocol.md §2) from one single-threaded epoll
 * loop, so it stays a small fraction of one core while the broker is measured.
 *
 * Per client: its own UDP socket (own ephemeral source port) connect()ed to one
 * of the --broker addresses (round-robin), and the client's state machine:
 *
 *   start -> COOKIE (8 x 'X') -> cookie reply (L = 8) -> PREPARE (cookie, UUID
 *   <prefix><index>, tunnel id index+1, features 1) -> TUNNEL = established
 *
 * COOKIE and PREPARE are re-sent every --retry seconds until answered; an ERROR
 * while waiting counts as a refusal and the client starts over with COOKIE after
 * --retry. Established clients send a KEEPALIVE (u32 counter) every --keepalive
 * seconds, their phases spread evenly over the period; they answer the broker's
 * PMTU probes with PMTUD_ACK(received size), and answer an ERROR from the broker
 * with ERROR 0x10 as the C client does, after which they stay silent.
 *
 * Phases: establish (until every client is up, or --timeout), hold (--hold
 * seconds, optionally ending with ERROR 0x11 from every client: --goodbye),
 * await shutdown (--await-shutdown seconds, until every client got an ERROR from
 * the broker; measured from the mtime of the --mark file the benchmark touches
 * just before it sends SIGTERM to the broker).
 *
 * Output: stdout gets one key=value line per figure at the end (stable names
 * for scripts); stderr gets "td-loadgen: event=NAME t=S wall=EPOCH" lines at
 * phase changes so a script can follow the run, plus warnings.
 *
 * Linux only (epoll, signalfd). No allocation per message; timers in a heap.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "proto.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define MAX_BROKERS 64
#define SPARE_FDS 32            /* stdio, epoll, signalfd, and some room */
#define RX_BUF 2048             /* like both reference programs */
#define RX_PER_WAKEUP 64        /* datagrams per socket before others get a turn */
#define EVENTS 1024
#define LIMIT_SENDS 10          /* like the C client: 1 send + 9 re-sends */
#define GOODBYE_LINGER_NS (2 * NS)
#define MARK_POLL_NS (5 * MS)
#define LOG_LIMIT 5

#define NS 1000000000ull
#define MS 1000000ull

enum state {
    ST_IDLE,         /* not started yet */
    ST_COOKIE,       /* COOKIE sent, waiting for the reply */
    ST_PREPARE,      /* PREPARE sent, waiting for TUNNEL */
    ST_REFUSED,      /* got ERROR while waiting; starts over after --retry */
    ST_ESTABLISHED,  /* TUNNEL received; keepalives running */
    ST_CLOSED,       /* the broker sent ERROR while established */
    ST_DONE,         /* finished by us: cookie-only probe answered, or goodbye sent */
};

enum phase { PH_ESTABLISH, PH_HOLD, PH_GOODBYE, PH_AWAIT, PH_END };

struct endpoint {
    struct sockaddr_storage addr;
    socklen_t len;
};

struct client {
    int fd;
    uint8_t state;
    uint8_t limit_sends;   /* LIMIT transmissions so far; 0xFF once acknowledged */
    uint16_t broker;
    uint8_t cookie[8];
    uint32_t ka_counter;
    uint32_t broker_tid;   /* tunnel id from TUNNEL */
    uint64_t start_ns;     /* first COOKIE of this client */
    uint64_t est_ns;       /* TUNNEL (or cookie reply with --cookie-only); 0 = not yet */
};

static struct {
    /* options */
    uint32_t clients;
    struct endpoint brokers[MAX_BROKERS];
    unsigned nbrokers;
    double rate;  /* 0 = burst */
    uint64_t retry_ns, keepalive_ns, hold_ns, await_ns, timeout_ns;
    const char *uuid_prefix;
    uint32_t fixed_tid;  /* 0 = index + 1 */
    uint64_t tick_ns;    /* at most one loop pass per tick */
    bool legacy, goodbye, cookie_only, progress;
    uint32_t limit_kbps;
    const char *mark;
} opt = {
    .clients = 1,
    .retry_ns = 3 * NS,
    .keepalive_ns = 5 * NS,
    .uuid_prefix = "loadgen-",
    .tick_ns = 1 * MS,
};

static struct {
    /* figures */
    uint64_t established, cookies, retries_cookie, retries_prepare, refused;
    uint64_t dup_tunnels, features_agreed, keepalives_sent, broker_keepalives;
    uint64_t pmtud_probes, pmtu_ntfy, limit_sent, rel_acks;
    uint64_t errors, errors_by_reason[257]; /* [256] = ERROR without reason byte */
    uint64_t lost, shutdown_errors, closed, goodbye_sent, goodbye_answers;
    uint64_t invalid, unknown, send_errors, recv_errors;
    uint16_t pmtu_value;
    uint64_t first_est_ns, last_est_ns;
    uint64_t first_shutdown_ns, last_shutdown_ns;   /* monotonic */
    struct timespec first_shutdown_wall, last_shutdown_wall;
    bool timed_out, interrupted;
} st;

static struct client *clients;
static struct heap timers;
static int epfd, sigfd;
static uint64_t t0;                 /* the start instant, monotonic */
static enum phase phase = PH_ESTABLISH;
static uint64_t phase_end_ns;       /* end of hold / goodbye linger / await */
static uint64_t run_deadline_ns;
static uint64_t next_progress_ns;
static uint64_t mark_poll_ns;       /* 0 = not polling */
static bool mark_seen;
static struct timespec mark_mtime;
static uint64_t mark_seen_ns;
static uint64_t await_start_ns;
static double cpu_at_established;   /* own CPU seconds when all were up */
static double cpu_at_hold_done;
static uint64_t established_at_ns, hold_done_ns;
static unsigned log_send, log_recv;

/* ---------------------------------------------------------------- logging */

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("td-loadgen: ", fmt, ap);
    va_end(ap);
}

static bool log_allowed(unsigned *counter)
{
    if (*counter >= LOG_LIMIT)
        return false;
    if (++*counter == LOG_LIMIT)
        logmsg("(further messages of the next kind are suppressed)");
    return true;
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("td-loadgen: error: ", fmt, ap);
    va_end(ap);
    exit(EXIT_FAILED);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: td-loadgen --broker ADDR:PORT [--broker ADDR:PORT ...] [options]\n"
            "  --clients N           tunneldigger clients, one UDP socket each (default 1)\n"
            "  --burst               start all clients at the same instant (default)\n"
            "  --rate R              start R clients per second instead\n"
            "  --retry S             COOKIE/PREPARE re-send and refusal back-off, s (default 3)\n"
            "  --keepalive S         KEEPALIVE period once established, s (default 5)\n"
            "  --uuid-prefix STR     UUID = STR + client index (default \"loadgen-\")\n"
            "  --tunnel-id N         client tunnel id for all clients (default index + 1)\n"
            "  --legacy              PREPARE without tunnel id and features\n"
            "  --limit KBPS          send LIMIT (reliable, seq 0) after establishment\n"
            "  --hold S              keep the clients established S seconds, then exit\n"
            "  --goodbye             after --hold, send ERROR 0x11 from every client\n"
            "  --await-shutdown S    after --hold, wait up to S s until every client got\n"
            "                        an ERROR from the broker (the broker is being stopped)\n"
            "  --mark FILE           shutdown time counts from FILE's mtime (touch it right\n"
            "                        before stopping the broker)\n"
            "  --cookie-only         stop each client at the COOKIE reply (a liveness probe\n"
            "                        that creates no tunnel)\n"
            "  --timeout S           bound on the whole run (default: start-up + 60 + hold + await)\n"
            "  --tick MS             at most one loop pass per MS milliseconds, so 10 000\n"
            "                        clients cost ~1000 wake-ups/s, not one per message\n"
            "                        (default 1; 0 = react to every datagram at once)\n"
            "  --progress            a status line on stderr every second\n"
            "Brokers are numeric: 127.0.0.1:8942 or [::1]:8942; clients are spread over them\n"
            "round-robin. Figures go to stdout as key=value lines; exit status 0 iff every\n"
            "client was established, none lost before the shutdown phase, and (with\n"
            "--await-shutdown) every one got its ERROR.\n");
}

static void bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_args(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("td-loadgen: ", fmt, ap);
    va_end(ap);
    usage(stderr);
    exit(EXIT_USAGE);
}

/* ------------------------------------------------------------------- time */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static double since_start(uint64_t t) { return t >= t0 ? (double)(t - t0) / 1e9 : 0.0; }

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double own_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void event(const char *name, uint64_t now)
{
    fprintf(stderr, "td-loadgen: event=%s t=%.3f wall=%.6f\n", name, since_start(now), wall_now());
    fflush(stderr);
}

/* ---------------------------------------------------------------- options */

static bool parse_seconds(const char *s, uint64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 86400))
        return false;
    *ns = (uint64_t)(v * 1e9 + 0.5);
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

/* "A.B.C.D:PORT" or "[V6]:PORT", numeric only: the benchmark never resolves names. */
static bool parse_endpoint(const char *s, struct endpoint *ep)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *hs = s, *colon;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        hs = s + 1;
        hlen = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return false;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';

    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port == 0 || port > 65535)
        return false;

    memset(ep, 0, sizeof *ep);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;
    if (s[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        ep->len = sizeof *in4;
        return true;
    }
    if (s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        ep->len = sizeof *in6;
        return true;
    }
    return false;
}

static const char *format_endpoint(const struct endpoint *ep, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (ep->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ep->addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ep->addr;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
    }
    return buf;
}

static void parse_args(int argc, char **argv)
{
    enum {
        O_BROKER = 256, O_CLIENTS, O_BURST, O_RATE, O_RETRY, O_KEEPALIVE, O_UUID, O_TID,
        O_LEGACY, O_LIMIT, O_HOLD, O_GOODBYE, O_AWAIT, O_MARK, O_COOKIE_ONLY, O_TIMEOUT,
        O_PROGRESS, O_TICK, O_HELP,
    };
    static const struct option longopts[] = {
        {"broker", required_argument, 0, O_BROKER},
        {"clients", required_argument, 0, O_CLIENTS},
        {"burst", no_argument, 0, O_BURST},
        {"rate", required_argument, 0, O_RATE},
        {"retry", required_argument, 0, O_RETRY},
        {"keepalive", required_argument, 0, O_KEEPALIVE},
        {"uuid-prefix", required_argument, 0, O_UUID},
        {"tunnel-id", required_argument, 0, O_TID},
        {"legacy", no_argument, 0, O_LEGACY},
        {"limit", required_argument, 0, O_LIMIT},
        {"hold", required_argument, 0, O_HOLD},
        {"goodbye", no_argument, 0, O_GOODBYE},
        {"await-shutdown", required_argument, 0, O_AWAIT},
        {"mark", required_argument, 0, O_MARK},
        {"cookie-only", no_argument, 0, O_COOKIE_ONLY},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"progress", no_argument, 0, O_PROGRESS},
        {"tick", required_argument, 0, O_TICK},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    bool await_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_BROKER:
            if (opt.nbrokers == MAX_BROKERS)
                bad_args("at most %d --broker", MAX_BROKERS);
            if (!parse_endpoint(optarg, &opt.brokers[opt.nbrokers]))
                bad_args("bad --broker '%s' (want A.B.C.D:PORT or [V6]:PORT)", optarg);
            opt.nbrokers++;
            break;
        case O_CLIENTS:
            if (!parse_u32(optarg, &opt.clients) || opt.clients == 0 || opt.clients > 1000000)
                bad_args("bad --clients '%s'", optarg);
            break;
        case O_BURST:
            opt.rate = 0;
            break;
        case O_RATE: {
            char *end;
            opt.rate = strtod(optarg, &end);
            if (end == optarg || *end || !(opt.rate > 0 && opt.rate <= 1e7))
                bad_args("bad --rate '%s'", optarg);
            break;
        }
        case O_RETRY:
            if (!parse_seconds(optarg, &opt.retry_ns) || opt.retry_ns < MS)
                bad_args("bad --retry '%s'", optarg);
            break;
        case O_KEEPALIVE:
            if (!parse_seconds(optarg, &opt.keepalive_ns) || opt.keepalive_ns < MS)
                bad_args("bad --keepalive '%s'", optarg);
            break;
        case O_UUID:
            opt.uuid_prefix = optarg;
            break;
        case O_TID:
            if (!parse_u32(optarg, &opt.fixed_tid) || opt.fixed_tid == 0)
                bad_args("bad --tunnel-id '%s'", optarg);
            break;
        case O_LEGACY:
            opt.legacy = true;
            break;
        case O_LIMIT:
            if (!parse_u32(optarg, &opt.limit_kbps) || opt.limit_kbps == 0)
                bad_args("bad --limit '%s'", optarg);
            break;
        case O_HOLD:
            if (!parse_seconds(optarg, &opt.hold_ns))
                bad_args("bad --hold '%s'", optarg);
            break;
        case O_GOODBYE:
            opt.goodbye = true;
            break;
        case O_AWAIT:
            if (!parse_seconds(optarg, &opt.await_ns))
                bad_args("bad --await-shutdown '%s'", optarg);
            await_given = true;
            break;
        case O_MARK:
            opt.mark = optarg;
            break;
        case O_COOKIE_ONLY:
            opt.cookie_only = true;
            break;
        case O_TIMEOUT:
            if (!parse_seconds(optarg, &opt.timeout_ns) || opt.timeout_ns == 0)
                bad_args("bad --timeout '%s'", optarg);
            break;
        case O_PROGRESS:
            opt.progress = true;
            break;
        case O_TICK: {
            uint64_t ns;
            if (!parse_seconds(optarg, &ns) || ns > 1000 * NS)
                bad_args("bad --tick '%s'", optarg);
            opt.tick_ns = ns / 1000;  /* parsed as seconds, meant as milliseconds */
            break;
        }
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc)
        bad_args("unexpected argument '%s'", argv[optind]);
    if (opt.nbrokers == 0)
        bad_args("at least one --broker is needed");
    if (!await_given)
        opt.await_ns = 0;
    if (await_given && opt.goodbye)
        bad_args("--goodbye and --await-shutdown exclude each other");
    if (opt.mark && !await_given)
        bad_args("--mark only makes sense with --await-shutdown");
    if (opt.cookie_only && (opt.hold_ns || opt.goodbye || await_given || opt.limit_kbps))
        bad_args("--cookie-only takes no --hold, --goodbye, --await-shutdown or --limit");
    /* worst case of the UUID: prefix + the largest index */
    char probe[32];
    size_t uuid_max = strlen(opt.uuid_prefix) + (size_t)snprintf(probe, sizeof probe, "%u", opt.clients - 1);
    if (uuid_max > TD_MAX_UUID)
        bad_args("--uuid-prefix too long: UUIDs must stay within %d bytes", TD_MAX_UUID);
    if (opt.timeout_ns == 0) {
        double startup = opt.rate > 0 ? opt.clients / opt.rate : 0;
        opt.timeout_ns = (uint64_t)(startup * 1e9) + 60 * NS + opt.hold_ns + opt.await_ns;
    }
}

/* ---------------------------------------------------------------- sockets */

static void raise_fd_limit(uint32_t count)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fatal("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    rlim_t want = (rlim_t)count + SPARE_FDS;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            fatal("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max, strerror(errno));
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        fatal("%u clients need about %llu file descriptors, but RLIMIT_NOFILE's hard limit is %llu; "
              "raise it (ulimit -Hn as root) or use at most %llu clients",
              count, (unsigned long long)want, (unsigned long long)rl.rlim_cur,
              (unsigned long long)(rl.rlim_cur > SPARE_FDS ? rl.rlim_cur - SPARE_FDS : 0));
}

/* One connected UDP socket per client: own source port, like the C client. */
static void open_client_socket(uint32_t i)
{
    struct client *c = &clients[i];
    const struct endpoint *b = &opt.brokers[c->broker];
    int fd = socket(b->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fatal("socket() for client %u: %s", i, strerror(errno));
    /* as the C client: DF set, no fragmentation, kernel PMTU cache ignored */
    int probe = b->addr.ss_family == AF_INET6 ? IPV6_PMTUDISC_PROBE : IP_PMTUDISC_PROBE;
    if (b->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe, sizeof probe);
    else
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof probe);
    if (connect(fd, (const struct sockaddr *)&b->addr, b->len) < 0) {
        char ep[INET6_ADDRSTRLEN + 10];
        fatal("connect() for client %u to %s: %s%s", i, format_endpoint(b, ep, sizeof ep), strerror(errno),
              errno == EADDRNOTAVAIL || errno == EAGAIN ? " (out of ephemeral ports? see net.ipv4.ip_local_port_range)" : "");
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        fatal("epoll_ctl(ADD): %s", strerror(errno));
    c->fd = fd;
}

static void send_msg(struct client *c, const uint8_t *buf, size_t len)
{
    if (send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
        return;
    st.send_errors++;
    if (log_allowed(&log_send))
        logmsg("send from client %td: %s", c - clients, strerror(errno));
}

/* --------------------------------------------------------------- messages */

static uint32_t index_of(const struct client *c) { return (uint32_t)(c - clients); }

static void send_cookie_request(struct client *c)
{
    uint8_t buf[TD_BUF];
    send_msg(c, buf, td_cookie_request(buf));
}

static void send_prepare(struct client *c)
{
    uint8_t buf[TD_BUF];
    char uuid[TD_MAX_UUID + 1];
    uint32_t i = index_of(c);
    int n = snprintf(uuid, sizeof uuid, "%s%u", opt.uuid_prefix, i);
    uint32_t tid = opt.fixed_tid ? opt.fixed_tid : i + 1;
    send_msg(c, buf, td_prepare(buf, c->cookie, uuid, (size_t)n, tid, opt.legacy));
}

static void send_limit(struct client *c)
{
    uint8_t buf[TD_BUF];
    send_msg(c, buf, td_limit(buf, 0, opt.limit_kbps));
    c->limit_sends++;
    st.limit_sent++;
}

/*
 * Keepalive slots: client i fires at t0 + i*P/N + k*P. A fixed grid keeps the
 * phases evenly spread whatever the order and timing of establishment was, so
 * 10 000 clients never send in the same millisecond.
 */
static uint64_t next_keepalive(uint32_t i, uint64_t now)
{
    uint64_t p = opt.keepalive_ns;
    uint64_t base = t0 + (uint64_t)((double)p * i / opt.clients);
    if (now < base)
        return base;
    uint64_t k = (now - base) / p + 1;
    return base + k * p;
}

static void restart(struct client *c, uint64_t now)
{
    c->state = ST_COOKIE;
    send_cookie_request(c);
    heap_set(&timers, index_of(c), now + opt.retry_ns);
}

static void established(struct client *c, uint64_t now, const uint8_t *p, uint8_t len)
{
    c->state = ST_ESTABLISHED;
    c->broker_tid = td_get32(p);
    c->est_ns = now;
    if (len >= 8 && (td_get32(p + 4) & TD_FEATURE_UNIQUE_SESSION_ID))
        st.features_agreed++;
    if (st.established++ == 0)
        st.first_est_ns = now;
    st.last_est_ns = now;
    if (opt.limit_kbps)
        send_limit(c);
    heap_set(&timers, index_of(c), next_keepalive(index_of(c), now));
}

static void on_error(struct client *c, uint64_t now, const uint8_t *p, uint8_t len)
{
    st.errors++;
    st.errors_by_reason[len >= 1 ? p[0] : 256]++;
    switch (c->state) {
    case ST_COOKIE:
    case ST_PREPARE:
        /* refused: start over after --retry, like a client re-selecting its only broker */
        st.refused++;
        c->state = ST_REFUSED;
        heap_set(&timers, index_of(c), now + opt.retry_ns);
        break;
    case ST_ESTABLISHED: {
        /* as the C client: answer "other side requested", then the tunnel is gone */
        uint8_t buf[TD_BUF];
        send_msg(c, buf, td_error(buf, TD_ERROR_CLIENT_OTHER_SIDE));
        c->state = ST_CLOSED;
        heap_remove(&timers, index_of(c));
        st.closed++;
        if (phase == PH_AWAIT) {
            struct timespec wall;
            clock_gettime(CLOCK_REALTIME, &wall);
            if (st.shutdown_errors++ == 0) {
                st.first_shutdown_ns = now;
                st.first_shutdown_wall = wall;
            }
            st.last_shutdown_ns = now;
            st.last_shutdown_wall = wall;
        } else {
            st.lost++;
        }
        break;
    }
    case ST_DONE:
        if (opt.goodbye)
            st.goodbye_answers++;
        break;
    default:
        break;
    }
}

static void handle(struct client *c, const uint8_t *buf, size_t captured, size_t size, uint64_t now)
{
    const uint8_t *p;
    uint8_t len;
    uint8_t type = td_parse(buf, captured, &p, &len);
    if (type == 0) {
        st.invalid++;
        return;
    }
    switch (type) {
    case TD_COOKIE:
        if (c->state != ST_COOKIE || len != 8)
            break;  /* a late reply to a re-sent COOKIE */
        memcpy(c->cookie, p, 8);
        if (opt.cookie_only) {
            c->state = ST_DONE;
            c->est_ns = now;
            if (st.cookies++ == 0)
                st.first_est_ns = now;
            st.last_est_ns = now;
            heap_remove(&timers, index_of(c));
            break;
        }
        c->state = ST_PREPARE;
        send_prepare(c);
        heap_set(&timers, index_of(c), now + opt.retry_ns);
        break;
    case TD_TUNNEL:
        if (len < 4)
            break;
        if (c->state == ST_PREPARE)
            established(c, now, p, len);
        else if (c->state == ST_ESTABLISHED)
            st.dup_tunnels++;  /* answer to a re-sent PREPARE */
        break;
    case TD_ERROR:
        on_error(c, now, p, len);
        break;
    case TD_KEEPALIVE:
        st.broker_keepalives++;
        break;
    case TD_PMTUD:
        if (c->state == ST_ESTABLISHED) {
            uint8_t out[TD_BUF];
            st.pmtud_probes++;
            send_msg(c, out, td_pmtud_ack(out, (uint16_t)(size > 0xFFFF ? 0xFFFF : size)));
        }
        break;
    case TD_PMTU_NTFY:
        if (len == 2) {
            st.pmtu_ntfy++;
            st.pmtu_value = td_get16(p);
        }
        break;
    case TD_REL_ACK:
        if (len == 2) {
            st.rel_acks++;
            if (td_get16(p) == 0 && c->limit_sends)
                c->limit_sends = 0xFF;
        }
        break;
    case TD_PMTUD_ACK:
    case TD_USAGE:
        break;  /* we never probe nor ask for usage */
    default:
        st.unknown++;
        break;
    }
}

static void receive(struct client *c, uint64_t now)
{
    uint8_t buf[RX_BUF];
    for (int k = 0; k < RX_PER_WAKEUP; k++) {
        /* MSG_TRUNC: the true size even for a probe larger than the buffer */
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            /* ECONNREFUSED: ICMP port unreachable for an earlier send; the error is consumed */
            st.recv_errors++;
            if (log_allowed(&log_recv))
                logmsg("recv on client %u: %s", index_of(c), strerror(errno));
            if (errno == ECONNREFUSED)
                continue;
            return;
        }
        size_t size = (size_t)n;
        handle(c, buf, size < sizeof buf ? size : sizeof buf, size, now);
    }
}

/* What a client does when its timer fires. */
static void expire(uint32_t i, uint64_t now)
{
    struct client *c = &clients[i];
    switch (c->state) {
    case ST_IDLE:
        c->start_ns = now;
        restart(c, now);
        break;
    case ST_COOKIE:
        st.retries_cookie++;
        send_cookie_request(c);
        heap_set(&timers, i, now + opt.retry_ns);
        break;
    case ST_PREPARE:
        st.retries_prepare++;
        send_prepare(c);
        heap_set(&timers, i, now + opt.retry_ns);
        break;
    case ST_REFUSED:
        restart(c, now);
        break;
    case ST_ESTABLISHED: {
        uint8_t buf[TD_BUF];
        send_msg(c, buf, td_keepalive(buf, c->ka_counter++));
        st.keepalives_sent++;
        /* an unacknowledged LIMIT rides along with the keepalives, at most 10 sends in all */
        if (c->limit_sends && c->limit_sends < LIMIT_SENDS)
            send_limit(c);
        heap_set(&timers, i, next_keepalive(i, now));
        break;
    }
    default:
        heap_remove(&timers, i);
        break;
    }
}

/* ------------------------------------------------------------------ phases */

static uint64_t done_count(void) { return opt.cookie_only ? st.cookies : st.established; }

static void enter_await(uint64_t now)
{
    phase = PH_AWAIT;
    await_start_ns = now;
    phase_end_ns = now + opt.await_ns;
    if (opt.mark)
        mark_poll_ns = now;
    event("awaiting_shutdown", now);
}

static void end_hold(uint64_t now)
{
    cpu_at_hold_done = own_cpu_seconds();
    hold_done_ns = now;
    event("hold_done", now);
    if (opt.goodbye) {
        uint8_t buf[TD_BUF];
        size_t len = td_error(buf, TD_ERROR_CLIENT_SHUTDOWN);
        for (uint32_t i = 0; i < opt.clients; i++) {
            struct client *c = &clients[i];
            if (c->state != ST_ESTABLISHED)
                continue;
            send_msg(c, buf, len);
            c->state = ST_DONE;
            heap_remove(&timers, i);
            st.goodbye_sent++;
        }
        phase = PH_GOODBYE;
        phase_end_ns = now + GOODBYE_LINGER_NS;
    } else if (opt.await_ns) {
        enter_await(now);
    } else {
        phase = PH_END;
    }
}

static void poll_mark(uint64_t now)
{
    struct stat sb;
    if (stat(opt.mark, &sb) == 0) {
        mark_seen = true;
        mark_seen_ns = now;
        mark_mtime = sb.st_mtim;
        mark_poll_ns = 0;
        event("mark_seen", now);
    } else {
        mark_poll_ns = now + MARK_POLL_NS;
    }
}

static void advance_phase(uint64_t now)
{
    if (phase == PH_ESTABLISH && done_count() == opt.clients) {
        cpu_at_established = own_cpu_seconds();
        established_at_ns = now;
        event("all_established", now);
        phase = PH_HOLD;
        phase_end_ns = now + opt.hold_ns;
    }
    if (phase == PH_HOLD && now >= phase_end_ns)
        end_hold(now);
    if (phase == PH_GOODBYE && (st.goodbye_answers >= st.goodbye_sent || now >= phase_end_ns))
        phase = PH_END;
    if (phase == PH_AWAIT) {
        if (mark_poll_ns && now >= mark_poll_ns)
            poll_mark(now);
        if (st.closed >= st.established) {
            event("shutdown_complete", now);
            phase = PH_END;
        } else if (now >= phase_end_ns) {
            event("await_timeout", now);
            phase = PH_END;
        }
    }
    if (phase != PH_END && now >= run_deadline_ns) {
        st.timed_out = true;
        event("timeout", now);
        phase = PH_END;
    }
    if (opt.progress && now >= next_progress_ns) {
        logmsg("t=%.1f established=%" PRIu64 " cookies=%" PRIu64 " retries=%" PRIu64 " refused=%" PRIu64
               " broker_keepalives=%" PRIu64 " closed=%" PRIu64,
               since_start(now), st.established, st.cookies, st.retries_cookie + st.retries_prepare,
               st.refused, st.broker_keepalives, st.closed);
        next_progress_ns = now + NS;
    }
}

static uint64_t next_wakeup(void)
{
    uint64_t at = run_deadline_ns, t;
    uint32_t id;
    if (heap_top(&timers, &t, &id) && t < at)
        at = t;
    if ((phase == PH_HOLD || phase == PH_GOODBYE || phase == PH_AWAIT) && phase_end_ns < at)
        at = phase_end_ns;
    if (mark_poll_ns && mark_poll_ns < at)
        at = mark_poll_ns;
    if (opt.progress && next_progress_ns < at)
        at = next_progress_ns;
    return at;
}

static void wait_events(struct epoll_event *evs, int *n, uint64_t now)
{
    uint64_t at = next_wakeup();
    uint64_t wait = at > now ? at - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / NS), .tv_nsec = (long)(wait % NS)};
    static bool no_pwait2;
    if (!no_pwait2) {
        *n = epoll_pwait2(epfd, evs, EVENTS, &ts, NULL);
        if (*n >= 0 || errno != ENOSYS)
            return;
        no_pwait2 = true;
    }
    /* older kernels: millisecond timeouts, rounded up so timers are never early */
    *n = epoll_wait(epfd, evs, EVENTS, (int)((wait + MS - 1) / MS));
}

/* ------------------------------------------------------------------ report */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    /* nearest rank: the smallest value with at least p of the samples at or below it */
    size_t rank = (size_t)(p * (double)n);
    if ((double)rank < p * (double)n)
        rank++;
    if (rank < 1)
        rank = 1;
    return (double)v[rank - 1] / 1e9;
}

static double timespec_diff(struct timespec a, struct timespec b)
{
    return (double)(a.tv_sec - b.tv_sec) + (double)(a.tv_nsec - b.tv_nsec) / 1e9;
}

static void report(uint64_t end_ns, double setup_seconds)
{
    char ep[INET6_ADDRSTRLEN + 10];
    uint64_t done = done_count();
    uint64_t *lat = malloc((done ? done : 1) * sizeof *lat);
    uint32_t *tids = malloc((st.established ? st.established : 1) * sizeof *tids);
    size_t n = 0, ntid = 0;
    uint64_t by1 = 0, by5 = 0, by15 = 0;
    for (uint32_t i = 0; i < opt.clients && lat && tids; i++) {
        const struct client *c = &clients[i];
        if (!c->est_ns)
            continue;
        uint64_t l = c->est_ns - c->start_ns;
        lat[n++] = l;
        by1 += l <= 1 * NS;
        by5 += l <= 5 * NS;
        by15 += l <= 15 * NS;
        if (!opt.cookie_only)
            tids[ntid++] = c->broker_tid;
    }
    qsort(lat, n, sizeof *lat, cmp_u64);
    /* duplicate broker tunnel ids: only meaningful against a single broker process */
    uint64_t dup_ids = 0;
    if (ntid > 1) {
        uint64_t *wide = malloc(ntid * sizeof *wide);
        if (wide) {
            for (size_t a = 0; a < ntid; a++)
                wide[a] = tids[a];
            qsort(wide, ntid, sizeof *wide, cmp_u64);
            for (size_t a = 1; a < ntid; a++)
                dup_ids += wide[a] == wide[a - 1];
            free(wide);
        }
    }

    printf("clients=%u\n", opt.clients);
    printf("brokers=");
    for (unsigned b = 0; b < opt.nbrokers; b++)
        printf("%s%s", b ? "," : "", format_endpoint(&opt.brokers[b], ep, sizeof ep));
    printf("\n");
    if (opt.rate > 0)
        printf("start=rate:%g\n", opt.rate);
    else
        printf("start=burst\n");
    printf("setup_seconds=%.3f\n", setup_seconds);
    if (opt.cookie_only)
        printf("cookies=%" PRIu64 "\n", st.cookies);
    printf("established=%" PRIu64 "\n", st.established);
    printf("time_to_first=%.3f\n", done ? since_start(st.first_est_ns) : -1.0);
    printf("time_to_all=%.3f\n", done == opt.clients ? since_start(st.last_est_ns) : -1.0);
    printf("time_to_last=%.3f\n", done ? since_start(st.last_est_ns) : -1.0);
    printf("latency_p50=%.4f\n", percentile(lat, n, 0.50));
    printf("latency_p99=%.4f\n", percentile(lat, n, 0.99));
    printf("latency_max=%.4f\n", n ? (double)lat[n - 1] / 1e9 : -1.0);
    printf("established_by_1s=%" PRIu64 "\n", by1);
    printf("established_by_5s=%" PRIu64 "\n", by5);
    printf("established_by_15s=%" PRIu64 "\n", by15);
    printf("retries=%" PRIu64 "\n", st.retries_cookie + st.retries_prepare);
    printf("retries_cookie=%" PRIu64 "\n", st.retries_cookie);
    printf("retries_prepare=%" PRIu64 "\n", st.retries_prepare);
    printf("refused=%" PRIu64 "\n", st.refused);
    printf("dup_tunnels=%" PRIu64 "\n", st.dup_tunnels);
    printf("features_agreed=%" PRIu64 "\n", st.features_agreed);
    printf("duplicate_tunnel_ids=%" PRIu64 "\n", dup_ids);
    printf("keepalives_sent=%" PRIu64 "\n", st.keepalives_sent);
    printf("broker_keepalives=%" PRIu64 "\n", st.broker_keepalives);
    printf("pmtud_probes=%" PRIu64 "\n", st.pmtud_probes);
    printf("pmtu_ntfy=%" PRIu64 "\n", st.pmtu_ntfy);
    printf("pmtu_value=%u\n", st.pmtu_value);
    printf("limit_sent=%" PRIu64 "\n", st.limit_sent);
    printf("rel_acks=%" PRIu64 "\n", st.rel_acks);
    printf("errors=%" PRIu64 "\n", st.errors);
    printf("errors_by_reason=");
    bool first = true;
    for (int r = 0; r <= 256; r++) {
        if (!st.errors_by_reason[r])
            continue;
        if (r == 256)
            printf("%snone:%" PRIu64, first ? "" : ",", st.errors_by_reason[r]);
        else
            printf("%s0x%02x:%" PRIu64, first ? "" : ",", r, st.errors_by_reason[r]);
        first = false;
    }
    printf("\n");
    printf("lost=%" PRIu64 "\n", st.lost);
    if (opt.goodbye) {
        printf("goodbye_sent=%" PRIu64 "\n", st.goodbye_sent);
        printf("goodbye_answers=%" PRIu64 "\n", st.goodbye_answers);
    }
    if (opt.await_ns) {
        printf("shutdown_errors=%" PRIu64 "\n", st.shutdown_errors);
        printf("shutdown_mark=%s\n", opt.mark ? (mark_seen ? "seen" : "missing") : "none");
        /* from the mark's mtime if there is one, else from the start of the await phase */
        double first_s = -1, last_s = -1;
        if (st.shutdown_errors && opt.mark && mark_seen) {
            first_s = timespec_diff(st.first_shutdown_wall, mark_mtime);
            last_s = timespec_diff(st.last_shutdown_wall, mark_mtime);
        } else if (st.shutdown_errors && !opt.mark) {
            first_s = (double)(st.first_shutdown_ns - await_start_ns) / 1e9;
            last_s = (double)(st.last_shutdown_ns - await_start_ns) / 1e9;
        }
        printf("shutdown_first=%.3f\n", first_s);
        printf("shutdown_seconds=%.3f\n", last_s);
    }
    printf("invalid=%" PRIu64 "\n", st.invalid);
    printf("unknown=%" PRIu64 "\n", st.unknown);
    printf("send_errors=%" PRIu64 "\n", st.send_errors);
    printf("recv_errors=%" PRIu64 "\n", st.recv_errors);
    double elapsed = since_start(end_ns);
    double cpu = own_cpu_seconds();
    printf("elapsed=%.3f\n", elapsed);
    printf("loadgen_cpu_seconds=%.3f\n", cpu);
    printf("loadgen_cpu_establish_seconds=%.3f\n", done == opt.clients ? cpu_at_established : cpu);
    /* the loadgen's own share of a core while it holds the tunnels */
    double hold_s = hold_done_ns > established_at_ns && established_at_ns ? (double)(hold_done_ns - established_at_ns) / 1e9 : 0;
    printf("loadgen_cpu_hold_percent=%.1f\n", hold_s > 0 ? 100 * (cpu_at_hold_done - cpu_at_established) / hold_s : -1.0);
    printf("timed_out=%d\n", st.timed_out);
    printf("interrupted=%d\n", st.interrupted);
    fflush(stdout);
    free(lat);
    free(tids);
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    raise_fd_limit(opt.clients);

    clients = calloc(opt.clients, sizeof *clients);
    if (!clients || !heap_init(&timers, opt.clients))
        fatal("out of memory for %u clients", opt.clients);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        fatal("epoll_create1: %s", strerror(errno));

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        fatal("signalfd: %s", strerror(errno));
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &sev) < 0)
        fatal("epoll_ctl(ADD signalfd): %s", strerror(errno));

    /* all sockets before the clock starts: socket creation is not the broker's time */
    uint64_t setup_start = now_ns();
    for (uint32_t i = 0; i < opt.clients; i++) {
        clients[i].broker = (uint16_t)(i % opt.nbrokers);
        open_client_socket(i);
    }
    t0 = now_ns();
    double setup_seconds = (double)(t0 - setup_start) / 1e9;
    for (uint32_t i = 0; i < opt.clients; i++) {
        uint64_t at = opt.rate > 0 ? t0 + (uint64_t)((double)i * 1e9 / opt.rate) : t0;
        heap_set(&timers, i, at);
    }
    run_deadline_ns = t0 + opt.timeout_ns;
    next_progress_ns = t0 + NS;
    event("start", t0);

    static struct epoll_event evs[EVENTS];
    uint64_t now = t0, last_pass = 0;
    while (phase != PH_END) {
        int n;
        /*
         * Wake-ups, not messages, dominate the cost once 10 000 clients are
         * up (4 000 datagrams/s, each a separate wake-up otherwise). Passes
         * closer than a tick wait for the rest of it; whatever arrived and
         * whatever fell due meanwhile is handled in one pass.
         */
        if (opt.tick_ns && last_pass) {
            uint64_t t = now_ns();
            if (t < last_pass + opt.tick_ns) {
                uint64_t until = last_pass + opt.tick_ns;
                struct timespec ts = {.tv_sec = (time_t)(until / NS), .tv_nsec = (long)(until % NS)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
        }
        wait_events(evs, &n, now_ns());
        if (n < 0 && errno != EINTR)
            fatal("epoll_wait: %s", strerror(errno));
        now = last_pass = now_ns();
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            if (i == UINT32_MAX) {
                struct signalfd_siginfo si;
                while (read(sigfd, &si, sizeof si) == sizeof si)
                    ;
                st.interrupted = true;
                event("interrupted", now);
                phase = PH_END;
                continue;
            }
            receive(&clients[i], now);
        }
        /* timers due by now; each handler re-arms into the future, so this ends */
        uint64_t at;
        uint32_t id;
        while (heap_top(&timers, &at, &id) && at <= now)
            expire(id, now);
        if (phase != PH_END)
            advance_phase(now);
    }

    report(now, setup_seconds);
    bool ok = done_count() == opt.clients && st.lost == 0 && !st.interrupted && !st.timed_out;
    if (opt.await_ns)
        ok = ok && st.shutdown_errors == st.established;
    return ok ? 0 : EXIT_FAILED;
}
