/*
** emul.c: the impairment of one direction of a netem.link, as pure
** arithmetic on times (no I/O, no Lua): what happens to a packet, and
** when it is due on the other side. The stages, in the order a packet
** meets them: loss; the bottleneck (a FIFO queue in front of a link of
** `rate` bytes per second, tail drop beyond `queue` packets or
** `queue_bytes`); duplication; the delay line (delay, plus uniform jitter
** that never lets a packet overtake the one before it, as delay that
** comes from queueing does not); reordering (a packet held back
** `reorder_gap` seconds, so that the next ones overtake it). Every packet
** takes exactly four draws from the direction's own generator, whatever
** the conditions: a seed gives the same choices for the same traffic.
*/
#include <stdlib.h>
#include <string.h>
#include "link.h"

#define DEP_HARD_MAX (1u << 20)   /* queue = 0 ("any") still stops here */

/* ---- the generator: xoshiro256**, its state from splitmix64 ---- */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next64(uint64_t *s) {
  uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* uniform in [0, 1), 53 bits */
static double draw(wl_dir_t *d) {
  return (double)(next64(d->rng) >> 11) * (1.0 / 9007199254740992.0);
}

void wl_dir_seed(wl_dir_t *d, uint64_t seed) {
  int i;
  for (i = 0; i < 4; i++) d->rng[i] = splitmix(&seed);
}

void wl_dir_init(wl_dir_t *d) {
  memset(d, 0, sizeof *d);
  d->p.reorder_gap = 0.01;
  d->p.queue = 1000;
  wl_dir_seed(d, 1);
}

void wl_dir_free(wl_dir_t *d) {
  free(d->dep);
  free(d->deplen);
  d->dep = NULL;
  d->deplen = NULL;
  d->dep_cap = d->dep_n = 0;
}

/* ---- the bottleneck queue: who is still being serialized at now ---- */

static void dep_expire(wl_dir_t *d, uint64_t now) {
  while (d->dep_n > 0 && d->dep[d->dep_head] <= now) {
    d->dep_bytes -= d->deplen[d->dep_head];
    d->dep_head = (d->dep_head + 1) % d->dep_cap;
    d->dep_n--;
  }
}

static int dep_push(wl_dir_t *d, uint64_t at, uint32_t len) {
  if (d->dep_n == d->dep_cap) {
    uint32_t ncap = d->dep_cap ? d->dep_cap * 2 : 256, i;
    uint64_t *nd = malloc(ncap * sizeof *nd);
    uint32_t *nl = malloc(ncap * sizeof *nl);
    if (nd == NULL || nl == NULL) { free(nd); free(nl); return -1; }
    for (i = 0; i < d->dep_n; i++) {
      nd[i] = d->dep[(d->dep_head + i) % d->dep_cap];
      nl[i] = d->deplen[(d->dep_head + i) % d->dep_cap];
    }
    free(d->dep);
    free(d->deplen);
    d->dep = nd;
    d->deplen = nl;
    d->dep_head = 0;
    d->dep_cap = ncap;
  }
  d->dep[(d->dep_head + d->dep_n) % d->dep_cap] = at;
  d->deplen[(d->dep_head + d->dep_n) % d->dep_cap] = len;
  d->dep_n++;
  d->dep_bytes += len;
  if (d->dep_n > d->st.queue_max) d->st.queue_max = d->dep_n;
  return 0;
}

static int queue_full(const wl_dir_t *d, uint32_t len) {
  if (d->dep_n >= DEP_HARD_MAX) return 1;
  if (d->p.queue > 0 && d->dep_n >= d->p.queue) return 1;
  return d->p.queue_bytes > 0 && d->dep_bytes + len > d->p.queue_bytes;
}

/* Through the bottleneck: when the last bit of the packet has left. */
static int serialize(wl_dir_t *d, uint64_t now, uint32_t len, uint64_t *out) {
  uint64_t start = d->free_at > now ? d->free_at : now;
  if (d->p.rate <= 0) { *out = now; return 0; }
  d->free_at = start + (uint64_t)((double)len * 1e9 / d->p.rate);
  *out = d->free_at;
  return d->free_at > now ? dep_push(d, d->free_at, len) : 0;
}

/* Through the delay line; u is this packet's jitter draw. */
static uint64_t delayed(wl_dir_t *d, uint64_t left, double u) {
  double s = d->p.delay + d->p.jitter * (2 * u - 1);
  uint64_t due = left + (s > 0 ? (uint64_t)(s * 1e9) : 0);
  if (due < d->last_due) due = d->last_due;
  d->last_due = due;
  return due;
}

int wl_dir_judge(wl_dir_t *d, uint64_t now, uint32_t len, wl_verdict_t *v) {
  double u_loss = draw(d), u_dup = draw(d), u_jit = draw(d), u_ord = draw(d);
  uint64_t left;
  d->seq++;
  d->st.packets++;
  d->st.bytes += len;
  v->due = v->due2 = 0;
  if (u_loss < d->p.loss) {
    d->st.dropped++;
    v->action = WL_DROP;
    return 0;
  }
  if (d->p.rate > 0) {
    dep_expire(d, now);
    if (queue_full(d, len)) {
      d->st.overflow++;
      v->action = WL_OVERFLOW;
      return 0;
    }
  }
  v->action = WL_PASS;
  if (serialize(d, now, len, &left) < 0) return -1;
  v->due = delayed(d, left, u_jit);
  if (u_dup < d->p.duplicate) {
    uint64_t left2;
    v->action = WL_DUPLICATE;
    d->st.duplicated++;
    if (d->p.rate > 0 && queue_full(d, len)) {
      v->due2 = 0;                 /* the copy found the queue full */
    } else {
      if (serialize(d, now, len, &left2) < 0) return -1;
      v->due2 = delayed(d, left2, u_jit);
    }
  }
  if (u_ord < d->p.reorder) {
    /* held back off the FIFO line: the packets after it go first */
    v->due += (uint64_t)(d->p.reorder_gap * 1e9);
    if (v->action == WL_PASS) v->action = WL_REORDER;
    d->st.reordered++;
  }
  if (v->due > now) d->st.delayed++;
  return 0;
}
