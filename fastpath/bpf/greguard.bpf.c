// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * greguard's fast lane: an XDP program on both ports that decides in the kernel what needs no
 * full validation, and hands the rest to the AF_XDP socket of its queue.
 *
 *   - not IP protocol 47: redirected to the other port (DEVMAP) or dropped, as
 *     `[defaults] non_gre` says; it never reaches user space;
 *   - GRE failing the cheap checks of the README's Verdicts and reasons in their order — outer IPv4
 *     header checksum (RFC 791 §3.1), bogon outer source, version (RFC 2784 §2.1 / RFC 2637 §4.1),
 *     the RFC 2784 §2.3 MUST-discard bits, the reserved bits, the RFC 2637 §4.1 version-1 rules —
 *     dropped with that reason when the policy drops it;
 *   - GRE whose outer addresses can match no tunnel (LPM tries of every peer and local prefix):
 *     dropped as `unknown_tunnel`, or (rate-limit) dropped as `rate_limited` while the shared
 *     budget has no room, else passed up for user space to charge the budget.
 *     The checksum and inner-packet checks, which the validator runs before the tunnel match, are
 *     not run for it: a frame that would fail them is counted as unknown_tunnel, not as
 *     bad_checksum or bad_inner. Its verdict is the same, because the kernel decides this only
 *     when invalid_gre is "drop" too;
 *   - everything else: the XSKMAP socket of (port, queue), for the full validator.
 *
 * Every frame meets one of three states of its queue:
 *   - served: a socket of greguard's is in the XSKMAP slot of (port, queue);
 *   - unserved while greguard runs (a worker died, `ethtool -L` raised the channels): the
 *     kernel still decides what it can, and what it would hand up is dropped and counted
 *     (L_UNSERVED). greguard is alive while the deadline in `gg_alive`, which its heartbeat
 *     pushes forward every 100 ms, lies in the future;
 *   - greguard gone (killed, even with kill -9: the heartbeat stops; or a bypass by hand,
 *     `active` = 0): with on_failure = open every frame is redirected to the other port; with
 *     closed only a frame the program positively knows is not GRE passes (non-IP, or IPv4/IPv6
 *     whose protocol is not 47 and cannot lead to it), and everything else is dropped: GRE,
 *     IPv6 extension chains, a short or odd IP header, a third VLAN tag.
 *
 * Frames the kernel decides are counted per CPU with the same (port, verdict, reason) indices
 * as user space. 1 in `sample_every` kernel drops is still handed to user space, with the
 * kernel's verdict and reason, through a BPF ring buffer (`gg_samples`, `struct gg_sample`):
 * pcap files, the drop log and the top-sources view keep seeing the storm, and no frame is
 * counted twice.
 *
 * Anything the program cannot parse with certainty goes to user space, whose validator has the
 * final word: the kernel only ever decides what user space would decide the same way.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Must match fastpath/src/afxdp/lane.rs and reason.rs. */
#define GG_REASONS 19
#define R_NON_GRE 0
#define R_BOGON 3
#define R_BAD_VERSION 5
#define R_BAD_FLAGS 6
#define R_RESERVED_BITS 7
#define R_UNKNOWN_TUNNEL 10
#define R_RATE_LIMITED 16
#define V_FORWARD 0
#define V_DROP 1
#define MAX_QUEUES 256
#define SNAP 256

#define ACT_PASS_UP 0 /* let user space decide */
#define ACT_DROP 1
#define ACT_RATE_LIMIT 2

struct gg_config {
	__u32 outside_ifindex;
	__u32 sample_every;      /* 1 in N kernel drops go up marked (0 = none) */
	__u8 non_gre_forward;    /* 1: redirect, 0: drop */
	__u8 unknown_action;     /* ACT_* */
	__u8 invalid_drop;       /* invalid_gre = "drop" */
	__u8 drop_reserved;      /* reserved_bits = "drop" */
	__u8 drop_bogons;        /* bogons = "drop" */
	__u8 fail_open;          /* on_failure = "open" */
	__u8 active;             /* 0: bypass only (no daemon expected) */
	__u8 pad;
	__u64 rate_interval;     /* the rate-limit budget, in policer ticks (fastpath/src/policer.rs) */
	__u64 rate_tolerance;
};

