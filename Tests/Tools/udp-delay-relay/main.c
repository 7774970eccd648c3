/*
 * udp-delay-relay: a userspace one-way delay emulator for UDP tunnel tests.
 *
 * Why it exists: the test kernel has no netem qdisc, so latency cannot be
 * added with `tc`. This relay sits between a tunnel client and its server,
 * behaves like a tiny NAT, and holds every datagram for a fixed time per
 * direction before passing it on:
 *
 *   client C -> listen socket  --(delay)-->         per-client upstream -> forward
 *   client C <- listen socket  <--(reverse delay)-- per-client upstream <- forward
 *
 * Test hooks (signals):
 *   SIGUSR1          NAT rebinding: every client gets a new upstream source port.
 *   SIGUSR2          toggle blackhole: drop everything, both directions.
 *   SIGTERM/SIGINT   print counters to stderr and exit 0.
 * Signals of one kind sent in quick succession may merge into one, so wait
 * for the matching stderr log line before sending the next.
 *
 * Prints "relay ready listen=... forward=... delay=N/Mms" on stdout once the
 * listen socket is bound, so tests can wait for it.
 *
 * Linux only (epoll, timerfd, signalfd, recvmmsg/sendmmsg).
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define SLOT_SIZE 2048                /* largest datagram we relay */
#define DEFAULT_QUEUE_LEN 65536u      /* datagrams per direction */
#define BATCH 64                      /* recvmmsg/sendmmsg batch size */
#define MAX_ROUNDS_PER_WAKEUP 64      /* batches per socket before yielding */
#define DEFAULT_SOCKBUF_MB 4
#define SEND_RETRY_NS 100000ull       /* back-off when the kernel says EAGAIN */
#define LOG_LIMIT 5                   /* repeated errors logged this many times */

/* from <linux/sock_diag.h>, spelled out to need nothing beyond libc */
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#define MEMINFO_DROPS 8   /* SK_MEMINFO_DROPS */
#define MEMINFO_VARS 9    /* SK_MEMINFO_VARS */

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* epoll tags: high 32 bits say what kind of fd, low 32 bits a client index. */
#define TAG_LISTEN (1ull << 32)
#define TAG_TIMER (2ull << 32)
#define TAG_SIGNAL (3ull << 32)
#define TAG_UPSTREAM (4ull << 32)

struct endpoint {
    struct sockaddr_storage addr;
    socklen_t len;
};

struct client {
    bool used;
    struct endpoint addr;   /* client's address as seen on the listen socket */
    int fd;                 /* upstream socket, i.e. this client's NAT port */
    uint32_t gen;           /* changes when the slot is given to a new client */
    uint64_t last_used_ns;  /* for LRU eviction */
};

/* Metadata of one queued datagram; its bytes live in slots[slot]. */
struct entry {
    uint64_t release_ns;
    uint32_t gen;
    uint32_t slot;
    uint16_t len;
    uint16_t client;
};

/*
 * FIFO of delayed datagrams for one direction. The delay is constant per
 * direction, so arrival order equals release order and a ring of entries
 * suffices. The 2 KB data slots are handed out from a LIFO free stack rather
 * than in ring order: the same few slots are reused over and over, so only
 * as much memory is ever touched as the peak queue depth needs. (Cycling
 * through all slots page-faults in the whole area once, which is slow in a VM.)
 */
struct queue {
    const char *name;
    unsigned char *slots;
    struct entry *meta;
    uint32_t *free_slots;  /* stack of unused slot numbers */
    uint32_t cap, head, count;
    uint64_t delay_ns;
    uint64_t blocked_until_ns;  /* send back-off after EAGAIN/ENOBUFS */
};

struct counters {
    uint64_t up, down;
    uint64_t drop_full, drop_oversize, drop_blackhole, drop_send, drop_stale,
        drop_nat, drop_overflow, foreign;
    uint64_t late_max_ns, late_over_1ms;  /* how late datagrams left vs. due */
};

