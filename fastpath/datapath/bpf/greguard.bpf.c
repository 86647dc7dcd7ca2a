// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * greguard's fast lane: an XDP program on both ports that decides in the kernel what it can
 * judge exactly as the validator would, and hands the rest to the AF_XDP socket of its queue.
 *
 *   - not IP protocol 47: redirected to the other port (DEVMAP) or dropped, as
 *     `[defaults] non_gre` says; it never reaches user space;
 *   - GRE failing the checks of the README's Verdicts and reasons that the program runs, in
 *     their order — outer IPv4 header checksum (RFC 791 §3.1), bogon outer source, version
 *     (RFC 2784 §2.1 / RFC 2637 §4.1), the RFC 2784 §2.3 MUST-discard bits, the reserved bits,
 *     the RFC 2637 §4.1 version-1 rules — dropped with that reason when the policy drops it;
 *   - fragments: dropped as `fragment` under fragments = "drop", or when their outer addresses
 *     can match no tunnel; a first fragment is held to the header checks above first;
 *   - GRE whose outer addresses can match no tunnel (LPM tries of every peer and local prefix):
 *     dropped as `unknown_tunnel` (or, rate-limit, as `rate_limited` while the shared budget
 *     has no room) — but only once the program has run every check the validator runs before
 *     the tunnel match: the optional fields fit, no GRE checksum (which it does not verify),
 *     and a payload it can check (IPv4, IPv6 without extension headers, keepalive, numeric
 *     types; an inner bogon source is dropped as `bogon`). Anything else goes up;
 *   - the kernel path (ports whose `kernel_tunnels` bit is set): whole GRE of a tunnel, found
 *     as the validator finds it (host pairs first, then the prefix pairs, longest peer prefix
 *     first), whose payload it checked and which carries no GRE: the key rule, the version and
 *     protocol class, the C and S rules and the tunnel's policer (a cell user space shares),
 *     then redirected to the other port as `tunnel`, or dropped with that stage's reason;
 *   - everything else: the XSKMAP socket of (port, queue), for the full validator.
 *
 * Every frame meets one of three states of its queue:
 *   - served: a socket of greguard's is in the XSKMAP slot of (port, queue);
 *   - unserved while greguard runs (a worker died, `ethtool -L` raised the channels): the
 *     kernel still decides what it can, and what it would hand up is dropped and counted
 *     (GG_L_UNSERVED). greguard is alive while the deadline in `gg_alive`, which its heartbeat
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
 * The validator is the authority: the program decides a frame only where it reaches the
 * validator's verdict and reason exactly (a differential test runs both over generated frames
 * and random policies), and hands up everything else.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Every constant, struct and small predicate shared with the validator, generated at build time
 * from its Rust definitions (fastpath/datapath/build.rs). */
#include "gg_shared.h"

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
	__uint(max_entries, 2 * GG_MAX_QUEUES);
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
	__uint(max_entries, GG_VERDICT_KEYS);
	__type(key, __u32);
	__type(value, struct gg_counter);
} gg_verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * GG_LANES);
	__type(key, __u32);
	__type(value, struct gg_counter);
} gg_lane SEC(".maps");

/* Sampling countdowns per CPU: 0 for kernel drops, 1 for frames forwarded in a tunnel. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct bucket);
} gg_bucket SEC(".maps");

/* The policers of the tunnels, by slot: each tunnel's theoretical arrival time (GCRA) in
 * policer ticks, the same cell user space takes from (it maps the array), updated by both with
 * a compare-and-swap, so a tunnel's rate holds whichever path and CPU its frames take. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GG_MAX_TUNNEL_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} gg_tunnel_tat SEC(".maps");

/* Frames the kernel path judged per tunnel: slot * GG_VERDICTS + verdict, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GG_TUNNEL_COUNT_KEYS);
	__type(key, __u32);
	__type(value, __u64);
} gg_tunnel_counts SEC(".maps");

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

/* The validator's host-pair table (Policy::host_pairs): tunnels whose peer and local are single
 * addresses, keyed by (peer, local) as the frame's port orients them. */
