//! The `/metrics` endpoint: every series from the start, and the books add up after traffic.

use super::*;

/// `GET /metrics` from inside the box's namespace (its loopback is its own).
pub(super) fn scrape(t: &Topology) -> String {
    common::netns::in_netns(&t.box_ns, || {
        let mut s = TcpStream::connect("127.0.0.1:9747").expect("connect to /metrics");
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read /metrics");
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    })
    .join()
    .expect("scrape")
}

/// The value of the series `name{labels}` (labels in the exporter's order).
pub(super) fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no series {name_and_labels} in:\n{text}"))
}

/// The sum of every series of `name` whose labels contain `label`.
pub(super) fn sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_exist_from_start_and_add_up_after_traffic() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    std::thread::sleep(Duration::from_millis(400));
    let fresh = scrape(&t);
    // Every port × verdict × reason series exists, at zero for everything but chatter.
    let combos = fresh
        .lines()
        .filter(|l| l.starts_with("greguard_packets_total{"))
        .count();
    assert_eq!(combos, 2 * 2 * validator::Reason::COUNT, "{fresh}");
    assert_eq!(
        series(
            &fresh,
            r#"greguard_packets_total{port="outside",verdict="drop",reason="unknown_tunnel"}"#
        ),
        0.0
    );
    for name in ["berlin-branch", "paris-pool", "pptp-users"] {
        assert_eq!(
            series(
                &fresh,
                &format!(r#"greguard_tunnel_packets_total{{tunnel="{name}",verdict="forward"}}"#)
            ),
            0.0
        );
    }
    assert_eq!(
        series(
            &fresh,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="copy"}"#
        ),
        1.0
    );
    assert_eq!(
        series(
            &fresh,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="zerocopy"}"#
        ),
        0.0
    );
    assert_eq!(
        series(&fresh, r#"greguard_policy_reloads_total{result="error"}"#),
        0.0
    );
    assert_eq!(series(&fresh, "greguard_policy_generation"), 1.0);

    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--count", "5000", "--pps", "20000"],
    );
    std::thread::sleep(Duration::from_millis(700));
    let after = scrape(&t);
    // The counting invariant, from the scrape alone.
    for port in ["outside", "inside"] {
        let label = format!(r#"port="{port}""#);
        let counted = sum(&after, "greguard_packets_total", &label);
        let judged = format!(r#"port="{port}",path="judged""#);
        let received = sum(&after, "greguard_rx_packets_total", &label)
            + sum(&after, "greguard_kernel_oversize_total", &label)
            + sum(&after, "greguard_fast_lane_packets_total", &judged);
        assert_eq!(counted, received, "{port}:\n{after}");
    }
    // Every unknown, invalid and bogon frame was dropped, and unknown_tunnel holds at least the
    // unknown class (the kernel and the validator give the same reasons: docs/fast-lane.md).
    let garbage = [Class::Unknown, Class::Invalid, Class::Bogon]
        .iter()
        .map(|c| sent.frames[c.index()])
        .sum::<u64>();
    assert_eq!(
        sum(
            &after,
            "greguard_packets_total",
            r#"port="outside",verdict="drop""#
        ),
        garbage as f64
    );
    assert!(
        series(
            &after,
            r#"greguard_packets_total{port="outside",verdict="drop",reason="unknown_tunnel"}"#
        ) >= sent.frames[Class::Unknown.index()] as f64
    );
    assert_eq!(series(&after, "greguard_fast_lane"), 1.0);
    let tunnel_fwd = sum(
        &after,
        "greguard_tunnel_packets_total",
        r#"verdict="forward""#,
    );
    assert_eq!(
        tunnel_fwd,
        (sent.frames[Class::Tunnel.index()] + sent.frames[Class::Keepalive.index()]) as f64
    );
    assert!(series(&after, "greguard_samples_total") > 0.0);
    // The backscatter view: the top sources of dropped GRE, by rank. A source that held rank 1
    // earlier and lost it shows 0 there until its series expires: one source holds it now.
    let first: Vec<f64> = after
        .lines()
        .filter(|l| l.starts_with(r#"greguard_top_dropped_source_samples{rank="1",source=""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .collect();
    assert_eq!(
        first.iter().filter(|&&v| v >= 1.0).count(),
        1,
        "rank 1 in:\n{after}"
    );
    assert_eq!(
        series(&after, r#"greguard_samples_shed_total{stage="pcap"}"#),
        0.0
    );
    assert_eq!(
        series(&after, r#"greguard_samples_shed_total{stage="top"}"#),
        0.0
    );
    // Gauges set once at start are still there (they are re-set at every publication).
    assert_eq!(
        series(
            &after,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="copy"}"#
        ),
        1.0
    );

    // Names and help texts pass promtool (Debian package prometheus, installed by make deps).
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = check.expect("promtool (apt-get install prometheus, or make deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    gre_box.stop();
}
