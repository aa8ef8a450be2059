/*
** tun.c: the TUN device at each end of a netem.link. It is made by a
** helper thread inside the side's network namespace (wl_netns_run), so it
** belongs there and goes away with its fd; as a layer-3 device without packet
** info (IFF_TUN | IFF_NO_PI: a read is one IP packet), then given its
** addresses and brought up with the old ioctls, so that no `ip` binary is
** needed. IPv6 is quietened first: no link-local address, no router
** solicitations, no duplicate address detection, so the only packets on
** the link are the ones the programs send (a seeded loss pattern must not
** depend on when the kernel chatters).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <lauxlib.h>
#include "wl.h"
#include "process.h"
#include "link.h"

/* struct in6_ifreq of <linux/ipv6.h>, which clashes with glibc's headers */
struct tun_in6_ifreq {
  struct in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

/* A sysctl of the device, in the namespace the thread is in now; a
** machine without IPv6 has none, which is not an error here. */
static void dev_sysctl(const char *dev, const char *key, const char *value) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/%s", dev, key);
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, value, strlen(value)) < 0) { /* best effort: see above */ }
  close(fd);
}

static int set_v4(int ctl, const char *dev, const wl_tun_conf_t *c,
                  const char **step) {
  struct ifreq ifr;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, dev, strnlen(dev, IFNAMSIZ - 1));
  ifr.ifr_mtu = c->mtu;
  *step = "setting the MTU of the TUN device";
  if (ioctl(ctl, SIOCSIFMTU, &ifr) < 0) return -errno;
  memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr);
  sin->sin_family = AF_INET;
  *step = "the IPv4 address of the TUN device";
  if (inet_pton(AF_INET, c->addr, &sin->sin_addr) != 1) return -EINVAL;
  if (ioctl(ctl, SIOCSIFADDR, &ifr) < 0) return -errno;
  sin->sin_addr.s_addr = c->prefix4 == 0 ? 0
    : htonl(0xffffffffu << (32 - c->prefix4));
  if (ioctl(ctl, SIOCSIFNETMASK, &ifr) < 0) return -errno;
  *step = "bringing the TUN device up";
  if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0) return -errno;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0) return -errno;
  return 0;
}

static int set_v6(const char *dev, const wl_tun_conf_t *c, const char **step) {
  struct ifreq ifr;
  struct tun_in6_ifreq r6;
  int ctl, rc = 0;
  *step = "the IPv6 address of the TUN device";
  ctl = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) return -errno;
  memset(&ifr, 0, sizeof ifr);
  memset(&r6, 0, sizeof r6);
  memcpy(ifr.ifr_name, dev, strnlen(dev, IFNAMSIZ - 1));
  if (ioctl(ctl, SIOCGIFINDEX, &ifr) < 0) rc = -errno;
  r6.ifindex = ifr.ifr_ifindex;
  r6.prefixlen = (uint32_t)c->prefix6;
  if (rc == 0 && inet_pton(AF_INET6, c->addr6, &r6.addr) != 1) rc = -EINVAL;
  if (rc == 0 && ioctl(ctl, SIOCSIFADDR, &r6) < 0) rc = -errno;
  close(ctl);
  return rc;
}

/* A new IPv6 address is tentative until the kernel's address work has
** run (even with no duplicate detection to do): bind() to it fails with
** EADDRNOTAVAIL meanwhile. Wait for it, in 1 ms steps, for at most 2 s. */
static int v6_usable(const wl_tun_conf_t *c) {
  struct sockaddr_in6 sa;
  int i, fd, rc = -EADDRNOTAVAIL;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  if (inet_pton(AF_INET6, c->addr6, &sa.sin6_addr) != 1) return -EINVAL;
  for (i = 0; i < 2000 && rc == -EADDRNOTAVAIL; i++) {
    fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
    close(fd);
    if (rc == -EADDRNOTAVAIL) usleep(1000);
  }
  return rc;
}