#define HOSTS(name, keytype)                                 \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_HASH);             \
		__uint(max_entries, 262144);                 \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__type(key, keytype);                        \
		__type(value, struct gg_tunnel);             \
	} name SEC(".maps")

HOSTS(gg_hosts4, struct host_v4);
HOSTS(gg_hosts6, struct host_v6);

/* The validator's prefix tables (Policy::prefix_pairs), for the frames of no host pair: the peer
 * prefixes, each with an id (LPM: the longest that covers a peer), the next shorter peer prefix
 * covering each (by id; 0 for none), and per (peer prefix id, local prefix) the pair's entry
 * (LPM: the longest local prefix within that peer prefix). */
#define NETS(name, keytype)                                  \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);         \
		__uint(max_entries, GG_MAX_PEER_NETS);       \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__type(key, keytype);                        \
		__type(value, __u32);                        \
	} name SEC(".maps")

NETS(gg_peer_nets4, struct lpm_v4);
NETS(gg_peer_nets6, struct lpm_v6);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GG_MAX_PEER_NETS + 1);
	__type(key, __u32);
	__type(value, __u32);
} gg_net_parents SEC(".maps");

#define PAIRS(name, keytype)                                 \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);         \
		__uint(max_entries, 262144);                 \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__type(key, keytype);                        \
		__type(value, struct gg_tunnel);             \
	} name SEC(".maps")

PAIRS(gg_pairs4, struct pair_v4);
PAIRS(gg_pairs6, struct pair_v6);

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

/* Redirects to the other port; counts the frame as `lane` there, or as GG_L_NO_TARGET when the
 * other port is missing from the DEVMAP (it is dropped: a frame counted as passed was passed). */
static __always_inline int to_peer(struct xdp_md *ctx, void *counters, __u32 idx, __u32 port,
				   __u64 len)
{
	int act = bpf_redirect_map(&gg_ports, ctx->ingress_ifindex, XDP_DROP);
	if (act == XDP_REDIRECT)
		add(counters, idx, len);
	else
		add(&gg_lane, port * GG_LANES + GG_L_NO_TARGET, len);
	return act;
}

/* greguard is gone (or this is a bypass by hand): fail open — every frame to the other port —
 * or closed — only what is positively not GRE to the other port, the rest dropped. */
static __always_inline int unserved(struct xdp_md *ctx, struct gg_config *cfg, __u32 port,
				    int not_gre, __u64 len)
{
	if (cfg->fail_open || not_gre)
		return to_peer(ctx, &gg_lane, port * GG_LANES + GG_L_BYPASS, port, len);
	add(&gg_lane, port * GG_LANES + GG_L_CLOSED_DROP, len);
	return XDP_DROP;
}

/* Whether greguard's heartbeat is current (it has not been gone for more than its grace). */
static __always_inline int daemon_alive(struct gg_config *cfg)
{
	__u32 zero = 0;
	__u64 *deadline = bpf_map_lookup_elem(&gg_alive, &zero);
	return cfg->active && deadline && bpf_ktime_get_ns() < *deadline;
}

/* What a stage found: the frame is decided (with p->reason), passes the stage, or needs the
 * validator. */
#define DECIDED 1
#define PASSES 0
#define UP 2

struct parsed {
	__u8 decided;   /* the kernel can judge it */
	__u8 reason;
	__u8 forward;   /* decided: forwarded in a tunnel (else dropped) */
	__u32 tunnel;   /* the tunnel's slot + 1, 0 for none */
};

/* What the GRE checks found of a whole packet that passed them: what the tunnel rules read. */
struct gre_info {
	__u32 key;
	__u16 proto;
	__u8 version;
	__u8 has_key;
	__u8 seq;
	__u8 ack_only;  /* PPTP: an acknowledgment with no payload */
	__u8 class;
	__u8 plain;     /* the payload was checked whole and carries no GRE (not nested, no keepalive) */
};

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
	__u64 now = bpf_ktime_get_ns() * GG_TICKS_PER_NS;
	__s64 ahead = (__s64)(*(volatile __u64 *)tat - now);
	return ahead <= 0 || (__u64)ahead <= cfg->rate_tolerance;
}

/* A GRE check failed with `reason`, which `invalid_gre` judges: dropped when it says drop,
 * else the validator charges the shared budget. */
