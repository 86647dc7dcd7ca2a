// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * greguard-gen's kernel-speed traffic: programs run with BPF_PROG_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES (the technique of xdp-trafficgen), and a counting sink.
 *
 *   gg_blast: each run of a template frame is redirected out of `ifindex`; for a class whose
 *             bit is set in `randomize` (the class is byte 4 of the source MAC) the outer
 *             IPv4 source becomes a random address (header checksum recomputed), so a storm
 *             comes from many sources as backscatter does. With `spread_host` set, any other
 *             untagged IPv4 frame whose source is in `spread_net` gets a random source in
 *             that prefix, so traffic reaches many tunnels with consecutive peer addresses.
 *   gg_sink:  attached to the receiving end host: counts frames per traffic class (byte 4 of
 *             the source MAC, see traffic::class) and drops them.
 *   gg_wire:  a bare redirect to `ifindex`, the ceiling a filter is measured against.
 *   gg_gre_check: the least a GRE filter does, the ceiling of any filter that checks
 *             something: untagged IPv4 GRE whose version is 0 and whose RFC 2784 §2.3
 *             must-discard bits are clear is redirected to `ifindex`, other GRE is dropped,
 *             the rest redirected.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define CLASSES 16

struct blast_cfg {
	__u32 ifindex;
	__u32 randomize;   /* a bit per class */
	__u32 spread_net;  /* host byte order */
	__u32 spread_host; /* the host bits of the prefix; 0 = no spread */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blast_cfg);
} blast_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} sink_counts SEC(".maps");

/* Writes `src` as the outer IPv4 source of the frame at `data` and recomputes the header
 * checksum; the caller has checked that the 20-byte header is there. */
static __always_inline void set_source(__u16 *ip, __u32 src)
{
	ip[6] = bpf_htons(src >> 16);
	ip[7] = bpf_htons(src & 0xffff);
	ip[5] = 0;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += ip[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip[5] = ~sum;
}

SEC("xdp")
int gg_blast(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	/* Only our template frames are sent; anything else is passed untouched. That makes it
	 * harmless to keep the program attached to the namespace's loopback device, which keeps
	 * it in the kernel's XDP dispatcher: otherwise every BPF_PROG_RUN call adds it and
	 * removes it again, each time waiting for an RCU grace period (milliseconds). */
	if ((void *)(eth + 14) > end || eth[6] != 0x02 || eth[7] != 0x67 || eth[8] != 0x67 ||
	    eth[9] != 0x67)
		return XDP_PASS;
	__u32 zero = 0;
	struct blast_cfg *cfg = bpf_map_lookup_elem(&blast_cfg, &zero);
	if (!cfg)
		return XDP_ABORTED;
	if (cfg->randomize & (1u << (eth[10] & (CLASSES - 1)))) {
		__u16 *ip = data + 14;
		if ((void *)(ip + 10) > end)
			return XDP_ABORTED;
		__u32 src = bpf_get_prandom_u32();
		/* Keep it out of 0/8, 127/8 and 224/3 so it is an unknown source, not a bogon. */
		src = (src & 0x00ffffff) | ((__u32)(1 + (src >> 24) % 126) << 24);
		set_source(ip, src);
	} else if (cfg->spread_host && eth[12] == 0x08 && eth[13] == 0x00) {
		__u16 *ip = data + 14;
		if ((void *)(ip + 10) > end)
			return XDP_PASS;
		__u32 src = ((__u32)bpf_ntohs(ip[6]) << 16) | bpf_ntohs(ip[7]);
		if ((src & ~cfg->spread_host) == cfg->spread_net)
			set_source(ip, cfg->spread_net | (bpf_get_prandom_u32() & cfg->spread_host));
	}
	return bpf_redirect(cfg->ifindex, 0);
}

SEC("xdp")
int gg_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	if ((void *)(eth + 12) > end)
		return XDP_DROP;
	/* traffic::class: source MAC 02:67:67:67:CC:VV; anything else is class CLASSES-1. */
	__u32 class = CLASSES - 1;
	if (eth[6] == 0x02 && eth[7] == 0x67 && eth[8] == 0x67 && eth[9] == 0x67 && eth[10] < CLASSES - 1)
		class = eth[10];
	__u64 *n = bpf_map_lookup_elem(&sink_counts, &class);
	if (n)
		*n += 1;
	return XDP_DROP;
}

SEC("xdp")
int gg_wire(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct blast_cfg *cfg = bpf_map_lookup_elem(&blast_cfg, &zero);
	if (!cfg)
		return XDP_ABORTED;
	return bpf_redirect(cfg->ifindex, 0);
}

/* Version 0 (RFC 2784 §2.1) and the bits RFC 2784 §2.3 says to discard on (R 0x4000, strict
 * source route 0x0800, recursion control's bit 5 0x0400) clear, as one mask with the version. */
#define GRE_MUST_BE_CLEAR 0x4C07

SEC("xdp")
int gg_gre_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct blast_cfg *cfg = bpf_map_lookup_elem(&blast_cfg, &zero);
	if (!cfg)
		return XDP_ABORTED;
	__u8 *eth = data;
	__u8 *ip = eth + 14;
	if ((void *)(ip + 24) > end || eth[12] != 0x08 || eth[13] != 0x00 || ip[9] != 47)
		return bpf_redirect(cfg->ifindex, 0);
	__u8 *gre = ip + (ip[0] & 0xf) * 4;
	if ((void *)(gre + 2) > end)
		return XDP_DROP;
	__u16 fv = ((__u16)gre[0] << 8) | gre[1];
	if (fv & GRE_MUST_BE_CLEAR)
		return XDP_DROP;
	return bpf_redirect(cfg->ifindex, 0);
}

char _license[] SEC("license") = "Dual MIT/GPL";
