//! The AF_XDP data path: two ports (outside, inside), one worker per queue pair pinned to its
//! core, one UMEM per worker shared by its two sockets.
//!
//! [`DataPath::start`] checks privileges and interfaces, detaches what a crashed greguard left
//! attached (and refuses to touch anyone else's XDP program), binds every socket in the main
//! thread — so a refusal is reported before any worker runs — then starts the workers.
//! [`DataPath::stop`] stops them, closes the sockets and makes sure no XDP program is left on
//! either port.
//!
//! The frames are judged by the `validator` crate; this crate moves them. It holds the
//! product's `unsafe` code: xsk-rs marks every ring operation unsafe because the caller must not
//! hand the kernel a frame twice, and the fast lane maps BPF maps and ring buffers. Each block
//! says why it holds.

pub mod bpf;
pub mod cores;
pub mod error;
pub mod kernel_abi;
pub mod lane;
pub mod link;
pub mod log;
pub mod mode;
pub mod port;
pub mod prefixes;
pub mod reload;
pub mod sample;
pub mod stats;
pub mod tunnels;
pub mod worker;

use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use xsk_rs::config::{FrameSize, QueueSize, UmemConfig};
use xsk_rs::Umem;

pub use error::Error;
pub use link::Link;
pub use mode::XdpMode;
pub use port::Port;
pub use sample::{Rates as SamplingRates, Sample, SampleReader};
pub use stats::{FrameLedger, PortCounters, Snapshot, WorkerStats};
pub use worker::{Worker, WorkerConfig, WorkerReport, MAX_BATCH};

use validator::policy::Policy;

/// Ring and batch sizes the policy may ask for, and its defaults.
pub use config::{DEFAULT_BATCH_SIZE, DEFAULT_RING_SIZE, MAX_BATCH_SIZE};

/// The kernel's headroom in front of every AF_XDP frame (`XDP_PACKET_HEADROOM`).
const XDP_HEADROOM: u32 = 256;

/// What the data path is asked to do (the `[ports]` table, resolved).
#[derive(Clone, Debug)]
pub struct PortsSpec {
    pub outside: String,
    pub inside: String,
    /// Queue ids to serve; `None` = every RX queue both interfaces have.
    pub queues: Option<Vec<u32>>,
    /// One core per queue; `None` = the cores after core 0, wrapping around.
    pub cores: Option<Vec<u32>>,
    pub mode: XdpMode,
    pub frame_size: u32,
    pub ring_size: u32,
    pub batch_size: u32,
    /// How often frames are sampled for the slow path (`[sampling]`).
    pub sampling: sample::Rates,
    /// Load greguard's XDP program (the fast lane) instead of libxdp's default one.
    pub fast_lane: bool,
    /// What the fast lane does once no socket serves a queue.
    pub on_failure: lane::OnFailure,
    /// Which path judges tunnel traffic (with the fast lane on).
    pub tunnel_path: config::TunnelPath,
}

impl PortsSpec {
    /// UMEM frames per worker: enough for both fill rings full plus RX and TX rings in flight.
    pub fn frames_per_worker(&self) -> u32 {
        self.ring_size * 4
    }

    /// Bytes of frame data a UMEM frame holds.
    pub fn frame_capacity(&self) -> u32 {
        self.frame_size - XDP_HEADROOM
    }
}

/// One bound socket, as reported at start.
#[derive(Clone, Debug)]
pub struct Binding {
    pub worker: usize,
    pub core: u32,
    pub port: &'static str,
    pub interface: String,
    pub queue: u32,
    pub mode: XdpMode,
}

/// Something worth telling the operator at start-up that is not an error.
pub type Notice = String;