struct gg_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per port: handed to a socket, bypassed (daemon gone, open), dropped closed, sampled up. */
#define L_TO_USER 0
#define L_BYPASS 1
#define L_CLOSED_DROP 2
#define L_SAMPLED 3
#define L_UNSERVED 4   /* dropped: would go up, but no socket serves the queue while greguard runs */
#define L_NO_TARGET 5  /* dropped: the redirect target (other port or socket) was missing */
#define L_SAMPLE_LOST 6 /* a kernel drop to sample, but the sample ring was full */
#define L_COUNT 7

struct gg_sample {
	__u8 port;
	__u8 verdict;
	__u8 reason;
	__u8 pad;
	__u32 len;     /* on the wire */
	__u64 at_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 caplen;
	__u32 pad2;
	__u8 data[SNAP];
};

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct bucket {
	__u64 skip;   /* kernel drops until the next sample */
};

/* Policer ticks per nanosecond (TICKS_PER_NS of fastpath/src/policer.rs). */
#define TICKS_PER_NS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gg_config);
} gg_config SEC(".maps");

/* greguard's heartbeat: CLOCK_MONOTONIC ns until which the daemon counts as alive. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gg_alive SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 2 * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} gg_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} gg_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * 2 * GG_REASONS);
	__type(key, __u32);
	__type(value, struct gg_counter);
} gg_verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * L_COUNT);
	__type(key, __u32);
	__type(value, struct gg_counter);
} gg_lane SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bucket);
} gg_bucket SEC(".maps");

/* The theoretical arrival time (GCRA) of the rate-limit budget, in policer ticks: the same
 * bucket every worker takes from (user space maps it), which the program only reads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} gg_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} gg_samples SEC(".maps");

#define LPM(name, keytype)                                   \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);         \
		__uint(max_entries, 262144);                 \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__type(key, keytype);                        \
		__type(value, __u8);                         \
	} name SEC(".maps")

LPM(gg_peers4, struct lpm_v4);
LPM(gg_locals4, struct lpm_v4);
LPM(gg_peers6, struct lpm_v6);
LPM(gg_locals6, struct lpm_v6);

static __always_inline void add(void *map, __u32 idx, __u64 len)
{
	struct gg_counter *c = bpf_map_lookup_elem(map, &idx);
	if (c) {
		c->packets += 1;
		c->bytes += len;
	}
}

/* Redirects to the other port; counts the frame as `lane` there, or as L_NO_TARGET when the
 * other port is missing from the DEVMAP (it is dropped: a frame counted as passed was passed). */
static __always_inline int to_peer(struct xdp_md *ctx, void *counters, __u32 idx, __u32 port,
				   __u64 len)
{
	int act = bpf_redirect_map(&gg_ports, ctx->ingress_ifindex, XDP_DROP);
	if (act == XDP_REDIRECT)
		add(counters, idx, len);
	else
		add(&gg_lane, port * L_COUNT + L_NO_TARGET, len);
	return act;
}

/* greguard is gone (or this is a bypass by hand): fail open — every frame to the other port —
 * or closed — only what is positively not GRE to the other port, the rest dropped. */
static __always_inline int unserved(struct xdp_md *ctx, struct gg_config *cfg, __u32 port,
				    int not_gre, __u64 len)
{
	if (cfg->fail_open || not_gre)
		return to_peer(ctx, &gg_lane, port * L_COUNT + L_BYPASS, port, len);
	add(&gg_lane, port * L_COUNT + L_CLOSED_DROP, len);
	return XDP_DROP;
}