struct relay {
    int epfd, timerfd, sigfd, listen_fd;
    struct endpoint listen_addr, forward_addr, upstream_bind;
    struct client clients[MAX_CLIENTS];
    uint32_t next_gen;
    struct queue up, down;  /* up: client->server, down: server->client */
    bool blackhole, running;
    uint64_t armed_ns;      /* deadline the timerfd is armed for, 0 = none */
    struct counters n;
    unsigned log_oversize, log_send, log_recv, log_nat;

    /* receive scratch space, reused for every batch */
    unsigned char rxbuf[BATCH][SLOT_SIZE];
    struct sockaddr_storage rxname[BATCH];
    struct iovec rxiov[BATCH];
    struct mmsghdr rxmsg[BATCH];
};

/* ---------------------------------------------------------------- logging */

/* One stderr line with the program's prefix; the callers differ only in what follows. */
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
    vlog("udp-delay-relay: ", fmt, ap);
    va_end(ap);
}

/* Log a recurring runtime problem only the first few times. */
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
    vlog("udp-delay-relay: error: ", fmt, ap);
    va_end(ap);
    exit(EXIT_RUNTIME);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: udp-delay-relay --listen ADDR:PORT --forward ADDR:PORT\n"
            "                       [--delay-ms N] [--reverse-delay-ms N]\n"
            "                       [--upstream-bind ADDR] [--queue-len N] [--sockbuf-mb N]\n"
            "  --delay-ms          delay client->server (listen->forward), default 0\n"
            "  --reverse-delay-ms  delay server->client, default = --delay-ms\n"
            "  --upstream-bind     local address for the per-client upstream sockets\n"
            "  --queue-len         datagrams buffered per direction, default %u\n"
            "  --sockbuf-mb        socket send/receive buffer size, default %d MB\n"
            "IPv6 addresses are written as [addr]:port. Signals: SIGUSR1 = NAT\n"
            "rebinding, SIGUSR2 = toggle blackhole, SIGTERM/SIGINT = stop.\n",
            DEFAULT_QUEUE_LEN, DEFAULT_SOCKBUF_MB);
}

static void bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_args(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("udp-delay-relay: ", fmt, ap);
    va_end(ap);
    usage(stderr);
    exit(EXIT_USAGE);
}

/* -------------------------------------------------------------- addresses */

/* Parse a bare numeric IPv4/IPv6 address (brackets optional for IPv6). */
static bool parse_host(const char *host, uint16_t port, struct endpoint *ep)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);

    memset(ep, 0, sizeof *ep);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= sizeof buf)
            return false;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }

    struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        ep->len = sizeof *in4;
        return true;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        ep->len = sizeof *in6;
        return true;
    }
    return false;
}

/* Parse "A.B.C.D:PORT" or "[V6]:PORT". */
static bool parse_endpoint(const char *s, struct endpoint *ep)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        /* a bare IPv6 address would make the port ambiguous */
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return false;
    }
    size_t hlen = (size_t)(colon - s);
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port > 65535)
        return false;
    return parse_host(host, (uint16_t)port, ep);
}

static uint16_t endpoint_port(const struct endpoint *ep)
{
    if (ep->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ep->addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ep->addr)->sin_port);
}

/* Format as "A.B.C.D:PORT" or "[V6]:PORT". */
static const char *format_endpoint(const struct endpoint *ep, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (ep->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ep->addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, endpoint_port(ep));
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ep->addr;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, endpoint_port(ep));
    }
    return buf;
}

