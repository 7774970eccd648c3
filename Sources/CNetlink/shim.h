#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
// rtnetlink: link messages (RTM_*LINK, struct ifinfomsg) and their attributes (IFLA_*).
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