/* Whether greguard's heartbeat is current (it has not been gone for more than its grace). */
static __always_inline int daemon_alive(struct gg_config *cfg)
{
	__u32 zero = 0;
	__u64 *deadline = bpf_map_lookup_elem(&gg_alive, &zero);
	return cfg->active && deadline && bpf_ktime_get_ns() < *deadline;
}

struct parsed {
	__u8 decided;   /* the kernel can judge it */
	__u8 reason;
};

static __always_inline int is_vlan(__u16 proto /* network order */)
{
	return proto == bpf_htons(0x8100) || proto == bpf_htons(0x88a8) || proto == bpf_htons(0x9100);
}

static __always_inline int bogon_v4(__u32 src /* host order */)
{
	__u32 top = src >> 24;
	return top == 0 || top == 127 || top >= 224;
}

static __always_inline int bogon_v6(const __u8 *a)
{
	if (a[0] == 0xff)
		return 1;
	for (int i = 0; i < 15; i++)
		if (a[i])
			return 0;
	return a[15] <= 1;
}

/* RFC 791 §3.1 header checksum of a 20-byte header. */
static __always_inline int ipv4_sum_ok(const __u16 *h)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += h[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* Whether the rate-limit budget has room for a frame now. Only user space takes from it (a
 * frame within the budget is handed up and charged there, once); the kernel drops what the
 * budget refuses at this instant, which is what user space would decide for it. */
static __always_inline int budget_has_room(struct gg_config *cfg)
{
	__u32 zero = 0;
	__u64 *tat = bpf_map_lookup_elem(&gg_budget, &zero);
	if (!tat)
		return 1;
	__u64 now = bpf_ktime_get_ns() * TICKS_PER_NS;
	__s64 ahead = (__s64)(*(volatile __u64 *)tat - now);
	return ahead <= 0 || (__u64)ahead <= cfg->rate_tolerance;
}

/* GRE header checks, stage 2 of the README's Verdicts and reasons (without the checksum, which
 * stays in user space). */
static __always_inline int gre_header(struct gg_config *cfg, void *gre, void *end, struct parsed *p)
{
	if (gre + 4 > end)
		return 0; /* truncated: user space says so */
	__u16 fv = bpf_ntohs(*(__u16 *)gre);
	__u16 proto = bpf_ntohs(*(__u16 *)(gre + 2));
	__u8 version = fv & 7;
	if (version > 1) {
		if (!cfg->invalid_drop)
			return 0;
		p->reason = R_BAD_VERSION;
		return 1;
	}
	if (version == 0) {
		/* RFC 2784 §2.3: bits 1-5 other than K and S (R 0x4000, s 0x0800, recursion bit 5
		 * 0x0400) MUST be discarded: user space's V0_MUST_DISCARD. Bits 6-12 (0x03f8) are
		 * reserved, "MUST be ignored on receipt": V0_RESERVED, dropped only with
		 * reserved_bits = "drop". */
		if (fv & 0x4c00) {
			if (!cfg->invalid_drop)
				return 0;
			p->reason = R_BAD_FLAGS;
			return 1;
		}
		if (cfg->drop_reserved && (fv & 0x03f8)) {
			p->reason = R_RESERVED_BITS;
			return 1;
		}
		return 0;
	}
	/* Version 1, RFC 2637 §4.1: C, R, s, recursion, flags clear; K set; protocol PPP. */
	if ((fv & 0xcf78) || !(fv & 0x2000) || proto != 0x880b) {
		if (!cfg->invalid_drop)
			return 0;
		p->reason = R_BAD_FLAGS;
		return 1;
	}
	return 0;
}

/* Copies the first SNAP bytes of a dropped frame into the ring buffer: counted as L_SAMPLED
 * when it was written, as L_SAMPLE_LOST when the ring was full. */
static __always_inline void sample(struct xdp_md *ctx, __u32 port, __u8 reason, __u64 len)
{
	struct gg_sample *s = bpf_ringbuf_reserve(&gg_samples, sizeof(*s), 0);
	if (!s) {
		add(&gg_lane, port * L_COUNT + L_SAMPLE_LOST, len);
		return;
	}
	__u32 cap = len < SNAP ? len : SNAP;
	s->port = port;
	s->verdict = V_DROP;
	s->reason = reason;
	s->pad = 0;
	s->len = len;
	s->at_ns = bpf_ktime_get_ns();
	s->pad2 = 0;
	/* 1..SNAP in a form the verifier can bound (len is at least an Ethernet header here). */
	cap = ((cap - 1) & (SNAP - 1)) + 1;
	if (bpf_xdp_load_bytes(ctx, 0, s->data, cap) != 0)
		cap = 0;
	s->caplen = cap;
	bpf_ringbuf_submit(s, 0);
	add(&gg_lane, port * L_COUNT + L_SAMPLED, len);
}

SEC("xdp")
int greguard_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gg_config *cfg = bpf_map_lookup_elem(&gg_config, &zero);
	if (!cfg)
		return XDP_PASS;
	__u32 port = ctx->ingress_ifindex == cfg->outside_ifindex ? 0 : 1;
	__u64 len = end - data;
	__u32 queue = ctx->rx_queue_index;
	__u32 slot = port * MAX_QUEUES + (queue & (MAX_QUEUES - 1));
	/* A queue id beyond the map has no slot of its own: never served (greguard refuses to
	 * start with one; `ethtool -L` may add one later). */
	int served = cfg->active && queue < MAX_QUEUES &&
		     bpf_map_lookup_elem(&gg_xsks, &slot) != NULL;
	/* Gone: no socket, and greguard's heartbeat has stopped (or a bypass by hand). */
	int gone = !served && !daemon_alive(cfg);
	struct parsed p = { .decided = 0, .reason = 0 };

	/* Ethernet and up to two VLAN tags. */
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		goto up;
	__u16 proto = eth->h_proto;
	void *l3 = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (!is_vlan(proto))
			break;
		if (l3 + 4 > end)
			goto up;
		proto = *(__u16 *)(l3 + 2);
		l3 += 4;
	}
	/* A third tag is not looked into: user space calls it non-GRE too, but with greguard
	 * gone and closed it is not known to be free of GRE. */
	if (gone && is_vlan(proto))
		goto up;

	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 *ip = l3;
		if ((void *)(ip + 20) > end)
			goto up;
		if ((ip[0] >> 4) != 4 || (ip[0] & 0xf) < 5)
			goto up;
		if (ip[9] != IPPROTO_GRE) {
			p.decided = 1;
			p.reason = R_NON_GRE;
			goto judged;
		}
		if (gone)
			goto judged;
		__u32 hl = (ip[0] & 0xf) * 4;
		__u16 total = bpf_ntohs(*(__u16 *)(ip + 2));
		if (hl != 20 || total < hl || (void *)ip + total > end)
			goto up;
		if (!ipv4_sum_ok((const __u16 *)ip))
			goto up;
		__u32 src = bpf_ntohl(*(__u32 *)(ip + 12));
		if (cfg->drop_bogons && bogon_v4(src)) {
			p.decided = 1;
			p.reason = R_BOGON;
			goto judged;
		}
		/* Fragments (MF or an offset) stay with user space. */
		if (bpf_ntohs(*(__u16 *)(ip + 6)) & 0x3fff)
			goto up;
		if (gre_header(cfg, ip + 20, end, &p)) {
			p.decided = 1;
			goto judged;
		}
		if (cfg->unknown_action == ACT_PASS_UP || !cfg->invalid_drop)
			goto up;
		struct lpm_v4 peer = { .prefixlen = 32 }, local = { .prefixlen = 32 };
		__builtin_memcpy(port == 0 ? peer.addr : local.addr, ip + 12, 4);
		__builtin_memcpy(port == 0 ? local.addr : peer.addr, ip + 16, 4);
		if (bpf_map_lookup_elem(&gg_peers4, &peer) && bpf_map_lookup_elem(&gg_locals4, &local))
			goto up;
		goto unknown;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip = l3;
		if ((void *)(ip + 40) > end)
			goto up;
		if ((ip[0] >> 4) != 6)
			goto up;
		__u8 nh = ip[6];
		if (nh != IPPROTO_GRE) {
			/* Extension headers that may lead to GRE: user space walks them. */
			if (nh == 0 || nh == 43 || nh == 44 || nh == 60)
				goto up;
			p.decided = 1;
			p.reason = R_NON_GRE;
			goto judged;
		}
		if (gone)
			goto judged;
		if ((void *)ip + 40 + bpf_ntohs(*(__u16 *)(ip + 4)) > end)
			goto up;
		if (cfg->drop_bogons && bogon_v6(ip + 8)) {
			p.decided = 1;
			p.reason = R_BOGON;
			goto judged;
		}
		if (gre_header(cfg, ip + 40, end, &p)) {
			p.decided = 1;
			goto judged;
		}
		if (cfg->unknown_action == ACT_PASS_UP || !cfg->invalid_drop)
			goto up;
		struct lpm_v6 peer = { .prefixlen = 128 }, local = { .prefixlen = 128 };
		__builtin_memcpy(port == 0 ? peer.addr : local.addr, ip + 8, 16);
		__builtin_memcpy(port == 0 ? local.addr : peer.addr, ip + 24, 16);
		if (bpf_map_lookup_elem(&gg_peers6, &peer) && bpf_map_lookup_elem(&gg_locals6, &local))
			goto up;
		goto unknown;
	}
	/* Not IP: ARP, LLDP, ... */
	p.decided = 1;
	p.reason = R_NON_GRE;
	goto judged;