static bool endpoint_equal(const struct endpoint *a, const struct sockaddr_storage *b)
{
    if (a->addr.ss_family != b->ss_family)
        return false;
    if (b->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

/* ------------------------------------------------------------------- time */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Accepts fractional milliseconds ("0.5") since sub-ms delays are cheap. */
static bool parse_delay_ms(const char *s, double *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* the range check also rejects NaN and infinity */
    if (errno || end == s || *end || !(v >= 0 && v <= 3600e3))
        return false;
    *ms = v;
    return true;
}

/* ---------------------------------------------------------------- sockets */

/*
 * Large buffers absorb bursts while we are busy elsewhere. The *FORCE
 * variants bypass net.core.{r,w}mem_max but need CAP_NET_ADMIN; without it
 * we fall back to the capped variant rather than refusing to run.
 */
static int sockbuf_bytes = DEFAULT_SOCKBUF_MB << 20;

static void set_sockbufs(int fd)
{
    static bool warned;
    int size = sockbuf_bytes;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0) {
        if (!warned) {
            logmsg("warning: SO_RCVBUFFORCE/SO_SNDBUFFORCE failed (%s); "
                   "using capped SO_RCVBUF/SO_SNDBUF", strerror(errno));
            warned = true;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
}

/* Non-blocking UDP socket bound to `local`; returns -1 with errno set. */
static int open_udp(const struct endpoint *local)
{
    int fd = socket(local->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_sockbufs(fd);
    if (bind(fd, (const struct sockaddr *)&local->addr, local->len) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static bool local_endpoint(int fd, struct endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->len = sizeof ep->addr;
    return getsockname(fd, (struct sockaddr *)&ep->addr, &ep->len) == 0;
}

static uint16_t local_port(int fd)
{
    struct endpoint ep;
    return local_endpoint(fd, &ep) ? endpoint_port(&ep) : 0;
}

/*
 * Datagrams the kernel dropped because this socket's receive buffer was full.
 * The relay never sees those, so ask the kernel (Linux >= 4.12), else 0.
 */
static uint64_t socket_drops(int fd)
{
    uint32_t mem[MEMINFO_VARS] = {0};
    socklen_t len = sizeof mem;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        len < (MEMINFO_DROPS + 1) * sizeof mem[0])
        return 0;
    return mem[MEMINFO_DROPS];
}

/* Close an upstream socket, keeping its overflow count for the summary. */
static void close_upstream(struct relay *r, int fd)
{
    r->n.drop_overflow += socket_drops(fd);
    close(fd);  /* also removes it from the epoll set */
}

static void epoll_watch(struct relay *r, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        fatal("epoll_ctl(ADD) failed: %s", strerror(errno));
}

/* ---------------------------------------------------------------- clients */

/* New upstream socket for client `i` = a fresh NAT source port. */
static int open_upstream(struct relay *r, int i)
{
    int fd = open_udp(&r->upstream_bind);
    if (fd >= 0)
        epoll_watch(r, fd, TAG_UPSTREAM | (uint64_t)i);
    return fd;
}

static int find_client(struct relay *r, const struct sockaddr_storage *addr)
{
    static int last;  /* nearly always the same client as last time */
    if (r->clients[last].used && endpoint_equal(&r->clients[last].addr, addr))
        return last;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (r->clients[i].used && endpoint_equal(&r->clients[i].addr, addr))
            return last = i;
    }
    return -1;
}

/* A free slot, or else the least recently used one (which gets evicted). */
static int pick_slot(struct relay *r)
{
    int lru = 0;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (!r->clients[i].used)
            return i;
        if (r->clients[i].last_used_ns < r->clients[lru].last_used_ns)
            lru = i;
    }
    char a[80];
    logmsg("client table full, evicting idle client %s",
           format_endpoint(&r->clients[lru].addr, a, sizeof a));
    close_upstream(r, r->clients[lru].fd);
    r->clients[lru].used = false;
    return lru;
}

/* Find the NAT mapping for a client address, creating it if needed. */
static int lookup_or_add_client(struct relay *r, const struct sockaddr_storage *addr,
                                socklen_t len, uint64_t now)
{
    int i = find_client(r, addr);
    if (i >= 0) {
        r->clients[i].last_used_ns = now;
        return i;
    }

    i = pick_slot(r);
    struct client *c = &r->clients[i];
    c->fd = open_upstream(r, i);
    if (c->fd < 0) {
        if (log_allowed(&r->log_nat))
            logmsg("cannot open upstream socket for new client: %s", strerror(errno));
        return -1;
    }
    memcpy(&c->addr.addr, addr, len);
    c->addr.len = len;
    c->used = true;
    c->gen = ++r->next_gen;  /* queued datagrams of an evicted client go stale */
    c->last_used_ns = now;

    char a[80];
    logmsg("new client %s -> upstream port %u", format_endpoint(&c->addr, a, sizeof a),
           local_port(c->fd));
    return i;
}

/*
 * SIGUSR1: emulate a NAT that forgets its mappings. The new socket is opened
 * before the old one is closed so the kernel cannot hand out the same port.
 */
static void rebind_all(struct relay *r)
{
    int count = 0;
    for (int i = 0; i < MAX_CLIENTS; i++)
        count += r->clients[i].used;
    logmsg("SIGUSR1: NAT rebinding %d client(s)", count);

    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &r->clients[i];
        if (!c->used)
            continue;
        char a[80];
        int fd = open_upstream(r, i);
        if (fd < 0) {
            logmsg("rebind of %s failed, keeping old port: %s",
                   format_endpoint(&c->addr, a, sizeof a), strerror(errno));
            continue;
        }
        uint16_t old_port = local_port(c->fd);
        close_upstream(r, c->fd);
        c->fd = fd;
        logmsg("rebound client %s: upstream port %u -> %u",
               format_endpoint(&c->addr, a, sizeof a), old_port, local_port(fd));
    }
}

/* ----------------------------------------------------------------- queues */

static void queue_init(struct queue *q, const char *name, uint32_t cap, uint64_t delay_ns)
{
    /* MAP_NORESERVE + LIFO slot reuse: memory is only touched up to peak depth */
    size_t bytes = (size_t)cap * SLOT_SIZE;
    q->slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    q->meta = calloc(cap, sizeof *q->meta);
    q->free_slots = calloc(cap, sizeof *q->free_slots);
    if (q->slots == MAP_FAILED || !q->meta || !q->free_slots)
        fatal("cannot allocate %zu MB for the %s queue", bytes >> 20, name);
    for (uint32_t i = 0; i < cap; i++)
        q->free_slots[i] = cap - 1 - i;  /* slot 0 on top */
    q->name = name;
    q->cap = cap;
    q->head = q->count = 0;
    q->delay_ns = delay_ns;
    q->blocked_until_ns = 0;
}

static uint32_t queue_index(const struct queue *q, uint32_t offset)
{
    return (uint32_t)(((uint64_t)q->head + offset) % q->cap);
}

static bool queue_push(struct queue *q, const void *data, size_t len, int client,
                       uint32_t gen, uint64_t release_ns)
{
    if (q->count == q->cap)
        return false;
    /* free stack depth is cap - count, so it is non-empty here */
    uint32_t slot = q->free_slots[q->cap - q->count - 1];
    memcpy(q->slots + (size_t)slot * SLOT_SIZE, data, len);
    q->meta[queue_index(q, q->count)] = (struct entry){
        .release_ns = release_ns, .gen = gen, .slot = slot,
        .len = (uint16_t)len, .client = (uint16_t)client};
    q->count++;
    return true;
}

static unsigned char *entry_data(const struct queue *q, const struct entry *e)
{
    return q->slots + (size_t)e->slot * SLOT_SIZE;
}

/* Remove n entries from the head and give their slots back. */
static void queue_pop(struct queue *q, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        q->free_slots[q->cap - q->count] = q->meta[q->head].slot;
        q->head = queue_index(q, 1);
        q->count--;
    }
}

/* ---------------------------------------------------------------- receive */

/* Drain one batch from fd into the scratch buffers. Returns count, 0 if none. */
static int receive_batch(struct relay *r, int fd)
{
    for (int i = 0; i < BATCH; i++) {
        r->rxiov[i] = (struct iovec){.iov_base = r->rxbuf[i], .iov_len = SLOT_SIZE};
        r->rxmsg[i].msg_hdr = (struct msghdr){
            .msg_name = &r->rxname[i], .msg_namelen = sizeof r->rxname[i],
            .msg_iov = &r->rxiov[i], .msg_iovlen = 1};
    }
    for (;;) {
        /* MSG_TRUNC makes msg_len the real size, so oversize drops are visible */
        int n = recvmmsg(fd, r->rxmsg, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && log_allowed(&r->log_recv))
            logmsg("recvmmsg failed: %s", strerror(errno));
        return 0;
    }
}

/* Common per-datagram checks; returns false if datagram i must be dropped. */
static bool acceptable(struct relay *r, int i)
{
    if (r->blackhole) {
        r->n.drop_blackhole++;
        return false;
    }
    if (r->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
        r->n.drop_oversize++;
        if (log_allowed(&r->log_oversize))
            logmsg("dropping %u-byte datagram: larger than the %d-byte slot",
                   r->rxmsg[i].msg_len, SLOT_SIZE);
        return false;
    }
    return true;
}

/* Client -> relay: map the client, queue towards the forward address. */
static void drain_listen(struct relay *r)
{
    for (int round = 0; round < MAX_ROUNDS_PER_WAKEUP; round++) {
        int n = receive_batch(r, r->listen_fd);
        uint64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            if (!acceptable(r, i))
                continue;
            int c = lookup_or_add_client(r, &r->rxname[i], r->rxmsg[i].msg_hdr.msg_namelen, now);
            if (c < 0) {
                r->n.drop_nat++;
                continue;
            }
            if (!queue_push(&r->up, r->rxbuf[i], r->rxmsg[i].msg_len, c,
                            r->clients[c].gen, now + r->up.delay_ns))
                r->n.drop_full++;
        }
        if (n < BATCH)
            return;  /* socket is empty; level-triggered epoll covers the rest */
    }
}