/// The running data path.
pub struct DataPath {
    links: [Link; 2],
    bindings: Vec<Binding>,
    stats: Vec<Arc<WorkerStats>>,
    /// `None` from a worker that could not be pinned and never ran.
    workers: Vec<JoinHandle<Option<WorkerReport>>>,
    stop: Arc<AtomicBool>,
    /// Program ids attached once all sockets were bound (detached again at stop).
    programs: [Option<u32>; 2],
    /// greguard's own XDP program, when the fast lane runs.
    lane: Option<lane::FastLane>,
    /// Tells the program greguard is alive, so a queue without a socket is not taken for a
    /// dead daemon (started once every socket is bound).
    heartbeat: Option<lane::Heartbeat>,
    /// Leave the fast lane attached at stop (`--keep-bypass`).
    keep_bypass: bool,
    /// Per port (outside, inside): the fast lane's kernel path forwards its tunnel traffic.
    kernel_tunnels: [bool; 2],
    /// The consuming ends of the workers' sample rings, until taken.
    samples: Vec<SampleReader>,
    /// CLOCK_MONOTONIC at `epoch`, for the fast lane's samples.
    epoch_ns: u64,
    /// The clock the workers' policers run on.
    epoch: std::time::Instant,
    /// The running policy and its generation (1 at start).
    policy: Arc<Policy>,
    /// The running policy's policers, shared by every worker (the budget also by the kernel).
    buckets: validator::classify::Buckets,
    generation: u64,
    /// Per worker: the mailbox for new policies and the ring the replaced ones come back in.
    reloads: Vec<rtrb::Producer<Box<reload::PolicyState>>>,
    retired: Vec<rtrb::Consumer<Box<reload::PolicyState>>>,
    /// Replaced policies some worker may still hold (one reference each).
    retiring: Vec<Arc<Policy>>,
    /// A replaced policy no one holds any more, for the next one to be built in.
    spare: Option<Policy>,
}

/// Why a reload was not handed to the workers.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("worker {worker} has not yet taken the previous reloads; try again in a moment")]
    Busy { worker: usize },
    #[error("the fast lane's maps could not be updated ({0}); the running policy stays")]
    Lane(String),
}