unknown:
	p.decided = 1;
	p.reason = R_UNKNOWN_TUNNEL;
	if (cfg->unknown_action == ACT_RATE_LIMIT) {
		if (budget_has_room(cfg))
			goto up; /* within the budget: user space takes the token */
		p.reason = R_RATE_LIMITED;
	}

judged:
	if (gone)
		return unserved(ctx, cfg, port, p.decided && p.reason == R_NON_GRE, len);
	if (!p.decided)
		goto up;
	if (p.reason == R_NON_GRE && cfg->non_gre_forward)
		return to_peer(ctx, &gg_verdicts, (port * GG_REASONS + R_NON_GRE) * 2 + V_FORWARD,
			       port, len);
	/* A kernel drop. 1 in sample_every is copied to the slow path's ring buffer. */
	add(&gg_verdicts, (port * GG_REASONS + p.reason) * 2 + V_DROP, len);
	if (cfg->sample_every && p.reason != R_NON_GRE) {
		struct bucket *b = bpf_map_lookup_elem(&gg_bucket, &zero);
		if (b) {
			if (b->skip <= 1) {
				b->skip = 1 + bpf_get_prandom_u32() % (2 * (__u64)cfg->sample_every - 1);
				sample(ctx, port, p.reason, len);
			} else {
				b->skip -= 1;
			}
		}
	}
	return XDP_DROP;

up:
	if (gone)
		return unserved(ctx, cfg, port, 0, len);
	if (!served) {
		/* greguard runs, but no socket serves this queue: dropped, never passed unjudged. */
		add(&gg_lane, port * L_COUNT + L_UNSERVED, len);
		return XDP_DROP;
	}
	/* The socket may have closed since the lookup: then the frame is dropped, not passed to
	 * the host's stack. */
	if (bpf_redirect_map(&gg_xsks, slot, XDP_DROP) != XDP_REDIRECT) {
		add(&gg_lane, port * L_COUNT + L_UNSERVED, len);
		return XDP_DROP;
	}
	add(&gg_lane, port * L_COUNT + L_TO_USER, len);
	return XDP_REDIRECT;
}

char _license[] SEC("license") = "Dual MIT/GPL";