static __always_inline int invalid(struct gg_config *cfg, struct parsed *p, __u8 reason)
{
	if (!cfg->invalid_drop)
		return UP;
	p->reason = reason;
	return DECIDED;
}

/* The bits of the first GRE word, stage 2 of the README's Verdicts and reasons: version, the
 * RFC 2784 §2.3 MUST-discard bits and reserved bits of version 0, the RFC 2637 §4.1 rules of
 * version 1. Reserved bits are judged by `reserved_bits` alone. */
static __always_inline int gre_bits(struct gg_config *cfg, __u16 fv, __u16 proto,
				    struct parsed *p)
{
	__u8 version = fv & GG_GRE_VERSION;
	if (version > 1)
		return invalid(cfg, p, GG_R_BAD_VERSION);
	if (version == 0) {
		if (fv & GG_GRE_V0_MUST_DISCARD)
			return invalid(cfg, p, GG_R_BAD_FLAGS);
		if (cfg->drop_reserved && (fv & GG_GRE_V0_RESERVED)) {
			p->reason = GG_R_RESERVED_BITS;
			return DECIDED;
		}
		return PASSES;
	}
	if ((fv & GG_GRE_V1_MUST_BE_CLEAR) || !(fv & GG_GRE_K) || proto != GG_PROTO_PPP)
		return invalid(cfg, p, GG_R_BAD_FLAGS);
	return PASSES;
}

/* Inner IPv4 in [in, iend) (stage 3, `ipv4`): version 4, IHL >= 5, total length within. */
static __always_inline int inner_ipv4(struct gg_config *cfg, __u8 *in, void *iend, void *end,
				      struct parsed *p, struct gre_info *g)
{
	if ((void *)(in + 20) > iend || (void *)(in + 20) > end)
		return invalid(cfg, p, GG_R_BAD_INNER);
	__u32 hl = (in[0] & 0xf) * 4;
	__u16 total = bpf_ntohs(*(__u16 *)(in + 2));
	if ((in[0] >> 4) != 4 || hl < 20 || total < hl || (void *)in + total > iend)
		return invalid(cfg, p, GG_R_BAD_INNER);
	if (cfg->drop_bogons && gg_bogon_v4(bpf_ntohl(*(__u32 *)(in + 12)))) {
		p->reason = GG_R_BOGON;
		return DECIDED;
	}
	/* Inner GRE is nested GRE or a keepalive, which the validator tells apart. */
	g->plain = in[9] != GG_IPPROTO_GRE;
	return PASSES;
}

/* Inner IPv6 (stage 3, `ipv6`): version 6, payload length within. Extension headers, which
 * the validator walks for nested GRE, go up. */
static __always_inline int inner_ipv6(struct gg_config *cfg, __u8 *in, void *iend, void *end,
				      struct parsed *p, struct gre_info *g)
{
	if ((void *)(in + 40) > iend || (void *)(in + 40) > end)
		return invalid(cfg, p, GG_R_BAD_INNER);
	__u16 plen = bpf_ntohs(*(__u16 *)(in + 4));
	if ((in[0] >> 4) != 6 || (void *)in + 40 + plen > iend)
		return invalid(cfg, p, GG_R_BAD_INNER);
	if (gg_ipv6_walked(in[6]))
		return UP;
	if (cfg->drop_bogons && gg_bogon_v6(in + 8)) {
		p->reason = GG_R_BOGON;
		return DECIDED;
	}
	g->plain = in[6] != GG_IPPROTO_GRE;
	return PASSES;
}

/* A PPP payload of PPTP (stage 3, `ppp`; RFC 1661 §2): an optional FF 03, then a protocol
 * number with an odd low byte and an even high byte, or one odd byte (compressed). */
static __always_inline int inner_ppp(struct gg_config *cfg, __u8 *in, void *iend, void *end,
				     struct parsed *p)
{
	if ((void *)(in + 2) <= iend && (void *)(in + 2) <= end && in[0] == 0xff && in[1] == 0x03)
		in += 2;
	if ((void *)(in + 1) > iend || (void *)(in + 1) > end)
		return invalid(cfg, p, GG_R_BAD_INNER);
	if (in[0] & 1)
		return PASSES;
	if ((void *)(in + 2) > iend || (void *)(in + 2) > end || !(in[1] & 1))
		return invalid(cfg, p, GG_R_BAD_INNER);
	return PASSES;
}