impl DataPath {
    /// Binds both ports and starts the workers. `notice` receives what the operator should see
    /// (stale programs detached, links down).
    pub fn start(
        spec: &PortsSpec,
        policy: Arc<Policy>,
        mut notice: impl FnMut(Notice),
    ) -> Result<DataPath, Error> {
        let missing = link::missing_capabilities();
        if !missing.is_empty() {
            return Err(Error::Privilege { missing });
        }
        let links = [
            Link::open("outside", &spec.outside)?,
            Link::open("inside", &spec.inside)?,
        ];
        for l in &links {
            clear_stale_program(l, spec.fast_lane, &mut notice)?;
            if !l.is_up() {
                notice(format!(
                    "{} interface {} is down; no frame will arrive until `ip link set dev {} up`",
                    l.port, l.name, l.name
                ));
            }
        }
        let queues = resolve_queues(spec, &links)?;
        let cores = cores::resolve(spec, queues.len())?;
        let (mut fast_lane, requested) = if spec.fast_lane {
            match start_lane(spec, &links, &policy) {
                Ok((lane, how)) => {
                    let mode = match (how, spec.mode) {
                        (lane::Attach::Generic, _) => XdpMode::Skb,
                        (lane::Attach::Native, m) => m,
                    };
                    (Some(lane), mode)
                }
                Err(e) => {
                    notice(format!(
                        "fast lane off: {e}; running the AF_XDP path alone (every frame goes through user space)"
                    ));
                    for l in &links {
                        clear_stale_program(l, false, &mut notice)?;
                    }
                    (None, spec.mode)
                }
            }
        } else {
            (None, spec.mode)
        };
        let inhibit = fast_lane.is_some();

        let stop = Arc::new(AtomicBool::new(false));
        let epoch = std::time::Instant::now();
        let epoch_ns = lane::monotonic_ns();
        // One set of policers for every worker; the budget of the rate-limit actions lives in
        // the fast lane's map when it runs, so the kernel drops what it would refuse.
        let budget = match fast_lane.as_ref() {
            Some(l) => Some(l.budget_cell().map_err(|e| Error::Lane(e.to_string()))?),
            None => None,
        };
        let buckets = match fast_lane.as_ref() {
            // Each tunnel's policer lives in the lane's map, which the kernel path takes from.
            Some(l) => {
                validator::classify::Buckets::with_cells(&policy, 0, epoch_ns, budget, &|i| {
                    l.tunnel_cell(i)
                })
            }
            None => validator::classify::Buckets::new(&policy, 0, epoch_ns, budget),
        };
        // Bind every socket before any worker runs. If one is refused, the sockets bound so far
        // are dropped with `prepared`, and any program they attached (none was attached when
        // the ports were checked above) is detached, so a failed start leaves nothing behind.
        let bound = (|| -> Result<_, Error> {
            let mut bindings = Vec::new();
            let mut prepared = Vec::new();
            let mut samples = Vec::new();
            let mut mailboxes = Vec::new();
            let mut returns = Vec::new();
            let mut mode = [requested; 2];
            for (w, (&queue, &core)) in queues.iter().zip(&cores).enumerate() {
                let (umem, descs) = umem(spec)?;
                let mut open = |i: usize| -> Result<Port, Error> {
                    let port =
                        Port::open(&umem, &links[i], queue, mode[i], spec.ring_size, inhibit)?;
                    if let Some(lane) = fast_lane.as_mut() {
                        let dir = if i == 0 {
                            validator::reason::Direction::FromOutside
                        } else {
                            validator::reason::Direction::FromInside
                        };
                        lane.add_socket(dir, queue, port.rx.fd().as_raw_fd())
                            .map_err(|e| Error::Lane(e.to_string()))?;
                    }
                    // Every later queue of this interface binds in the mode the first one got.
                    mode[i] = port.mode;
                    Ok(port)
                };
                let ports = [open(0)?, open(1)?];
                for p in &ports {
                    bindings.push(Binding {
                        worker: w,
                        core,
                        port: p.link.port,
                        interface: p.link.name.clone(),
                        queue,
                        mode: p.mode,
                    });
                }
                let stats = Arc::new(WorkerStats::new(policy.tunnel_count()));
                let config = WorkerConfig {
                    frames: spec.frames_per_worker(),
                    fill_size: spec.ring_size * 2,
                    batch: spec.batch_size as usize,
                    capacity: spec.frame_capacity() as usize,
                    sampling: spec.sampling,
                };
                let (producer, consumer) = sample::ring(spec.frame_capacity() as usize);
                samples.push(consumer);
                let (reload_tx, reload_rx) = rtrb::RingBuffer::new(reload::MAILBOX);
                let (retired_tx, retired_rx) = rtrb::RingBuffer::new(reload::MAILBOX);
                mailboxes.push(reload_tx);
                returns.push(retired_rx);
                let worker = Worker::new(
                    ports,
                    umem,
                    descs,
                    config,
                    worker::Shared {
                        policy: policy.clone(),
                        stats: stats.clone(),
                        stop: stop.clone(),
                        samples: producer,
                        reloads: reload_rx,
                        retired: retired_tx,
                        epoch,
                        buckets: buckets.clone(),
                    },
                );
                prepared.push((worker, core, stats));
            }
            // The kernel path, per port, now that the mode each port got is known.
            let kernel_tunnels = mode.map(|m| {
                fast_lane.is_some()
                    && match spec.tunnel_path {
                        config::TunnelPath::Kernel => true,
                        config::TunnelPath::User => false,
                        config::TunnelPath::Auto => m != XdpMode::ZeroCopy,
                    }
            });
            if let Some(lane) = fast_lane.as_mut() {
                lane.set_kernel_tunnels(kernel_tunnels)
                    .map_err(|e| Error::Lane(e.to_string()))?;
            }
            Ok((
                bindings,
                prepared,
                samples,
                mailboxes,
                returns,
                kernel_tunnels,
            ))
        })();
        let (bindings, prepared, samples, reloads, retired, kernel_tunnels) = match bound {
            Ok(b) => b,
            Err(e) => {
                // Dropping the fast lane detaches it; libxdp's program is detached here.
                drop(fast_lane);
                for l in &links {
                    if let Ok(Some(_)) = l.attached_program() {
                        let _ = l.detach_program();
                    }
                }
                return Err(e);
            }
        };
        let programs = if fast_lane.is_some() {
            [None, None]
        } else {
            [
                links[0].attached_program().ok().flatten(),
                links[1].attached_program().ok().flatten(),
            ]
        };

        let mut data_path = DataPath {
            links,
            bindings,
            stats: Vec::new(),
            workers: Vec::new(),
            stop,
            programs,
            heartbeat: None,
            lane: fast_lane,
            keep_bypass: false,
            kernel_tunnels,
            samples,
            epoch_ns,
            epoch,
            policy: policy.clone(),
            buckets,
            generation: 1,
            reloads,
            retired,
            retiring: Vec::new(),
            spare: None,
        };
        for (w, (worker, core, stats)) in prepared.into_iter().enumerate() {
            let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
            let handle = thread::Builder::new()
                .name(format!("greguard-w{w}"))
                .spawn(move || {
                    let pinned =
                        core_affinity::set_for_current(core_affinity::CoreId { id: core as usize });
                    let _ = pinned_tx.send(pinned);
                    if pinned {
                        Some(worker.run())
                    } else {
                        None
                    }
                })
                .map_err(|source| Error::Thread { worker: w, source })?;
            data_path.workers.push(handle);
            data_path.stats.push(stats);
            // Dropping `data_path` on an error stops the workers already running.
            if pinned_rx.recv() != Ok(true) {
                return Err(Error::NoCore {
                    core: core as usize,
                    available: cores::list(),
                });
            }
        }
        // Every queue has its socket: from here a queue without one means a worker is gone or
        // the channels were raised, not that greguard is (the program drops what it would
        // hand up there, instead of failing open).
        if let Some(lane) = &data_path.lane {
            data_path.heartbeat = Some(lane.heartbeat().map_err(|e| Error::Lane(e.to_string()))?);
        }
        Ok(data_path)
    }

