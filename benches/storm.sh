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
cleanup() {
	for ns in out box in; do ip netns del $P-$ns 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

topology() {
	for ns in out box in; do ip netns add $P-$ns; done
	ip link add $P-o type veth peer name $P-bo
	ip link add $P-bi type veth peer name $P-i
	ip link set $P-o netns $P-out; ip link set $P-bo netns $P-box
	ip link set $P-bi netns $P-box; ip link set $P-i netns $P-in
	ip -n $P-out link set $P-o up; ip -n $P-box link set $P-bo up
	ip -n $P-box link set $P-bi up; ip -n $P-in link set $P-i up
	# The inside host stands for the concentrator, another machine: its veth receive runs in
	# a NAPI thread on CPU 0, not on the box's CPU (where veth would otherwise run it).
	ip netns exec $P-in ethtool -K $P-i gro on > /dev/null
	ip netns exec $P-in sh -c "echo 1 > /sys/class/net/$P-i/threaded"
	for t in $(pgrep -f "napi/$P-i-"); do taskset -pc 0 "$t" > /dev/null; done
}
teardown() { for ns in out box in; do ip netns del $P-$ns; done; }

# The lab's tunnels behind [ports] for this topology.
policy() {
	printf '[ports]\noutside = "%s"\ninside = "%s"\nfast_lane = %s\ncores = [1]\nring_size = 8192\n' \
		$P-bo $P-bi "$1"
	sed -n '/LAB_TUNNELS: &str/,/^"#;/p' "$(dirname "$0")/../traffic/src/lib.rs" | sed '1d;$d'
}

field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$2" | head -1; }

# run FASTLANE STORM(yes|no) -> prints "sent delivered"
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
	ip netns exec $P-out taskset -c 0 "$B/greguard-gen" blast -i $P-o -c "$TMP/policy.toml" \
		--class tunnel --pps "$VALID_PPS" --seconds "$SECS" > "$TMP/valid" &
	valid=$!
	if [ "$2" = yes ]; then
		ip netns exec $P-out taskset -c 0 "$B/greguard-gen" blast -i $P-o -c "$TMP/policy.toml" \
			--class unknown --seconds "$SECS" > "$TMP/storm"
	fi
	wait $valid $sink $box
	storm_rate=$( [ "$2" = yes ] && sed -n 's/^rate \([0-9]*\) pps.*/\1/p' "$TMP/storm" || echo 0)
	forwarded=$(awk '$1 == "outside" && $2 == "forward" && $3 == "tunnel" { print $4 }' "$TMP/box.out")
	echo "$(field tunnel "$TMP/valid") ${forwarded:-0} $(field tunnel "$TMP/sink") $storm_rate"
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
echo "storm benchmark: valid tunnel GRE at $VALID_PPS pps for $SECS s; generators on CPU 0, greguard on CPU 1"
echo "$(nproc) CPUs, kernel $(uname -r)"
pct() { awk -v s="$1" -v d="$2" 'BEGIN { printf "%.2f%%", s ? 100 * d / s : 0 }'; }
printf '%-28s %10s %10s %8s %10s %8s %12s\n' case sent forwarded "" arrived "" "storm pps"
for fl in true false; do
	for storm in no yes; do
		set -- $(run $fl $storm)
		label="fast lane $([ $fl = true ] && echo on || echo off), $([ $storm = yes ] && echo storm || echo no storm)"
		printf '%-28s %10s %10s %8s %10s %8s %12s\n' "$label" "$1" "$2" "$(pct "$1" "$2")" \
			"$3" "$(pct "$1" "$3")" "$4"
	done
done
echo "forwarded: valid frames greguard sent on (its final report); arrived: what the inside host counted"
lane=$(passthrough true)
wire=$(passthrough wire)
echo
printf 'non-GRE pass-through: fast lane %s pps, bare XDP redirect %s pps (%s)\n' "$lane" "$wire" \
	"$(awk -v a="$lane" -v b="$wire" 'BEGIN { printf "%.1f%% of the bare redirect", b ? 100 * a / b : 0 }')"