/* Stages 2 and 3 of a whole (unfragmented) GRE packet in [gre, gend): the header bits, the
 * optional fields (RFC 2784 §2, RFC 2890 §2; RFC 2637 §4.1), and the payload for the classes
 * the program checks. A GRE checksum, which it does not verify, and other classes go up. */
static __always_inline int gre_checks(struct gg_config *cfg, __u8 *gre, void *gend, void *end,
				      struct parsed *p, struct gre_info *g)
{
	/* Cut short anywhere: the validator names it (`truncated`). */
	if ((void *)(gre + 4) > gend || (void *)(gre + 4) > end)
		return UP;
	__u16 fv = bpf_ntohs(*(__u16 *)gre);
	__u16 proto = bpf_ntohs(*(__u16 *)(gre + 2));
	int r = gre_bits(cfg, fv, proto, p);
	if (r != PASSES)
		return r;
	g->proto = proto;
	g->version = fv & GG_GRE_VERSION;
	g->seq = !!(fv & GG_GRE_S);
	g->class = gg_proto_class(proto);
	if (fv & GG_GRE_VERSION) {
		/* PPTP: 8 bytes, + 4 if S, + 4 if A, then payload-length bytes of PPP. */
		if ((void *)(gre + 8) > gend || (void *)(gre + 8) > end)
			return UP;
		__u32 hlen = 8 + ((fv & GG_GRE_S) ? 4 : 0) + ((fv & GG_GRE_A) ? 4 : 0);
		__u16 plen = bpf_ntohs(*(__u16 *)(gre + 4));
		__u8 *in = gre + hlen;
		if ((void *)in + plen > gend)
			return UP;
		/* The call ID is the key (RFC 2637 §4.1). */
		g->has_key = 1;
		g->key = bpf_ntohs(*(__u16 *)(gre + 6));
		g->plain = 1;
		if (plen == 0 && (fv & GG_GRE_A)) {
			g->ack_only = 1;
			return PASSES; /* an acknowledgment alone */
		}
		return inner_ppp(cfg, in, (void *)in + plen, end, p);
	}
	if (fv & GG_GRE_C)
		return UP;
	__u32 hlen = 4 + ((fv & GG_GRE_K) ? 4 : 0) + ((fv & GG_GRE_S) ? 4 : 0);
	__u8 *in = gre + hlen;
	if ((void *)in > gend)
		return UP;
	if (fv & GG_GRE_K) {
		/* No C bit here, so the key follows the first word (RFC 2890 §2). */
		if ((void *)(gre + 8) > end)
			return UP;
		g->has_key = 1;
		g->key = bpf_ntohl(*(__u32 *)(gre + 4));
	}
	switch (g->class) {
	case GG_CLASS_IPV4:
		return inner_ipv4(cfg, in, gend, end, p, g);
	case GG_CLASS_IPV6:
		return inner_ipv6(cfg, in, gend, end, p, g);
	case GG_CLASS_KEEPALIVE:
	case GG_CLASS_OTHER:
		g->plain = 1;
		return PASSES;
	default:
		return UP;
	}
}

/* The start of GRE in a first fragment: held to the checks its bytes allow (the version and
 * flag bits), as the validator does. Fewer than 4 bytes: nothing to check. */
static __always_inline int first_fragment(struct gg_config *cfg, __u8 *gre, void *gend, void *end,
					  struct parsed *p)
{
	if ((void *)(gre + 4) > gend || (void *)(gre + 4) > end)
		return PASSES;
	return gre_bits(cfg, bpf_ntohs(*(__u16 *)gre), bpf_ntohs(*(__u16 *)(gre + 2)), p);
}

/* Copies the first GG_SNAP bytes of a judged frame into the ring buffer: counted as
 * GG_L_SAMPLED when it was written, as GG_L_SAMPLE_LOST when the ring was full. */
