//! Every class of policy error: the exact line and column it points at and what it says.

fn err(text: &str) -> (usize, usize, String) {
    match config::load_str(text, "policy.toml") {
        Ok(_) => panic!("policy loaded but should not:\n{text}"),
        Err(e) => {
            assert_eq!(e.file, "policy.toml");
            let rendered = e.to_string();
            let (line, column) = (e.line.unwrap(), e.column.unwrap());
            assert!(
                rendered.starts_with(&format!("policy.toml:{line}:{column}: ")),
                "{rendered}"
            );
            (line, column, e.message)
        }
    }
}

/// Asserts the error position and that the message contains each of `parts`.
#[track_caller]
fn assert_err(text: &str, line: usize, column: usize, parts: &[&str]) {
    let (l, c, message) = err(text);
    assert_eq!((l, c), (line, column), "position of: {message}");
    for p in parts {
        assert!(message.contains(p), "{message:?} lacks {p:?}");
    }
}

const TUNNEL: &str =
    "[[tunnel]]\nname = \"berlin\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\n";

fn tunnel_with(extra: &str) -> String {
    format!("{TUNNEL}{extra}")
}

// ---- syntax, unknown keys, types -----------------------------------------------------------

#[test]
fn toml_syntax_error_points_at_the_break() {
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = eth1\n",
        3,
        10,
        &["invalid TOML", "quoted"],
    );
}

#[test]
fn duplicate_table_is_a_syntax_error_naming_the_key() {
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth1\"\n\n[ports]\n",
        5,
        2,
        &["duplicate key ports"],
    );
}

#[test]
fn unknown_top_level_table() {
    assert_err(
        "[defaults]\nnon_gre = \"drop\"\n\n[tunnels]\n",
        4,
        2,
        &[
            "unknown key \"tunnels\"",
            "allowed: ports, defaults, tunnel, sampling, metrics",
        ],
    );
}

#[test]
fn unknown_key_in_a_tunnel_is_at_the_key() {
    assert_err(
        &tunnel_with("mtu = 1400\n"),
        5,
        1,
        &[
            "tunnel \"berlin\": unknown key \"mtu\"",
            "allowed: name, peer, local, key",
        ],
    );
}

#[test]
fn unknown_key_in_an_inline_rate_table() {
    assert_err(
        &tunnel_with("rate = { pps = 10, burst = 5, per = \"s\" }\n"),
        5,
        31,
        &[
            "tunnel \"berlin\": rate: unknown key \"per\"",
            "allowed: pps, burst",
        ],
    );
}

#[test]
fn unknown_key_in_ports_sampling_metrics() {
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth1\"\nmtu = 9000\n",
        4,
        1,
        &["ports: unknown key \"mtu\""],
    );
    assert_err(
        "[sampling]\nrate = 5\n",
        2,
        1,
        &["sampling: unknown key \"rate\""],
    );
    assert_err(
        "[metrics]\nport = 9747\n",
        2,
        1,
        &["metrics: unknown key \"port\""],
    );
}

#[test]
fn type_error_version_zero_as_a_string() {
    assert_err(
        &tunnel_with("version = \"zero\"\n"),
        5,
        11,
        &["tunnel \"berlin\": version: invalid type: string \"zero\", expected an integer"],
    );
}

#[test]
fn type_errors_name_the_key() {
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth1\"\nfast_lane = \"yes\"\n",
        4,
        13,
        &["ports.fast_lane: invalid type: string \"yes\", expected a boolean"],
    );
    assert_err(
        &tunnel_with("rate = 5\n"),
        5,
        8,
        &["tunnel \"berlin\": rate: invalid type: integer `5`, expected a table"],
    );
    assert_err(
        &tunnel_with("key = true\n"),
        5,
        7,
        &[
            "key: invalid type: boolean `true`",
            "an integer 0-4294967295 or \"none\"",
        ],
    );
    assert_err(
        &tunnel_with("protocols = [\"ipv4\", 1.5]\n"),
        5,
        22,
        &["tunnel \"berlin\": protocols: invalid type: floating point `1.5`"],
    );
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth1\"\nqueues = true\n",
        4,
        10,
        &["ports.queues: invalid type: boolean `true`, expected \"all\" or an array"],
    );
}

