#!/bin/sh
# The storm benchmark (issue 5): measures, does not assert.
#
# The lab's layout (outside host -- box -- inside host, veths in three network namespaces).
# The outside host runs two `greguard-gen blast` generators (BPF_PROG_RUN live frames) on CPU 0:
# valid tunnel GRE at a fixed rate and a storm of unknown-peer GRE at the maximum one CPU
# makes; greguard runs on CPU 1; the inside host counts per class in XDP (`greguard-gen sink`).
# It prints:
#   1. the fraction of the valid traffic greguard forwarded and the inside host counted, with
#      and without the fast lane, under the storm and without it;
#   2. non-GRE pass-through through greguard's fast lane against a bare XDP redirect between
#      the same two ports.
#
# Usage: benches/storm.sh [VALID_PPS] [SECONDS]   (root; `make bench-storm` builds first)
set -eu
VALID_PPS=${1:-500000}
SECS=${2:-5}
B=${BIN:-$(dirname "$0")/../target/release}
P=gs$$
TMP=$(mktemp -d)
# shellcheck source=benches/lab.sh
. "$(dirname "$0")/lab.sh"
trap cleanup EXIT INT TERM




# run FASTLANE VALID_PPS STORM(yes|no) -> prints
#   "valid_sent forwarded arrived storm_pps rx_ring_full storm_dropped_by_the_box"
run() {
	topology
	policy "$1" > "$TMP/policy.toml"
	ip netns exec $P-box "$B/greguard" run -q -c "$TMP/policy.toml" --duration $((SECS + 4)) \
		> "$TMP/box.out" 2> "$TMP/box.err" &
	box=$!
	sleep 1.5
	ip netns exec $P-in "$B/greguard-gen" sink -i $P-i --seconds $((SECS + 2)) > "$TMP/sink" &
	sink=$!
	sleep 0.5
	classes=""
	[ "$2" -gt 0 ] && classes="--class tunnel=$2"
	[ "$3" = yes ] && classes="$classes --class unknown=0"
	# One generator process, a thread per class: the valid stream is paced and runs ahead of
	# the storm on CPU 0 (nice -19); the storm takes the rest of the CPU.
	# shellcheck disable=SC2086 # $classes is a list of options
	ip netns exec $P-out taskset -c 0 "$B/greguard-gen" blast -i $P-o -c "$TMP/policy.toml" \
		$classes --seconds "$SECS" > "$TMP/gen"
	wait $sink $box
	storm_rate=$(sed -n 's/^rate unknown \([0-9]*\) pps.*/\1/p' "$TMP/gen")
	forwarded=$(awk '$1 == "outside" && $2 == "forward" && $3 == "tunnel" { print $4 }' "$TMP/box.out")
	shed=$(awk '$1 == "outside" && $2 == "drop" && $3 == "unknown_tunnel" { print $4 }' "$TMP/box.out")
	echo "$(field tunnel "$TMP/gen") ${forwarded:-0} $(field tunnel "$TMP/sink") ${storm_rate:-0}" \
		"$(field xdp_rx_ring_full "$TMP/box.out") ${shed:-0}"
	teardown
}

# rate FASTLANE|wire -> non-GRE frames per second delivered
passthrough() {
	topology
	if [ "$1" = wire ]; then
		ip netns exec $P-box "$B/greguard-gen" wire --from $P-bo --to $P-bi --seconds $((SECS + 3)) \
			> /dev/null &
	else
		policy true > "$TMP/policy.toml"
		ip netns exec $P-box "$B/greguard" run -q -c "$TMP/policy.toml" --duration $((SECS + 4)) \
			> /dev/null 2>&1 &
	fi
	holder=$!
	sleep 1.5
	ip netns exec $P-in "$B/greguard-gen" sink -i $P-i --seconds $((SECS + 1)) > "$TMP/sink" &
	sink=$!
	sleep 0.3
	ip netns exec $P-out taskset -c 0 "$B/greguard-gen" blast -i $P-o -c "$TMP/policy.toml" \
		--class non_gre --seconds "$SECS" > /dev/null
	wait $sink $holder
	echo $(( $(field non_gre "$TMP/sink") / SECS ))
	teardown
}

policy true > "$TMP/policy.toml"   # for passthrough's generator in wire mode
echo "storm benchmark: valid tunnel GRE at $VALID_PPS pps for $SECS s under a storm of unknown-peer GRE"
echo "$(nproc) CPUs, kernel $(uname -r); layout: generators and the box's outside-port receive" \
	"(veth runs it on the sender's CPU) on CPU 0, greguard's worker on CPU 1"
pct() { awk -v s="$1" -v d="$2" 'BEGIN { printf "%.3f%%", s ? 100 * d / s : 0 }'; }
printf '%-26s %9s %9s %9s %9s %9s %10s %9s\n' case sent forwarded "" arrived "" "storm pps" ring_full
for fl in true false; do
	for storm in no yes; do
		set -- $(run $fl "$VALID_PPS" $storm)
		label="fast lane $([ $fl = true ] && echo on || echo off), $([ $storm = yes ] && echo storm || echo no storm)"
		printf '%-26s %9s %9s %9s %9s %9s %10s %9s\n' "$label" "$1" "$2" "$(pct "$1" "$2")" \
			"$3" "$(pct "$1" "$3")" "$4" "$5"
	done
done
echo "forwarded: valid frames greguard sent on (its final report); arrived: what the inside host"
echo "counted; ring_full: frames the outside socket's full RX ring lost (XDP_STATISTICS)"
echo
for fl in true false; do
	set -- $(run $fl 0 yes)
	printf 'storm alone, fast lane %-3s: %s pps generated; greguard dropped %s frames as unknown_tunnel (%s of those sent)\n' \
		"$([ $fl = true ] && echo on || echo off)" "$4" "$6" "$(pct "$(field unknown "$TMP/gen")" "$6")"
done
lane=$(passthrough true)
wire=$(passthrough wire)
printf 'non-GRE pass-through: fast lane %s pps, bare XDP redirect %s pps (%s)\n' "$lane" "$wire" \
	"$(awk -v a="$lane" -v b="$wire" 'BEGIN { printf "%.1f%% of the bare redirect", b ? 100 * a / b : 0 }')"
