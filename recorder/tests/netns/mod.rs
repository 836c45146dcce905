//! Test helpers for live attachment: network namespaces with veth pairs
//! (removed on drop, also when a test fails), code run inside a namespace
//! on a thread of its own, Ethernet frames injected with AF_PACKET inside
//! the namespace, and temporary cgroups.
//!
//! Traffic never leaves the namespaces the tests create.

#![allow(dead_code)]

pub mod samples;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace created for one test; deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `bpfrr-<tag>-<pid>-<n>` with loopback up and IPv6 off (so
    /// the kernel sends no neighbour discovery into the test's counters).
    pub fn create(tag: &str) -> NetNs {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bpfrr-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ns.sh("echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6");
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NS ARGS`.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Runs a shell command inside the namespace.
    pub fn sh(&self, script: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", script])
            .output()
            .expect("running ip netns exec");
        assert!(
            out.status.success(),
            "in {}: {script}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds a veth pair `a` <-> `b`, both up, with IPv6 off.
    pub fn veth_pair(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        for dev in [a, b] {
            self.ip(&["link", "set", dev, "up"]);
        }
    }

    /// Runs `f` on a thread that has entered the namespace (a network
    /// namespace belongs to a thread: the test's other threads stay out).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        NetNs::run_in_named(&self.name, f)
    }

    /// [`NetNs::run`] for a namespace this process did not create.
    pub fn run_in_named<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{name}");
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: `ns` is an open namespace file; setns only changes
                // this thread's network namespace.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace removes its veths too.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Sends raw Ethernet frames out of `iface` of the calling thread's
/// namespace with an AF_PACKET socket. Call inside [`NetNs::run`].
pub fn send_frames(iface: &str, frames: &[Vec<u8>]) {
    let name = std::ffi::CString::new(iface).unwrap();
    // SAFETY: plain libc calls on a socket this function owns; the
    // sockaddr_ll and frame buffers outlive the calls that read them.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert_ne!(ifindex, 0, "no interface {iface} in this namespace");
        // Protocol 0: the socket sends only, it receives nothing.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        for frame in frames {
            let n = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                n,
                frame.len() as isize,
                "sendto {iface}: {}",
                std::io::Error::last_os_error()
            );
        }
        libc::close(fd);
    }
}

/// The internet checksum of `bytes`.
fn csum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 frame carrying `l4` with protocol `proto` and TOS `tos`.
pub fn ipv4_frame(proto: u8, tos: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, tos];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    f.extend(l4);
    f
}

/// A UDP datagram (checksum 0: none) from `sport` to `dport`.
pub fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend(sport.to_be_bytes());
    udp.extend(dport.to_be_bytes());
    udp.extend(((8 + payload.len()) as u16).to_be_bytes());
    udp.extend([0, 0]);
    udp.extend(payload);
    ipv4_frame(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp)
}

/// A TCP SYN from `sport` to `dport`.
pub fn tcp_syn_frame(sport: u16, dport: u16) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend(sport.to_be_bytes());
    tcp.extend(dport.to_be_bytes());
    tcp.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    ipv4_frame(6, 0, [10, 0, 0, 1], [10, 0, 0, 2], &tcp)
}

/// An ARP request frame (not IP).
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    f.extend([0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend([0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 1]);
    f.extend([0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f
}

/// A cgroup v2 directory created for one test; removed on drop (after
/// its processes have exited).
pub struct TempCgroup {
    path: PathBuf,
}

impl TempCgroup {
    /// Creates `bpfrr-<tag>-<pid>` under the cgroup v2 mount.
    pub fn create(tag: &str) -> TempCgroup {
        let root = bpfrr_recorder::attach::cgroup_skb::cgroup2_mounts()
            .into_iter()
            .next()
            .expect("cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup)");
        let path = root.join(format!("bpfrr-{tag}-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempCgroup { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        // A cgroup is removed with rmdir once it has no processes; its
        // members may take a moment to be reaped.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Polls `f` until it returns Some, for up to `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