#[test]
fn missing_required_keys() {
    assert_err(
        "[ports]\noutside = \"eth0\"\n",
        1,
        1,
        &["ports: missing key \"inside\""],
    );
    // A tunnel without a name is numbered instead.
    assert_err(
        &format!("{TUNNEL}\n[[tunnel]]\npeer = \"203.0.113.8\"\nlocal = \"198.51.100.10\"\n"),
        6,
        1,
        &["tunnel #2: missing key \"name\""],
    );
    assert_err(
        "[defaults]\nrate_limit = { pps = 10 }\n",
        2,
        14,
        &["defaults.rate_limit: missing key \"burst\""],
    );
}

#[test]
fn first_type_error_in_file_order_wins() {
    // [sampling] comes first in the file although serde's field order puts defaults first.
    assert_err(
        "[sampling]\nsnaplen = \"big\"\n\n[defaults]\nnon_gre = 1\n",
        2,
        11,
        &["sampling.snaplen"],
    );
}

// ---- rates -----------------------------------------------------------------------------------

#[test]
fn burst_zero_is_refused() {
    assert_err(
        &tunnel_with("rate = { pps = 100, burst = 0 }\n"),
        5,
        29,
        &["tunnel \"berlin\": rate.burst = 0 is out of range; allowed: 1-1000000000"],
    );
}

#[test]
fn pps_zero_and_too_large_are_refused() {
    assert_err(
        "[defaults]\nrate_limit = { pps = 0, burst = 10 }\n",
        2,
        22,
        &["defaults.rate_limit.pps = 0 is out of range; allowed: 1-1000000000"],
    );
    assert_err(
        &tunnel_with("rate = { pps = 1000000001, burst = 1 }\n"),
        5,
        16,
        &["rate.pps = 1000000001 is out of range"],
    );
}

// ---- version, key, protocols -------------------------------------------------------------------

#[test]
fn version_other_than_0_or_1() {
    assert_err(
        &tunnel_with("version = 2\n"),
        5,
        11,
        &[
            "tunnel \"berlin\": version = 2 is not allowed; allowed: 0",
            "or 1",
        ],
    );
}

#[test]
fn ppp_needs_version_1() {
    assert_err(
        &tunnel_with("protocols = [\"ipv4\", \"ppp\"]\n"),
        5,
        22,
        &["tunnel \"berlin\": protocol \"ppp\" (PPP) needs version = 1"],
    );
    // The number of PPP is the same protocol.
    assert_err(
        &tunnel_with("protocols = [\"0x880B\"]\n"),
        5,
        14,
        &["protocol \"0x880B\" (PPP) needs version = 1"],
    );
}

#[test]
fn version_1_allows_only_ppp() {
    assert_err(
        &tunnel_with("version = 1\nprotocols = [\"ppp\", \"ipv4\"]\n"),
        6,
        21,
        &["protocol \"ipv4\" is not allowed with version = 1; PPTP carries only \"ppp\""],
    );
}

#[test]
fn version_1_refuses_any_key() {
    for (body, line) in [
        ("version = 1\nkey = 7\n", 6),
        ("key = \"none\"\nversion = 1\n", 5),
    ] {
        assert_err(
            &tunnel_with(body),
            line,
            7,
            &["key is not allowed with version = 1", "receiver's call ID"],
        );
    }
}

#[test]
fn version_1_refuses_checksum_require() {
    assert_err(
        &tunnel_with("version = 1\nchecksum = \"require\"\n"),
        6,
        12,
        &["checksum = \"require\" would drop every packet"],
    );
}