    /// Every bound socket: worker, core, port, queue and the mode it got.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The consuming ends of the workers' sample rings (once; later calls get none).
    pub fn take_samples(&mut self) -> Vec<SampleReader> {
        std::mem::take(&mut self.samples)
    }

    /// Each worker's published counters.
    pub fn stats(&self) -> &[Arc<WorkerStats>] {
        &self.stats
    }

    /// The sum of every worker's last publication, with what the fast lane decided.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::sum(&self.stats.iter().map(|s| s.snapshot()).collect::<Vec<_>>())
            .with_kernel(self.lane_counters())
    }

    /// The running policy's generation (1 at start, +1 per reload handed to the workers).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The policy the workers run (or are about to switch to).
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Hands a new policy to every worker; each switches between two batches. The policers
    /// and per-tunnel counts of tunnels whose name persists carry over. Returns the new
    /// generation. Frees what earlier reloads replaced.
    pub fn reload(
        &mut self,
        policy: Arc<Policy>,
        sampling: SamplingRates,
    ) -> Result<u64, ReloadError> {
        self.collect_retired();
        if let Some(worker) = self.reloads.iter().position(|r| r.slots() == 0) {
            return Err(ReloadError::Busy { worker });
        }
        // Tunnels are carried over by name: their prefixes in the fast lane, and their
        // policers and counts in the workers.
        let previous = policy.previous_indices(&self.policy);
        if let Some(lane) = self.lane.as_mut() {
            lane.apply(&policy, &self.policy, &previous, sampling)
                .map_err(|e| ReloadError::Lane(e.to_string()))?;
        }
        let generation = self.generation + 1;
        // Nanoseconds since the epoch fit u64 for 584 years.
        #[allow(clippy::cast_possible_truncation)]
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let buckets = match self.lane.as_ref() {
            Some(l) => validator::classify::Buckets::carried_with_cells(
                &policy,
                now_ns,
                &previous,
                &self.buckets,
                &|i| l.tunnel_cell(i),
            ),
            None => {
                validator::classify::Buckets::carried(&policy, now_ns, &previous, &self.buckets)
            }
        };
        for mailbox in &mut self.reloads {
            let state = reload::PolicyState::prepare(
                generation,
                policy.clone(),
                previous.clone(),
                buckets.clone(),
                sampling,
            );
            // Checked above: every mailbox has a free slot, and only this thread fills them.
            let _ = mailbox.push(Box::new(state));
        }
        self.policy = policy;
        self.buckets = buckets;
        self.generation = generation;
        Ok(generation)
    }

    /// The fast lane's samples of what the kernel dropped, when it runs (they hold the
    /// kernel's verdict and reason and are counted already).
    pub fn kernel_samples(&self) -> Option<lane::KernelSamples> {
        self.lane
            .as_ref()
            .and_then(|l| l.samples(self.epoch_ns).ok())
    }

    /// The fast lane's counters (what the kernel decided), when it runs.
    pub fn lane_counters(&self) -> Option<lane::LaneCounters> {
        self.lane.as_ref().map(|l| l.counters())
    }

    /// Per port (outside, inside): whether the fast lane's kernel path forwards its tunnel
    /// traffic (`[ports] tunnel_path`), else the workers judge all of it.
    pub fn kernel_tunnels(&self) -> [bool; 2] {
        self.kernel_tunnels
    }

    /// Whether greguard's XDP program runs in front of the sockets.
    pub fn fast_lane(&self) -> bool {
        self.lane.is_some()
    }

    /// Leave the fast lane attached when the data path stops, so the kernel keeps forwarding
    /// as `on_failure` says (`greguard run --keep-bypass`).
    pub fn keep_bypass(&mut self, keep: bool) {
        self.keep_bypass = keep;
    }

    /// Frees the policy states the workers replaced (here, off the data-path cores). A
    /// replaced policy that no one holds any more is kept for [`DataPath::take_spare_policy`].
    pub fn collect_retired(&mut self) {
        for ring in &mut self.retired {
            while let Ok(state) = ring.pop() {
                // Every worker hands back its own reference: keep one per policy.
                if !self.retiring.iter().any(|p| Arc::ptr_eq(p, &state.policy)) {
                    self.retiring.push(state.policy.clone());
                }
            }
        }
        let mut i = 0;
        while i < self.retiring.len() {
            if Arc::strong_count(&self.retiring[i]) == 1 {
                let last = self.retiring.swap_remove(i);
                if let Ok(policy) = Arc::try_unwrap(last) {
                    self.spare = Some(policy);
                }
            } else {
                i += 1;
            }
        }
    }

    /// A replaced policy no one holds any more, to build the next one in
    /// ([`Policy::recycle`]): its memory is warm, where fresh memory for 100 000 tunnels would
    /// first be zeroed by the kernel, a good part of a reload.
    pub fn take_spare_policy(&mut self) -> Option<Policy> {
        self.spare.take()
    }

    /// The instant the workers' clocks count from; `Sample::at_ns` is relative to it.
    pub fn epoch(&self) -> std::time::Instant {
        self.epoch
    }

    /// A worker that has ended although no stop was asked for (it panicked, or its loop
    /// returned): the data path no longer serves that worker's queues.
    pub fn dead_worker(&self) -> Option<usize> {
        if self.stop.load(Relaxed) {
            return None;
        }
        self.workers.iter().position(|h| h.is_finished())
    }

    /// What is wrong when an interface now has RX queues no worker serves (channels raised
    /// after the start); `None` while every queue is served.
    pub fn unserved_queues(&self) -> Option<String> {
        let served: Vec<u32> = self
            .bindings
            .iter()
            .filter(|b| b.port == "outside")
            .map(|b| b.queue)
            .collect();
        self.links.iter().find_map(|l| {
            let count = l.rx_queues();
            unserved(count, &served).map(|missing| {
                format!(
                    "{} interface {} now has {count} RX queues; queues {missing} have no worker",
                    l.port, l.name
                )
            })
        })
    }

    /// Asks the workers to stop without waiting (safe from a signal-handling thread).
    pub fn request_stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// Stops the workers, closes every socket and detaches the XDP programs (the fast lane
    /// stays with [`DataPath::keep_bypass`]). Returns each worker's last report and the fast
    /// lane's final counters.
    pub fn stop(mut self) -> Result<(Vec<WorkerReport>, Option<lane::LaneCounters>), Error> {
        let reports = self.shutdown()?;
        Ok((reports, self.lane_counters()))
    }

    fn shutdown(&mut self) -> Result<Vec<WorkerReport>, Error> {
        // Leaving the bypass: it takes over before the sockets close, with no gap in which the
        // closed queues drop what they would hand up.
        if let Some(mut heartbeat) = self.heartbeat.take() {
            if self.keep_bypass {
                heartbeat.flatline();
            }
        }
        self.stop.store(true, Relaxed);
        let mut reports = Vec::new();
        let mut failed = None;
        for (w, h) in self.workers.drain(..).enumerate() {
            match h.join() {
                Ok(Some(r)) => reports.push(r),
                Ok(None) => {}
                Err(_) => failed = Some(Error::WorkerPanicked { worker: w }),
            }
        }
        if let Some(lane) = self.lane.as_mut() {
            if self.keep_bypass {
                lane.leave_attached();
            } else {
                lane.detach();
            }
        }
        // The workers own the sockets and dropped them when they returned. libxdp removes its
        // program when the last socket goes in most cases; make sure nothing stays behind.
        for (l, id) in self.links.iter().zip(self.programs) {
            if let (Some(id), Ok(Some(now))) = (id, l.attached_program()) {
                if now == id {
                    let _ = l.detach_program();
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

impl Drop for DataPath {
    /// A data path dropped without [`DataPath::stop`] (an error path) still stops its workers
    /// and leaves no program attached.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Creates a worker's UMEM with its frames.
fn umem(spec: &PortsSpec) -> Result<(Umem, Vec<xsk_rs::FrameDesc>), Error> {
    let frames = spec.frames_per_worker();
    let err = |source| Error::Umem {
        frames,
        frame_size: spec.frame_size,
        source,
    };
    let ring = |n: u32| QueueSize::new(n).map_err(|e| err(std::io::Error::other(e.to_string())));
    let config = UmemConfig::builder()
        .frame_size(
            FrameSize::new(spec.frame_size)
                .map_err(|e| err(std::io::Error::other(e.to_string())))?,
        )
        .fill_queue_size(ring(spec.ring_size * 2)?)
        .comp_queue_size(ring(spec.ring_size * 2)?)
        .build()
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let count = NonZeroU32::new(frames).ok_or_else(|| err(std::io::Error::other("no frames")))?;
    Umem::new(config, count, false).map_err(|e| err(error::os_error(&e)))
}

/// Loads the fast lane and attaches it to both ports: native XDP unless SKB mode was asked
/// for, or (`auto`) native refused it.
fn start_lane(
    spec: &PortsSpec,
    links: &[Link; 2],
    policy: &Policy,
) -> Result<(lane::FastLane, lane::Attach), lane::LaneError> {
    let mut fast = lane::FastLane::load()?;
    fast.configure(
        &links[0],
        &links[1],
        policy,
        lane::Settings {
            on_failure: spec.on_failure,
            sampling: spec.sampling,
            max_frame: spec.frame_capacity(),
            active: true,
        },
    )?;
    let order: &[lane::Attach] = match spec.mode {
        XdpMode::Skb => &[lane::Attach::Generic],
        XdpMode::Auto => &[lane::Attach::Native, lane::Attach::Generic],
        XdpMode::Copy | XdpMode::ZeroCopy => &[lane::Attach::Native],
    };
    let mut last = None;
    for &how in order {
        let attached = fast
            .attach(&links[0], how)
            .and_then(|()| fast.attach(&links[1], how));
        match attached {
            Ok(()) => return Ok((fast, how)),
            Err(e) => {
                fast.detach();
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one attach mode"))
}

/// Deals with a program already on `link`: libxdp's default AF_XDP program is what a greguard
/// that did not stop cleanly left (detached); greguard's own fast lane is a bypass left by an
/// earlier run (kept when the new run loads its own, which replaces it in one step, else
/// detached); any other program is someone else's and refused.
fn clear_stale_program(
    link: &Link,
    fast_lane: bool,
    notice: &mut impl FnMut(Notice),
) -> Result<(), Error> {
    let Ok(Some(id)) = link.attached_program() else {
        return Ok(());
    };
    let name = link::program_name(id).unwrap_or_default();
    if name == lane::PROGRAM_NAME {
        if fast_lane {
            notice(format!(
                "{} interface {}: greguard's XDP program (id {id}) is still attached from an earlier run; the new one replaces it without a gap",
                link.port, link.name
            ));
            return Ok(());
        }
    } else if name != link::LIBXDP_DEFAULT_PROGRAM {
        return Err(Error::ForeignProgram {
            port: link.port,
            name: link.name.clone(),
            id,
            prog: name,
        });
    }
    link.detach_program()
        .map_err(|source| Error::StaleProgram {
            port: link.port,
            name: link.name.clone(),
            id,
            source,
        })?;
    notice(format!(
        "{} interface {}: detached a stale AF_XDP program (id {id}, {name}) left by a process that did not stop cleanly",
        link.port, link.name
    ));
    Ok(())
}

/// The queue ids to serve: the policy's list or all queues. Every RX queue of both
/// interfaces must have a worker — a queue without one is a way around the filter — and fit
/// the program's socket map, or the start is refused with what to do.
fn resolve_queues(spec: &PortsSpec, links: &[Link; 2]) -> Result<Vec<u32>, Error> {
    let counts = [links[0].rx_queues(), links[1].rx_queues()];
    let list: Vec<u32> = match &spec.queues {
        None if counts[0] != counts[1] => {
            let larger = usize::from(counts[1] > counts[0]);
            return Err(Error::QueueCountsDiffer {
                outside: links[0].name.clone(),
                outside_count: counts[0],
                inside: links[1].name.clone(),
                inside_count: counts[1],
                larger: links[larger].name.clone(),
                smaller: counts[0].min(counts[1]),
            });
        }
        None => (0..counts[0]).collect(),
        Some(list) => list.clone(),
    };
    check_queues(&list, links, counts)?;
    Ok(list)
}

/// Every queue of the list exists and has a socket slot; every queue of each interface is in
/// the list.
fn check_queues(list: &[u32], links: &[Link; 2], counts: [u32; 2]) -> Result<(), Error> {
    for (l, &count) in links.iter().zip(&counts) {
        for &q in list {
            if q >= count {
                return Err(Error::NoQueue {
                    port: l.port,
                    name: l.name.clone(),
                    queue: q,
                    count,
                });
            }
        }
        if let Some(q) = (0..count).find(|&q| q >= lane::MAX_QUEUES) {
            return Err(Error::QueueTooHigh {
                port: l.port,
                name: l.name.clone(),
                queue: q,
                max: lane::MAX_QUEUES,
            });
        }
        if let Some(unserved) = unserved(count, list) {
            return Err(Error::UnservedQueues {
                port: l.port,
                name: l.name.clone(),
                count,
                unserved,
                served: u32::try_from(list.len()).unwrap_or(u32::MAX),
            });
        }
    }
    Ok(())
}

/// The queues of an interface with `count` RX queues that are not in `served`, as a list
/// ("1, 2, 3"); `None` when every one is served.
fn unserved(count: u32, served: &[u32]) -> Option<String> {
    let missing: Vec<String> = (0..count)
        .filter(|q| !served.contains(q))
        .map(|q| q.to_string())
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}