/* Forward address -> relay on client c's upstream socket: queue back to c. */
static void drain_upstream(struct relay *r, int c)
{
    struct client *cl = &r->clients[c];
    for (int round = 0; round < MAX_ROUNDS_PER_WAKEUP && cl->used; round++) {
        int n = receive_batch(r, cl->fd);
        uint64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            /* like a NAT, only accept replies from the address we talk to */
            if (!endpoint_equal(&r->forward_addr, &r->rxname[i])) {
                r->n.foreign++;
                continue;
            }
            if (!acceptable(r, i))
                continue;
            cl->last_used_ns = now;
            if (!queue_push(&r->down, r->rxbuf[i], r->rxmsg[i].msg_len, c, cl->gen,
                            now + r->down.delay_ns))
                r->n.drop_full++;
        }
        if (n < BATCH)
            return;
    }
}

/* ------------------------------------------------------------------- send */

/*
 * Where a queued datagram goes: the socket to send from and the destination.
 * Returns -1 if its client was evicted after it was queued.
 */
static int route(struct relay *r, const struct queue *q, const struct entry *e,
                 const struct endpoint **dest)
{
    const struct client *c = &r->clients[e->client];
    if (!c->used || c->gen != e->gen)
        return -1;
    if (q == &r->up) {
        *dest = &r->forward_addr;
        return c->fd;
    }
    *dest = &c->addr;
    return r->listen_fd;
}