static __always_inline void sample(struct xdp_md *ctx, __u32 port, struct parsed *p, __u64 len)
{
	struct gg_sample *s = bpf_ringbuf_reserve(&gg_samples, sizeof(*s), 0);
	if (!s) {
		add(&gg_lane, port * GG_LANES + GG_L_SAMPLE_LOST, len);
		return;
	}
	__u32 cap = len < GG_SNAP ? len : GG_SNAP;
	s->port = port;
	s->verdict = p->forward ? GG_V_FORWARD : GG_V_DROP;
	s->reason = p->reason;
	s->pad = 0;
	s->len = len;
	s->at_ns = bpf_ktime_get_ns();
	s->tunnel = p->tunnel;
	/* 1..GG_SNAP in a form the verifier can bound (len is at least an Ethernet header here). */
	cap = ((cap - 1) & (GG_SNAP - 1)) + 1;
	if (bpf_xdp_load_bytes(ctx, 0, s->data, cap) != 0)
		cap = 0;
	s->caplen = cap;
	bpf_ringbuf_submit(s, 0);
	add(&gg_lane, port * GG_LANES + GG_L_SAMPLED, len);
}

/* Takes one frame's worth from the tunnel's policer (GCRA, as validator::policer::Policer::take):
 * 1 when it conforms, 0 when it does not, -1 when other CPUs kept changing the cell (the frame
 * goes up, and user space decides). */
static __always_inline int police(struct gg_tunnel *t)
{
	__u32 slot = t->slot;
	__u64 *cell = bpf_map_lookup_elem(&gg_tunnel_tat, &slot);
	if (!cell)
		return -1;
	__u64 now = bpf_ktime_get_ns() * GG_TICKS_PER_NS;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u64 tat = *(volatile __u64 *)cell;
		__s64 ahead = (__s64)(tat - now);
		if (ahead < 0)
			ahead = 0;
		if ((__u64)ahead > t->rate_tolerance)
			return 0;
		__u64 next = now + (__u64)ahead + t->rate_interval;
		if (__sync_val_compare_and_swap(cell, tat, next) == tat)
			return 1;
	}
	return -1;
}

/* Whether a packet with the bit `present` breaks a C or S bit rule (FlagRule::violated). */
static __always_inline int rule_violated(__u8 rule, int present)
{
	return (rule == GG_RULE_REQUIRE && !present) || (rule == GG_RULE_FORBID && present);
}

/* Stages 4 to 6 for a host pair's entry `t` (the tunnel match, the tunnel rules, the tunnel's
 * policer), as the validator's classifier runs them: DECIDED with p->forward and p->reason, or
 * UP where the program cannot judge exactly (several tunnels on the pair, numeric protocol
 * types, a busy policer cell). */
static __always_inline int tunnel(struct gg_tunnel *t, struct gre_info *g, struct parsed *p)
{
	int ok;
	switch (t->select) {
	case GG_SELECT_ANY:
		ok = 1;
		break;
	case GG_SELECT_ABSENT:
		ok = !g->has_key;
		break;
	case GG_SELECT_EQUAL:
		ok = g->has_key && g->key == t->key;
		break;
	default:
		return UP;
	}
	p->tunnel = t->slot + 1;
	if (!ok) {
		p->reason = GG_R_KEY_MISMATCH;
		return DECIDED;
	}
	/* The payload carries no GRE: no keepalive bit, nesting cannot be refused. */
	int by_class = (t->classes >> (g->class & 15)) & 1;
	if (t->version != g->version) {
		p->reason = GG_R_PROTOCOL_DENIED;
		return DECIDED;
	}
	if (!by_class) {
		if (g->class == GG_CLASS_OTHER && (t->flags & GG_HOT_NUMBERS))
			return UP; /* the tunnel's list of numbers is in user space */
		p->reason = GG_R_PROTOCOL_DENIED;
		return DECIDED;
	}
	/* No C bit gets here. */
	if (rule_violated(t->checksum, 0)) {
		p->reason = GG_R_CHECKSUM_POLICY;
		return DECIDED;
	}
	/* RFC 2637 §4.1: an acknowledgment alone carries no payload and needs no S bit. */
	int bare_ack = g->ack_only && !g->seq;
	if (!bare_ack && rule_violated(t->sequence, g->seq)) {
		p->reason = GG_R_SEQUENCE_POLICY;
		return DECIDED;
	}
	if (t->flags & GG_HOT_RATE) {
		int r = police(t);
		if (r < 0)
			return UP;
		if (!r) {
			p->reason = GG_R_RATE_LIMITED;
			return DECIDED;
		}
	}
	p->reason = GG_R_TUNNEL;
	p->forward = 1;
	return DECIDED;
}

