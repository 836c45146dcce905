//! bpfrr-trace: the vocabulary of BPF and the bpfrr trace file.
//!
//! This crate never touches the kernel and builds on any OS. It is the only
//! contract between the recorder and the replayer.

pub mod btf;
pub mod catalog;
pub mod edit;
pub mod isa;
pub mod object;
pub mod pcap;
pub mod trace;