/* Lets tests verify delay accuracy from the exit summary. */
static void record_lateness(struct relay *r, const struct queue *q, const uint32_t *offset_of,
                            unsigned sent, uint64_t now)
{
    for (unsigned k = 0; k < sent; k++) {
        uint64_t late = now - q->meta[queue_index(q, offset_of[k])].release_ns;
        if (late > r->n.late_max_ns)
            r->n.late_max_ns = late;
        if (late > 1000000)
            r->n.late_over_1ms++;
    }
}

static bool transient_send_error(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM;
}

/*
 * Send one batch of due datagrams from the head of q. Consecutive entries that
 * share a socket go out in one sendmmsg(). Returns false when nothing more
 * can be sent right now (nothing due, or the kernel asked us to back off).
 */
static bool flush_batch(struct relay *r, struct queue *q, uint64_t now)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    uint32_t offset_of[BATCH];  /* ring offset of each message in msgs */
    uint32_t span = 0;          /* ring entries examined, including stale ones */
    unsigned n = 0;
    int fd = -1;

    while (span < q->count && n < BATCH) {
        const struct entry *e = &q->meta[queue_index(q, span)];
        if (e->release_ns > now)
            break;
        const struct endpoint *dest;
        int efd = route(r, q, e, &dest);
        if (efd < 0) {
            r->n.drop_stale++;
            span++;
            continue;
        }
        if (fd >= 0 && efd != fd)
            break;  /* different socket: next batch */
        fd = efd;
        iov[n] = (struct iovec){.iov_base = entry_data(q, e), .iov_len = e->len};
        msgs[n].msg_hdr = (struct msghdr){.msg_name = (void *)&dest->addr,
                                          .msg_namelen = dest->len,
                                          .msg_iov = &iov[n], .msg_iovlen = 1};
        offset_of[n++] = span++;
    }
    if (n == 0) {
        queue_pop(q, span);  /* only stale entries (or nothing) were due */
        return span > 0;
    }

    int sent = sendmmsg(fd, msgs, n, 0);
    if (sent > 0) {
        record_lateness(r, q, offset_of, (unsigned)sent, now_ns());
        /* on partial success the next call reports the error, if any */
        queue_pop(q, (unsigned)sent == n ? span : offset_of[sent]);
        if (q == &r->up)
            r->n.up += (unsigned)sent;
        else
            r->n.down += (unsigned)sent;
        return true;
    }
    int err = errno;
    if (err == EINTR)
        return true;
    queue_pop(q, offset_of[0]);  /* stale entries before the failure */
    if (transient_send_error(err)) {
        /* socket buffer full: keep the datagram and retry shortly */
        q->blocked_until_ns = now + SEND_RETRY_NS;
        return false;
    }
    /* permanent for this datagram (e.g. EMSGSIZE, ENETUNREACH): drop it */
    queue_pop(q, 1);
    r->n.drop_send++;
    if (log_allowed(&r->log_send))
        logmsg("sendmmsg (%s) failed, dropping datagram: %s", q->name, strerror(err));
    return true;
}