/* Counts a frame of the tunnel in slot + 1 = `tunnel` (0: no tunnel, nothing counted). */
static __always_inline void count_tunnel(__u32 tunnel, __u32 verdict)
{
	if (!tunnel)
		return;
	__u32 key = (tunnel - 1) * GG_VERDICTS + verdict;
	__u64 *c = bpf_map_lookup_elem(&gg_tunnel_counts, &key);
	if (c)
		*c += 1;
}

/* Samples 1 in `every` frames (0: none) with the countdown `which` (0 drops, 1 forwards), at a
 * random skip that averages `every`, as the workers do. */
static __always_inline void maybe_sample(struct xdp_md *ctx, struct gg_config *cfg, __u32 port,
					 struct parsed *p, __u64 len, __u32 which, __u32 every)
{
	if (!every)
		return;
	struct bucket *b = bpf_map_lookup_elem(&gg_bucket, &which);
	if (!b)
		return;
	if (b->skip <= 1) {
		b->skip = 1 + bpf_get_prandom_u32() % (2 * (__u64)every - 1);
		sample(ctx, port, p, len);
	} else {
		b->skip -= 1;
	}
}

/* The validator's match for a frame of no host pair (policy.rs, family_lookup): among the peer
 * prefixes covering the peer, longest first, the first whose local prefixes cover the local
 * decides, by the longest of them. `net_id` is the longest peer prefix's id; `key` holds the
 * local address. Bounded by the prefix lengths an address has (33 or 129). */
#define WALK(name, pairs, keytype, steps)                                                     \
	static __always_inline struct gg_tunnel *name(__u32 net_id, keytype *key)             \
	{                                                                                     \
		__u32 id = net_id;                                                            \
		for (int i = 0; i < (steps) && id; i++) {                                     \
			__u32 be = bpf_htonl(id);                                             \
			__builtin_memcpy(key->net, &be, 4);                                   \
			struct gg_tunnel *t = bpf_map_lookup_elem(&pairs, key);               \
			if (t)                                                                \
				return t;                                                     \
			__u32 *parent = bpf_map_lookup_elem(&gg_net_parents, &id);            \
			if (!parent)                                                          \
				return NULL;                                                  \
			id = *parent;                                                         \
		}                                                                             \
		return NULL;                                                                  \
	}

WALK(walk_v4, gg_pairs4, struct pair_v4, 33)
WALK(walk_v6, gg_pairs6, struct pair_v6, 129)

/* After the outer header of GRE: a fragment, or the GRE checks, then the tunnel match.
 * `known` says whether the outer addresses can match a tunnel (both tries hit). */
static __always_inline int after_outer(struct gg_config *cfg, __u8 *gre, void *gend, void *end,
				       int fragment, int first, int known, struct gg_tunnel *t,
				       struct parsed *p)
{
	int r;
	if (fragment) {
		if (first) {
			r = first_fragment(cfg, gre, gend, end, p);
			if (r != PASSES)
				return r;
		}
		/* Forwarded within a tunnel's policer, which user space keeps. */
		if (cfg->fragments_to_tunnel && known)
			return UP;
		p->reason = GG_R_FRAGMENT;
		return DECIDED;
	}
	struct gre_info g = {};
	r = gre_checks(cfg, gre, gend, end, p, &g);
	if (r != PASSES)
		return r;
	if (t)
		return g.plain ? tunnel(t, &g, p) : UP;
	if (known || cfg->unknown_action == GG_ACT_PASS_UP)
		return UP;
	p->reason = GG_R_UNKNOWN_TUNNEL;
	if (cfg->unknown_action == GG_ACT_RATE_LIMIT) {
		if (budget_has_room(cfg))
			return UP; /* within the budget: user space takes the token */
		p->reason = GG_R_RATE_LIMITED;
	}
	return DECIDED;
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
	__u32 slot = port * GG_MAX_QUEUES + (queue & (GG_MAX_QUEUES - 1));
	/* A queue id beyond the map has no slot of its own: never served (greguard refuses to
	 * start with one; `ethtool -L` may add one later). */
	int served = cfg->active && queue < GG_MAX_QUEUES &&
		     bpf_map_lookup_elem(&gg_xsks, &slot) != NULL;
	/* Gone: no socket, and greguard's heartbeat has stopped (or a bypass by hand). */
	int gone = !served && !daemon_alive(cfg);
	struct parsed p = { .decided = 0, .reason = 0, .forward = 0, .tunnel = 0 };
	int r;
	/* The kernel path judges this port's tunnel traffic: frames a UMEM frame would hold (a
	 * longer one goes up, where the data path books it as `oversize`). */
	int kernel_path = ((cfg->kernel_tunnels >> port) & 1) && len <= cfg->max_frame;