#[test]
fn key_out_of_range_or_misspelled() {
    assert_err(
        &tunnel_with("key = 4294967296\n"),
        5,
        7,
        &["key = 4294967296 is out of range; allowed: 0-4294967295 or \"none\""],
    );
    assert_err(
        &tunnel_with("key = -1\n"),
        5,
        7,
        &["key = -1 is out of range"],
    );
    assert_err(
        &tunnel_with("key = \"any\"\n"),
        5,
        7,
        &["key = \"any\" is not allowed; allowed: an integer 0-4294967295 or \"none\""],
    );
}

#[test]
fn unknown_protocol_lists_the_allowed_ones() {
    let (line, column, message) = err(&tunnel_with("protocols = [\"ipv4\", \"ipx\"]\n"));
    assert_eq!((line, column), (5, 22));
    assert_eq!(
        message,
        "tunnel \"berlin\": unknown protocol \"ipx\"; allowed: ipv4, ipv6, teb, ppp, mpls, erspan2, erspan3, nhrp, wccp, keepalive or a number 0x0000-0xffff"
    );
}

#[test]
fn protocol_numbers_out_of_range() {
    assert_err(
        &tunnel_with("protocols = [\"0x12345\"]\n"),
        5,
        14,
        &["protocol \"0x12345\" is not a 16-bit protocol type"],
    );
    assert_err(
        &tunnel_with("protocols = [65536]\n"),
        5,
        14,
        &["protocol 65536 is out of range; allowed: 0-65535"],
    );
}

#[test]
fn empty_protocols_list() {
    assert_err(
        &tunnel_with("protocols = []\n"),
        5,
        13,
        &["tunnel \"berlin\": protocols = [] allows nothing"],
    );
}

// ---- tunnel identity ---------------------------------------------------------------------------

#[test]
fn duplicate_tunnel_names() {
    let text = format!(
        "{TUNNEL}key = 1\n\n[[tunnel]]\nname = \"berlin\"\npeer = \"203.0.113.8\"\nlocal = \"198.51.100.10\"\n"
    );
    assert_err(
        &text,
        8,
        8,
        &["tunnel \"berlin\": name already used by the tunnel at line 2"],
    );
}

#[test]
fn tunnel_names_must_be_label_safe() {
    assert_err(
        "[[tunnel]]\nname = \"a,b\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\n",
        2,
        8,
        &["tunnel name \"a,b\" is not allowed"],
    );
}

#[test]
fn indistinguishable_tunnels_name_the_other_one() {
    let text = format!(
        "{TUNNEL}key = 7\n\n[[tunnel]]\nname = \"berlin-backup\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\nkey = 7\n"
    );
    assert_err(
        &text,
        8,
        8,
        &[
            "tunnel \"berlin-backup\": same peer, local and key as tunnel \"berlin\" (line 2)",
            "no packet could tell them apart",
        ],
    );
}

#[test]
fn prefix_tunnels_without_keys_collide() {
    // No key on either: every packet between these prefixes would match both.
    let text = "[[tunnel]]\nname = \"a\"\npeer = \"192.0.2.0/24\"\nlocal = \"198.51.100.1\"\n\n[[tunnel]]\nname = \"b\"\npeer = \"192.0.2.0/24\"\nlocal = \"198.51.100.1\"\n";
    assert_err(
        text,
        7,
        8,
        &["same peer, local and key as tunnel \"a\" (line 2)"],
    );
}

#[test]
fn mixed_address_families() {
    assert_err(
        "[[tunnel]]\nname = \"x\"\npeer = \"203.0.113.7\"\nlocal = \"2001:db8::1\"\n",
        4,
        9,
        &["tunnel \"x\": local = \"2001:db8::1\" is IPv6 but peer = \"203.0.113.7\" is IPv4"],
    );
}

// ---- addresses ---------------------------------------------------------------------------------

fn with_peer(peer: &str) -> String {
    format!("[[tunnel]]\nname = \"x\"\npeer = \"{peer}\"\nlocal = \"198.51.100.10\"\n")
}

#[test]
fn garbage_addresses() {
    for bad in [
        "berlin",
        "203.0.113",
        "203.0.113.7/",
        "203.0.113.7/x",
        "1.2.3.4 ",
    ] {
        assert_err(
            &with_peer(bad),
            3,
            8,
            &[
                "tunnel \"x\": peer =",
                "is not an IPv4 or IPv6 address or prefix",
            ],
        );
    }
}