static void flush_queue(struct relay *r, struct queue *q, uint64_t now)
{
    if (now < q->blocked_until_ns)
        return;
    while (q->count > 0 && flush_batch(r, q, now))
        ;
}

/* ------------------------------------------------------------------ timer */

static uint64_t queue_deadline(const struct queue *q)
{
    if (q->count == 0)
        return 0;
    uint64_t t = q->meta[q->head].release_ns;
    return t > q->blocked_until_ns ? t : q->blocked_until_ns;
}

/*
 * Arm the timerfd (absolute, ns resolution) for the earliest head release.
 * epoll_wait's millisecond timeout would be too coarse for sub-ms accuracy.
 */
static void arm_timer(struct relay *r, uint64_t now)
{
    uint64_t a = queue_deadline(&r->up), b = queue_deadline(&r->down);
    uint64_t deadline = !a ? b : !b ? a : a < b ? a : b;

    /* skip the syscall if already armed for this still-pending deadline */
    if (deadline == r->armed_ns && (deadline == 0 || deadline > now))
        return;
    struct itimerspec its = {0};
    if (deadline) {
        its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
        its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
    }
    if (timerfd_settime(r->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        fatal("timerfd_settime failed: %s", strerror(errno));
    r->armed_ns = deadline;
}

/* ---------------------------------------------------------------- signals */

/* Drop everything in flight so a blackhole cuts the link instantly. */
static void purge_queue(struct relay *r, struct queue *q)
{
    r->n.drop_blackhole += q->count;
    queue_pop(q, q->count);
}

static void handle_signals(struct relay *r)
{
    struct signalfd_siginfo si;
    while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGUSR1:
            rebind_all(r);
            break;
        case SIGUSR2:
            r->blackhole = !r->blackhole;
            if (r->blackhole) {
                purge_queue(r, &r->up);
                purge_queue(r, &r->down);
            }
            logmsg("SIGUSR2: blackhole %s", r->blackhole ? "ON (dropping all datagrams)" : "OFF");
            break;
        default:  /* SIGTERM, SIGINT */
            r->running = false;
            break;
        }
    }
}

