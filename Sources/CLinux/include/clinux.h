// Small wrappers for Linux calls Swift cannot make directly: variadic ioctl/fcntl
// and the unions inside struct ifreq. Every function returns >= 0 on success
// and -errno on failure, so callers never read a stale errno.
#ifndef TUNNELD_CLINUX_H
#define TUNNELD_CLINUX_H

#include <stdint.h>
#include <stddef.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>

/// Same layout as glibc's `struct mmsghdr`, which needs _GNU_SOURCE and so is not
/// visible to Swift. The C side checks the layouts match.
struct tl_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int tl_recvmmsg(int fd, struct tl_mmsghdr *messages, unsigned int count, int flags);
int tl_sendmmsg(int fd, struct tl_mmsghdr *messages, unsigned int count, int flags);

/// Open /dev/net/tun and attach to (or create) interface `name`.
/// `tap` selects layer 2; `vnet_hdr` asks for virtio_net_hdr framing (offloads).
/// On success the kernel's chosen name is written to `out_name` (IFNAMSIZ bytes).
int tl_tun_open(const char *name, int tap, int vnet_hdr, char *out_name);
/// TUNSETOFFLOAD with TUN_F_* flags.
int tl_tun_set_offload(int fd, unsigned int flags);

int tl_if_set_mtu(const char *name, int mtu);
int tl_if_set_up(const char *name, int up);
/// Assign an IPv4 address and prefix length (address in network byte order).
int tl_if_set_ipv4(const char *name, uint32_t address_be, int prefix);
/// Add an IPv6 address (16 bytes, network order) with prefix length.
int tl_if_add_ipv6(const char *name, const uint8_t *address16, int prefix);

/// SO_BINDTODEVICE.
int tl_bind_to_device(int fd, const char *name);

/// pidfd_open(2) (Linux 5.3): a descriptor that becomes readable when the process
/// `pid` ends, so an event loop can reap children without polling or SIGCHLD.
int tl_pidfd_open(int pid, unsigned int flags);

/// Constants Swift does not import from the kernel headers.
extern const unsigned int tl_TUN_F_CSUM;
extern const unsigned int tl_TUN_F_TSO4;
extern const unsigned int tl_TUN_F_TSO6;
extern const int tl_UDP_SEGMENT;
extern const int tl_UDP_GRO;
extern const int tl_SOL_UDP;
extern const int tl_IFNAMSIZ;

#endif
