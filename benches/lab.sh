# shellcheck shell=sh
# What the benchmark scripts share: the lab's layout and its tunnels. Sourced with P (a name
# prefix, short enough for interface names) and TMP (a scratch directory) set; the caller
# removes its namespaces on exit.
#
#  $P-out [$P-o] ──veth── [$P-bo] $P-box [$P-bi] ──veth── [$P-i] $P-in

BENCHES=$(dirname "$0")

# Cleans up after the caller: its namespaces and TMP (for `trap cleanup EXIT INT TERM`).
cleanup() {
	for ns in out box in; do ip netns del $P-$ns 2>/dev/null || true; done
	rm -rf "$TMP"
}

topology() {
	for ns in out box in; do ip netns add $P-$ns; done
	ip link add $P-o type veth peer name $P-bo
	ip link add $P-bi type veth peer name $P-i
	ip link set $P-o netns $P-out; ip link set $P-bo netns $P-box
	ip link set $P-bi netns $P-box; ip link set $P-i netns $P-in
	ip -n $P-out link set $P-o up; ip -n $P-box link set $P-bo up
	ip -n $P-box link set $P-bi up; ip -n $P-in link set $P-i up
	# A queue on the box's ports: a full peer ring stops the veth queue instead of dropping
	# (kernel 6.16+), so the box's AF_XDP transmit waits as it would for a NIC's TX ring.
	for i in $P-bo $P-bi; do tc -n $P-box qdisc replace dev $i root pfifo; done
	# The inside host stands for the concentrator, another machine: its veth receive runs in
	# a NAPI thread on CPU 0, not on the box's CPU (where veth would otherwise run it), and
	# ahead of the generators there (nice -19), so that what it counts is what the box sent.
	ip netns exec $P-in ethtool -K $P-i gro on > /dev/null
	ip netns exec $P-in sh -c "echo 1 > /sys/class/net/$P-i/threaded"
	for t in $(pgrep -f "napi/$P-i-"); do
		taskset -pc "${INSIDE_CPU:-0}" "$t" > /dev/null
		renice -n -19 -p "$t" > /dev/null
	done
}

# box_receive_on CPU: the box's outside veth receives in a NAPI thread on CPU (its XDP
# program, the copy into the UMEM, the bridge), instead of inline on the sender's CPU. Needs
# GRO or an XDP program on the box's outside veth to take effect.
box_receive_on() {
	ip netns exec $P-box sh -c "echo 1 > /sys/class/net/$P-bo/threaded"
	for t in $(pgrep -f "napi/$P-bo-"); do taskset -pc "$1" "$t" > /dev/null; done
}

teardown() { for ns in out box in; do ip netns del $P-$ns; done; }

# The lab's tunnels (traffic::LAB_TUNNELS) as policy text.
lab_tunnels() {
	sed -n '/LAB_TUNNELS: &str/,/^"#;/p' "$BENCHES/../traffic/src/lib.rs" | sed '1d;$d'
}

# policy FAST_LANE [TUNNEL_PATH [CORE]]: the lab's tunnels behind [ports] for this topology
# (tunnel_path as greguard's default, auto, unless given; the worker on CORE, default 1).
policy() {
	printf '[ports]\noutside = "%s"\ninside = "%s"\nfast_lane = %s\ncores = [%s]\nring_size = 8192\n' \
		$P-bo $P-bi "$1" "${3:-1}"
	[ -n "${2:-}" ] && printf 'tunnel_path = "%s"\n' "$2"
	lab_tunnels
}

# wait_for TEXT FILE: until TEXT is in FILE (10 s at most).
wait_for() { for _ in $(seq 100); do grep -q "$1" "$2" && return; sleep 0.1; done; }

# field NAME FILE: the number after NAME= on the first line of FILE that has one.
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$2" | head -1; }