/*
 * Signals are handled synchronously via signalfd, so no handler can interrupt
 * a half-updated queue or client table.
 */
static int open_signalfd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        fatal("sigprocmask failed: %s", strerror(errno));
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        fatal("signalfd failed: %s", strerror(errno));
    return fd;
}

/* ------------------------------------------------------------------- main */

struct options {
    const char *listen, *forward, *upstream_bind;
    double delay_ms, reverse_ms;
    bool have_reverse;
    uint32_t queue_len;
};

static void parse_args(int argc, char **argv, struct options *o, struct relay *r)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"forward", required_argument, NULL, 'f'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"reverse-delay-ms", required_argument, NULL, 'r'},
        {"upstream-bind", required_argument, NULL, 'b'},
        {"queue-len", required_argument, NULL, 'q'},
        {"sockbuf-mb", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.queue_len = DEFAULT_QUEUE_LEN};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': o->listen = optarg; break;
        case 'f': o->forward = optarg; break;
        case 'b': o->upstream_bind = optarg; break;
        case 'd':
            if (!parse_delay_ms(optarg, &o->delay_ms))
                bad_args("invalid --delay-ms '%s' (want milliseconds >= 0)", optarg);
            break;
        case 'r':
            if (!parse_delay_ms(optarg, &o->reverse_ms))
                bad_args("invalid --reverse-delay-ms '%s' (want milliseconds >= 0)", optarg);
            o->have_reverse = true;
            break;
        case 'q': {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > (1ul << 20))
                bad_args("invalid --queue-len '%s' (want 1..1048576)", optarg);
            o->queue_len = (uint32_t)v;
            break;
        }
        case 's': {
            /* more than the 4 MB default helps absorb very fast bursts */
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 1024)
                bad_args("invalid --sockbuf-mb '%s' (want 1..1024)", optarg);
            sockbuf_bytes = (int)(v << 20);
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(EXIT_USAGE);  /* getopt already said why */
        }
    }
    if (optind < argc)
        bad_args("unexpected argument '%s'", argv[optind]);
    if (!o->listen || !o->forward)
        bad_args("--listen and --forward are required");
    if (!o->have_reverse)
        o->reverse_ms = o->delay_ms;

    if (!parse_endpoint(o->listen, &r->listen_addr))
        bad_args("invalid --listen '%s' (want A.B.C.D:PORT or [V6]:PORT)", o->listen);
    if (!parse_endpoint(o->forward, &r->forward_addr) || endpoint_port(&r->forward_addr) == 0)
        bad_args("invalid --forward '%s' (want A.B.C.D:PORT or [V6]:PORT, port != 0)",
                 o->forward);
    sa_family_t fam = r->forward_addr.addr.ss_family;
    if (o->upstream_bind) {
        if (!parse_host(o->upstream_bind, 0, &r->upstream_bind))
            bad_args("invalid --upstream-bind '%s' (want a numeric address, no port)",
                     o->upstream_bind);
        if (r->upstream_bind.addr.ss_family != fam)
            bad_args("--upstream-bind '%s' is not the same address family as --forward",
                     o->upstream_bind);
    } else {
        parse_host(fam == AF_INET6 ? "::" : "0.0.0.0", 0, &r->upstream_bind);
    }
}

static uint64_t ms_to_ns(double ms)
{
    return (uint64_t)(ms * 1e6 + 0.5);  /* ms is >= 0, so this rounds */
}