#[test]
fn prefix_length_beyond_the_family() {
    assert_err(
        &with_peer("203.0.113.0/33"),
        3,
        8,
        &["prefix length 33 is longer than an IPv4 address; allowed: 0-32"],
    );
    assert_err(
        "[[tunnel]]\nname = \"x\"\npeer = \"2001:db8::/129\"\nlocal = \"2001:db8::1\"\n",
        3,
        8,
        &["prefix length 129 is longer than an IPv6 address; allowed: 0-128"],
    );
}

#[test]
fn host_bits_in_a_prefix_say_which_prefix_was_meant() {
    assert_err(
        &with_peer("10.0.0.1/8"),
        3,
        8,
        &[
            "peer = \"10.0.0.1/8\" has host bits set",
            "did you mean \"10.0.0.0/8\" (the network) or \"10.0.0.1\"",
        ],
    );
    assert_err(
        "[[tunnel]]\nname = \"x\"\npeer = \"2001:db8::1\"\nlocal = \"2001:db8:1::5/48\"\n",
        4,
        9,
        &["local = \"2001:db8:1::5/48\" has host bits set; did you mean \"2001:db8:1::/48\""],
    );
}

// ---- ports -------------------------------------------------------------------------------------

fn ports(extra: &str) -> String {
    format!("[ports]\noutside = \"eth0\"\ninside = \"eth1\"\n{extra}")
}

#[test]
fn same_interface_for_both_ports() {
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth0\"\n",
        3,
        10,
        &["ports.inside = \"eth0\" is also ports.outside"],
    );
}

#[test]
fn interface_names_follow_the_kernel_rules() {
    assert_err(
        "[ports]\noutside = \"a-very-long-interface\"\ninside = \"eth1\"\n",
        2,
        11,
        &["ports.outside = \"a-very-long-interface\" is not a valid interface name"],
    );
    assert_err(
        "[ports]\noutside = \"eth0\"\ninside = \"eth 1\"\n",
        3,
        10,
        &["ports.inside = \"eth 1\" is not a valid interface name"],
    );
}

#[test]
fn queues_must_be_all_or_a_unique_nonempty_list() {
    assert_err(&ports("queues = []\n"), 4, 10, &["ports.queues is empty"]);
    assert_err(
        &ports("queues = [0, 1, 0]\n"),
        4,
        17,
        &["ports.queues: queue 0 is listed twice"],
    );
    assert_err(
        &ports("queues = \"any\"\n"),
        4,
        10,
        &["ports.queues = \"any\" is not allowed; allowed: \"all\" or an array"],
    );
    assert_err(
        &ports("queues = [-1]\n"),
        4,
        11,
        &["ports.queues = -1 is out of range"],
    );
}

#[test]
fn cores_must_be_unique_and_one_per_queue() {
    assert_err(
        &ports("cores = [2, 3, 2]\n"),
        4,
        16,
        &["ports.cores: core 2 is listed twice"],
    );
    assert_err(&ports("cores = []\n"), 4, 9, &["ports.cores is empty"]);
    assert_err(
        &ports("queues = [0, 1]\ncores = [2, 3, 4]\n"),
        5,
        9,
        &["ports.cores lists 3 cores for 2 queues; give one core per queue"],
    );
}

#[test]
fn port_choices() {
    assert_err(
        &ports("xdp_mode = \"native\"\n"),
        4,
        12,
        &["ports.xdp_mode = \"native\" is not allowed; allowed: auto, zerocopy, copy, skb"],
    );
    assert_err(
        &ports("frame_size = 3000\n"),
        4,
        14,
        &["ports.frame_size = 3000 is not allowed; allowed: 2048 or 4096"],
    );
    assert_err(
        &ports("on_failure = \"bypass\"\n"),
        4,
        14,
        &["ports.on_failure = \"bypass\" is not allowed; allowed: open, closed"],
    );
}

// ---- defaults ----------------------------------------------------------------------------------