	/* Ethernet and up to GG_MAX_VLAN_TAGS VLAN tags. */
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		goto up;
	__u16 proto = bpf_ntohs(eth->h_proto);
	void *l3 = eth + 1;
#pragma unroll
	for (int i = 0; i < GG_MAX_VLAN_TAGS; i++) {
		if (!gg_is_vlan_tpid(proto))
			break;
		if (l3 + 4 > end)
			goto up;
		proto = bpf_ntohs(*(__u16 *)(l3 + 2));
		l3 += 4;
	}
	/* A further tag is not looked into: user space calls it non-GRE too, but with greguard
	 * gone and closed it is not known to be free of GRE. */
	if (gone && gg_is_vlan_tpid(proto))
		goto up;

	if (proto == GG_ETH_P_IPV4) {
		__u8 *ip = l3;
		if ((void *)(ip + 20) > end)
			goto up;
		if ((ip[0] >> 4) != 4 || (ip[0] & 0xf) < 5)
			goto up;
		if (ip[9] != GG_IPPROTO_GRE) {
			p.decided = 1;
			p.reason = GG_R_NON_GRE;
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
		if (cfg->drop_bogons && gg_bogon_v4(bpf_ntohl(*(__u32 *)(ip + 12)))) {
			p.decided = 1;
			p.reason = GG_R_BOGON;
			goto judged;
		}
		__u16 frag = bpf_ntohs(*(__u16 *)(ip + 6));
		struct lpm_v4 peer = { .prefixlen = 32 }, local = { .prefixlen = 32 };
		__builtin_memcpy(port == 0 ? peer.addr : local.addr, ip + 12, 4);
		__builtin_memcpy(port == 0 ? local.addr : peer.addr, ip + 16, 4);
		int known = bpf_map_lookup_elem(&gg_peers4, &peer) &&
			    bpf_map_lookup_elem(&gg_locals4, &local);
		struct gg_tunnel *t = NULL;
		if (known && kernel_path && !(frag & GG_IPV4_FRAGMENT)) {
			struct host_v4 pair;
			__builtin_memcpy(pair.peer, peer.addr, 4);
			__builtin_memcpy(pair.local, local.addr, 4);
			t = bpf_map_lookup_elem(&gg_hosts4, &pair);
			__u32 *net = t ? NULL : bpf_map_lookup_elem(&gg_peer_nets4, &peer);
			if (net) {
				struct pair_v4 k = { .prefixlen = 64 };
				__builtin_memcpy(k.local, local.addr, 4);
				t = walk_v4(*net, &k);
			}
		}
		r = after_outer(cfg, ip + 20, (void *)ip + total, end, frag & GG_IPV4_FRAGMENT,
				!(frag & GG_IPV4_OFFSET), known, t, &p);
		if (r != DECIDED)
			goto up;
		p.decided = 1;
		goto judged;
	}
	if (proto == GG_ETH_P_IPV6) {
		__u8 *ip = l3;
		if ((void *)(ip + 40) > end)
			goto up;
		if ((ip[0] >> 4) != 6)
			goto up;
		__u8 nh = ip[6];
		if (nh != GG_IPPROTO_GRE) {
			/* Extension headers that may lead to GRE: user space walks them. */
			if (gg_ipv6_walked(nh))
				goto up;
			p.decided = 1;
			p.reason = GG_R_NON_GRE;
			goto judged;
		}
		if (gone)
			goto judged;
		__u16 plen = bpf_ntohs(*(__u16 *)(ip + 4));
		if ((void *)ip + 40 + plen > end)
			goto up;
		if (cfg->drop_bogons && gg_bogon_v6(ip + 8)) {
			p.decided = 1;
			p.reason = GG_R_BOGON;
			goto judged;
		}
		struct lpm_v6 peer = { .prefixlen = 128 }, local = { .prefixlen = 128 };
		__builtin_memcpy(port == 0 ? peer.addr : local.addr, ip + 8, 16);
		__builtin_memcpy(port == 0 ? local.addr : peer.addr, ip + 24, 16);
		int known = bpf_map_lookup_elem(&gg_peers6, &peer) &&
			    bpf_map_lookup_elem(&gg_locals6, &local);
		struct gg_tunnel *t = NULL;
		if (known && kernel_path) {
			struct host_v6 pair;
			__builtin_memcpy(pair.peer, peer.addr, 16);
			__builtin_memcpy(pair.local, local.addr, 16);
			t = bpf_map_lookup_elem(&gg_hosts6, &pair);
			__u32 *net = t ? NULL : bpf_map_lookup_elem(&gg_peer_nets6, &peer);
			if (net) {
				struct pair_v6 k = { .prefixlen = 160 };
				__builtin_memcpy(k.local, local.addr, 16);
				t = walk_v6(*net, &k);
			}
		}
		r = after_outer(cfg, ip + 40, (void *)ip + 40 + plen, end, 0, 0, known, t, &p);
		if (r != DECIDED)
			goto up;
		p.decided = 1;
		goto judged;
	}
	/* Not IP: ARP, LLDP, ... */
	p.decided = 1;
	p.reason = GG_R_NON_GRE;

judged:
	if (gone)
		return unserved(ctx, cfg, port, p.decided && p.reason == GG_R_NON_GRE, len);
	if (!p.decided)
		goto up;
	if (p.reason == GG_R_NON_GRE && cfg->non_gre_forward)
		return to_peer(ctx, &gg_verdicts, GG_VERDICT_KEY(port, GG_R_NON_GRE, GG_V_FORWARD),
			       port, len);
	if (p.forward) {
		/* Forwarded in a tunnel: counted (and sampled) once the redirect is taken. */
		int act = to_peer(ctx, &gg_verdicts, GG_VERDICT_KEY(port, GG_R_TUNNEL, GG_V_FORWARD),
				  port, len);
		if (act == XDP_REDIRECT) {
			count_tunnel(p.tunnel, GG_V_FORWARD);
			maybe_sample(ctx, cfg, port, &p, len, 1, cfg->sample_forwarded);
		}
		return act;
	}
	/* A kernel drop. 1 in sample_every is copied to the slow path's ring buffer. */
	add(&gg_verdicts, GG_VERDICT_KEY(port, p.reason, GG_V_DROP), len);
	count_tunnel(p.tunnel, GG_V_DROP);
	if (p.reason != GG_R_NON_GRE)
		maybe_sample(ctx, cfg, port, &p, len, 0, cfg->sample_every);
	return XDP_DROP;

up:
	if (gone)
		return unserved(ctx, cfg, port, 0, len);
	if (!served) {
		/* greguard runs, but no socket serves this queue: dropped, never passed unjudged. */
		add(&gg_lane, port * GG_LANES + GG_L_UNSERVED, len);
		return XDP_DROP;
	}
	/* The socket may have closed since the lookup: then the frame is dropped, not passed to
	 * the host's stack. */
	if (bpf_redirect_map(&gg_xsks, slot, XDP_DROP) != XDP_REDIRECT) {
		add(&gg_lane, port * GG_LANES + GG_L_UNSERVED, len);
		return XDP_DROP;
	}
	add(&gg_lane, port * GG_LANES + GG_L_TO_USER, len);
	return XDP_REDIRECT;
}

char _license[] SEC("license") = "Dual MIT/GPL";
