//! `bpfrr export-pcap TRACE -o packets.pcap [--final]`: the packets of a
//! trace as a classic pcap file for Wireshark or tcpdump (Ethernet link
//! type, or raw IP when every packet starts at the IP header).

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context as _;
use bpfrr_trace::edit::{PacketSource, check_output_path, export_pcap};
use bpfrr_trace::pcap::LINKTYPE_RAW;
use bpfrr_trace::trace::Trace;

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// Export the packets as the programs left them instead of as they arrived.
    #[arg(long = "final")]
    pub final_packets: bool,
    /// Where to write the pcap file.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let trace = Trace::open(&args.trace)?;
    check_output_path(&args.trace, &args.output)?;
    let source = if args.final_packets {
        PacketSource::Final
    } else {
        PacketSource::Recorded
    };
    let name = args.output.display().to_string();
    let file =
        std::fs::File::create(&args.output).with_context(|| format!("cannot create {name}"))?;
    let stats = export_pcap(&trace, source, BufWriter::new(file), &name)?;
    let kind = if args.final_packets {
        "final"
    } else {
        "recorded"
    };
    let link = if stats.linktype == LINKTYPE_RAW {
        "raw IP"
    } else {
        "Ethernet"
    };
    println!("{name}: {} {kind} packets, link type {link}", stats.packets);
    if stats.skipped > 0 {
        println!("\t{} invocations have no {kind} packet", stats.skipped);
    }
    if stats.synthetic_ethernet > 0 {
        println!(
            "\t{} IP packets got a synthetic Ethernet header (zero addresses): the trace mixes Ethernet and IP packets",
            stats.synthetic_ethernet
        );
    }
    if stats.truncated > 0 {
        println!(
            "\t{} packets were cut to a snap length when recorded",
            stats.truncated
        );
    }
    Ok(())
}
