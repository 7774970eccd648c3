#define _GNU_SOURCE
#include "clinux.h"

#include <assert.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/if_tun.h>
#include <linux/ipv6.h>
#include <netinet/in.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

const unsigned int tl_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int tl_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int tl_TUN_F_TSO6 = TUN_F_TSO6;
const int tl_UDP_SEGMENT = UDP_SEGMENT;
const int tl_UDP_GRO = UDP_GRO;
const int tl_SOL_UDP = SOL_UDP;
const int tl_IFNAMSIZ = IFNAMSIZ;

static void copy_name(struct ifreq *ifr, const char *name) {
    memset(ifr, 0, sizeof(*ifr));
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
}

int tl_tun_open(const char *name, int tap, int vnet_hdr, char *out_name) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    copy_name(&ifr, name ? name : "");
    ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
    if (vnet_hdr) ifr.ifr_flags |= IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (out_name) {
        memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
        out_name[IFNAMSIZ - 1] = 0;
    }
    return fd;
}

int tl_tun_set_offload(int fd, unsigned int flags) {
    return ioctl(fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static int with_inet_socket(int family, unsigned long request, struct ifreq *ifr) {
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int rc = ioctl(s, request, ifr) < 0 ? -errno : 0;
    close(s);
    return rc;
}

int tl_if_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    copy_name(&ifr, name);
    ifr.ifr_mtu = mtu;
    return with_inet_socket(AF_INET, SIOCSIFMTU, &ifr);
}

int tl_if_set_up(const char *name, int up) {
    struct ifreq ifr;
    copy_name(&ifr, name);
    int rc = with_inet_socket(AF_INET, SIOCGIFFLAGS, &ifr);
    if (rc < 0) return rc;
    if (up) ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    else ifr.ifr_flags &= ~IFF_UP;
    return with_inet_socket(AF_INET, SIOCSIFFLAGS, &ifr);
}

int tl_if_set_ipv4(const char *name, uint32_t address_be, int prefix) {
    if (prefix < 0 || prefix > 32) return -EINVAL;
    struct ifreq ifr;
    copy_name(&ifr, name);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = address_be;
    int rc = with_inet_socket(AF_INET, SIOCSIFADDR, &ifr);
    if (rc < 0) return rc;
    copy_name(&ifr, name);
    sin = (struct sockaddr_in *)&ifr.ifr_netmask;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
    return with_inet_socket(AF_INET, SIOCSIFNETMASK, &ifr);
}

int tl_if_add_ipv6(const char *name, const uint8_t *address16, int prefix) {
    if (prefix < 0 || prefix > 128) return -EINVAL;
    unsigned int index = if_nametoindex(name);
    if (index == 0) return -errno;
    struct in6_ifreq req;
    memset(&req, 0, sizeof(req));
    memcpy(&req.ifr6_addr, address16, 16);
    req.ifr6_prefixlen = (uint32_t)prefix;
    req.ifr6_ifindex = (int)index;
    int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int rc = ioctl(s, SIOCSIFADDR, &req) < 0 ? -errno : 0;
    close(s);
    return rc;
}

int tl_bind_to_device(int fd, const char *name) {
    return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name)) < 0 ? -errno : 0;
}

static_assert(sizeof(struct tl_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
static_assert(offsetof(struct tl_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int tl_recvmmsg(int fd, struct tl_mmsghdr *messages, unsigned int count, int flags) {
    int n = recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
    return n < 0 ? -errno : n;
}

int tl_sendmmsg(int fd, struct tl_mmsghdr *messages, unsigned int count, int flags) {
    int n = sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
    return n < 0 ? -errno : n;
}

// glibc has a pidfd_open wrapper only from 2.36; the system call is the same everywhere.
int tl_pidfd_open(int pid, unsigned int flags) {
    long fd = syscall(SYS_pidfd_open, pid, flags);
    return fd < 0 ? -errno : (int)fd;
}