/* Inside the namespace: the device, its settings, its addresses. */
static int make_here(const wl_tun_conf_t *c, int *fdp, const char **step) {
  struct ifreq ifr;
  int fd, ctl, rc;
  *step = "opening /dev/net/tun";
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, c->name, IFNAMSIZ - 1);
  *step = "creating the TUN device (TUNSETIFF)";
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { rc = -errno; close(fd); return rc; }
  dev_sysctl(ifr.ifr_name, "addr_gen_mode", "1");
  dev_sysctl(ifr.ifr_name, "router_solicitations", "0");
  dev_sysctl(ifr.ifr_name, "accept_ra", "0");
  dev_sysctl(ifr.ifr_name, "accept_dad", "0");
  dev_sysctl(ifr.ifr_name, "dad_transmits", "0");
  *step = "a control socket in the namespace";
  ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) { rc = -errno; close(fd); return rc; }
  rc = set_v4(ctl, ifr.ifr_name, c, step);
  close(ctl);
  if (rc == 0 && c->addr6 != NULL) rc = set_v6(ifr.ifr_name, c, step);
  if (rc == 0 && c->addr6 != NULL) {
    *step = "waiting for the IPv6 address of the TUN device";
    rc = v6_usable(c);
  }
  if (rc < 0) { close(fd); return rc; }
  *fdp = fd;
  return 0;
}

typedef struct {
  const wl_tun_conf_t *c;
  int fd;
  const char *step;
} tun_job_t;

static int tun_job(void *arg) {
  tun_job_t *j = arg;
  return make_here(j->c, &j->fd, &j->step);
}

int wl_tun_open(int nsfd, const wl_tun_conf_t *c, int *fdp, const char **step) {
  tun_job_t j;
  int rc;
  j.c = c;
  j.fd = -1;
  j.step = "entering the link's network namespace (setns)";
  rc = wl_netns_run(nsfd, tun_job, &j);
  *step = j.step;
  *fdp = j.fd;
  return rc;
}

/* _tun(ns, {name=, mtu=, addr=, prefix=, addr6=, prefix6=}) -> fd: the
** raw fd, which _new takes over. Raises {op="link", detail=what failed}. */
static int tun_open(lua_State *L) {
  int nsfd = wl_netns_fd(L, 1, "link");
  wl_tun_conf_t c;
  const char *step = NULL;
  int fd = -1, rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "name");
  c.name = luaL_optstring(L, -1, "wirelab0");
  lua_getfield(L, 2, "mtu");
  c.mtu = (int)luaL_optinteger(L, -1, 1500);
  lua_getfield(L, 2, "addr");
  c.addr = luaL_checkstring(L, -1);
  lua_getfield(L, 2, "prefix");
  c.prefix4 = (int)luaL_optinteger(L, -1, 24);
  lua_getfield(L, 2, "addr6");
  c.addr6 = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 2, "prefix6");
  c.prefix6 = (int)luaL_optinteger(L, -1, 64);
  luaL_argcheck(L, c.prefix4 >= 0 && c.prefix4 <= 32, 2, "prefix: 0 to 32");
  luaL_argcheck(L, c.prefix6 >= 0 && c.prefix6 <= 128, 2, "prefix6: 0 to 128");
  luaL_argcheck(L, c.mtu >= 1280 && c.mtu <= 65535, 2, "mtu: 1280 to 65535");
  rc = wl_tun_open(nsfd, &c, &fd, &step);
  if (rc < 0) {
    wl_push_error(L, "link", rc, NULL);
    lua_pushstring(L, step);             /* a literal: no copy needed */
    lua_setfield(L, -2, "step");
    return lua_error(L);
  }
  lua_pushinteger(L, fd);
  return 1;
}

void wl_tun_register(lua_State *L) {
  lua_pushcfunction(L, tun_open);
  lua_setfield(L, -2, "_tun");
}