static void setup(struct relay *r, const struct options *o)
{
    /* timer slack would add up to 50 us of jitter to every wakeup */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);

    queue_init(&r->up, "client->server", o->queue_len, ms_to_ns(o->delay_ms));
    queue_init(&r->down, "server->client", o->queue_len, ms_to_ns(o->reverse_ms));

    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0)
        fatal("epoll_create1 failed: %s", strerror(errno));
    r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->timerfd < 0)
        fatal("timerfd_create failed: %s", strerror(errno));
    r->sigfd = open_signalfd();

    char a[80];
    r->listen_fd = open_udp(&r->listen_addr);
    if (r->listen_fd < 0)
        fatal("cannot bind listen socket to %s: %s",
              format_endpoint(&r->listen_addr, a, sizeof a), strerror(errno));
    local_endpoint(r->listen_fd, &r->listen_addr);  /* resolves port 0 */

    /* fail now, not on the first client, if --upstream-bind is unusable */
    int probe = open_udp(&r->upstream_bind);
    if (probe < 0)
        fatal("cannot bind upstream socket to %s: %s",
              format_endpoint(&r->upstream_bind, a, sizeof a), strerror(errno));
    close(probe);

    epoll_watch(r, r->listen_fd, TAG_LISTEN);
    epoll_watch(r, r->timerfd, TAG_TIMER);
    epoll_watch(r, r->sigfd, TAG_SIGNAL);
}

static void dispatch(struct relay *r, const struct epoll_event *ev)
{
    uint64_t tag = ev->data.u64 & 0xffffffff00000000ull;
    if (tag == TAG_LISTEN) {
        drain_listen(r);
    } else if (tag == TAG_UPSTREAM) {
        /* may name a slot rebound/evicted earlier in this batch: harmless */
        drain_upstream(r, (int)(ev->data.u64 & 0xffffffffu));
    } else if (tag == TAG_TIMER) {
        uint64_t expirations;
        if (read(r->timerfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
            fatal("read(timerfd) failed: %s", strerror(errno));
        r->armed_ns = 0;  /* a one-shot timer is disarmed once it fired */
    } else if (tag == TAG_SIGNAL) {
        handle_signals(r);
    }
}

static void run(struct relay *r)
{
    struct epoll_event events[16];
    r->running = true;
    while (r->running) {
        arm_timer(r, now_ns());
        int n = epoll_wait(r->epfd, events, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fatal("epoll_wait failed: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++)
            dispatch(r, &events[i]);
        /* also covers delay 0: datagrams queued above go out right away */
        uint64_t now = now_ns();
        flush_queue(r, &r->up, now);
        flush_queue(r, &r->down, now);
    }
}

static void print_counters(struct relay *r)
{
    struct counters *n = &r->n;
    n->drop_overflow += socket_drops(r->listen_fd);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (r->clients[i].used)
            n->drop_overflow += socket_drops(r->clients[i].fd);
    }
    uint64_t dropped = n->drop_full + n->drop_oversize + n->drop_blackhole +
                       n->drop_send + n->drop_stale + n->drop_nat + n->drop_overflow;
    fprintf(stderr, "forwarded up=%" PRIu64 " down=%" PRIu64 " dropped=%" PRIu64 "\n",
            n->up, n->down, dropped);
    fprintf(stderr,
            "udp-delay-relay: dropped detail: socket_overflow=%" PRIu64 " queue_full=%" PRIu64
            " oversize=%" PRIu64 " blackhole=%" PRIu64 " send_error=%" PRIu64
            " evicted=%" PRIu64 " nat_error=%" PRIu64 "; ignored from unknown sources=%" PRIu64
            "; still queued up=%u down=%u\n",
            n->drop_overflow, n->drop_full, n->drop_oversize, n->drop_blackhole, n->drop_send,
            n->drop_stale, n->drop_nat, n->foreign, r->up.count, r->down.count);
    fprintf(stderr,
            "udp-delay-relay: release lateness: max=%" PRIu64 "us, more than 1 ms late=%" PRIu64
            "\n", n->late_max_ns / 1000, n->late_over_1ms);
}

int main(int argc, char **argv)
{
    /* large (scratch buffers), so not on the stack */
    static struct relay relay;
    struct relay *r = &relay;
    struct options o;

    parse_args(argc, argv, &o, r);
    setup(r, &o);

    char l[80], f[80];
    printf("relay ready listen=%s forward=%s delay=%g/%gms\n",
           format_endpoint(&r->listen_addr, l, sizeof l),
           format_endpoint(&r->forward_addr, f, sizeof f), o.delay_ms, o.reverse_ms);
    fflush(stdout);

    run(r);
    print_counters(r);
    return 0;
}