#[test]
fn invalid_gre_is_never_forwarded() {
    assert_err(
        "[defaults]\ninvalid_gre = \"forward\"\n",
        2,
        15,
        &[
            "defaults.invalid_gre = \"forward\" is not allowed",
            "allowed: drop, rate-limit",
        ],
    );
}

#[test]
fn default_choices() {
    assert_err(
        "[defaults]\nunknown_tunnel = \"reject\"\n",
        2,
        18,
        &["defaults.unknown_tunnel = \"reject\" is not allowed; allowed: forward, drop, rate-limit"],
    );
    assert_err(
        "[defaults]\nnon_gre = \"rate-limit\"\n",
        2,
        11,
        &["defaults.non_gre = \"rate-limit\" is not allowed; allowed: forward, drop"],
    );
    assert_err(
        "[defaults]\nfragments = \"forward\"\n",
        2,
        13,
        &["allowed: drop, tunnel"],
    );
    assert_err(
        "[defaults]\nreserved_bits = \"keep\"\n",
        2,
        17,
        &["allowed: drop, ignore"],
    );
    assert_err(
        "[defaults]\nbogons = \"allow\"\n",
        2,
        10,
        &["allowed: drop, ignore"],
    );
}

#[test]
fn tunnel_flag_rules() {
    assert_err(
        &tunnel_with("sequence = \"must\"\n"),
        5,
        12,
        &["tunnel \"berlin\": sequence = \"must\" is not allowed; allowed: allow, require, forbid"],
    );
}

// ---- sampling and metrics ----------------------------------------------------------------------

#[test]
fn sampling_bounds() {
    assert_err(
        "[sampling]\nsnaplen = 32\n",
        2,
        11,
        &["sampling.snaplen = 32 is out of range; allowed: 64-65535"],
    );
    assert_err(
        "[sampling]\npcap_rotate_mb = 0\n",
        2,
        18,
        &["sampling.pcap_rotate_mb = 0 is out of range; allowed: 1-"],
    );
    assert_err(
        "[sampling]\npcap_keep = 0\n",
        2,
        13,
        &["sampling.pcap_keep = 0 is out of range; allowed: 1-"],
    );
    assert_err(
        "[sampling]\ninvalid = -5\n",
        2,
        11,
        &["sampling.invalid = -5 is out of range"],
    );
    assert_err(
        "[sampling]\npcap_dir = \"samples\"\n",
        2,
        12,
        &["sampling.pcap_dir = \"samples\" is not an absolute path"],
    );
}

#[test]
fn metrics_listen_must_be_an_address_and_port() {
    assert_err(
        "[metrics]\nlisten = \"localhost:9747\"\n",
        2,
        10,
        &["metrics.listen = \"localhost:9747\" is not an IP address and port"],
    );
}

// ---- ordering and I/O --------------------------------------------------------------------------

#[test]
fn the_earliest_error_in_the_file_is_reported() {
    // Three problems; the tunnel's comes first in the file, before [defaults] and [ports].
    let text = format!(
        "{}\n[defaults]\ninvalid_gre = \"forward\"\n\n[ports]\noutside = \"eth0\"\ninside = \"eth0\"\n",
        tunnel_with("version = 9\n")
    );
    assert_err(&text, 5, 11, &["version = 9"]);
}

#[test]
fn unreadable_file_has_no_position() {
    let path = std::path::Path::new("/nonexistent/greguard/policy.toml");
    let e = config::load_file(path).unwrap_err();
    assert_eq!((e.line, e.column), (None, None));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/greguard/policy.toml: cannot read policy: "),
        "{e}"
    );
}

#[test]
fn errors_from_files_name_the_file() {
    let dir = std::env::temp_dir().join(format!("greguard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, tunnel_with("version = 5\n")).unwrap();
    let e = config::load_file(&path).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:5:11: tunnel \"berlin\": version = 5 is not allowed; allowed: 0 (GRE, RFC 2784/2890) or 1 (PPTP enhanced GRE, RFC 2637)",
            path.display()
        )
    );
}
