//! The BPF catalogue of Linux 6.18: helpers ([`helpers`]), map types
//! ([`map_types`]), program types ([`prog_types`]) and attach types
//! ([`attach_types`]), each with the kernel's number and the name bpftool
//! and libbpf print.

/// Declares a C-like enum mirroring one of the kernel's uapi enums, with
/// its number, bpftool's name and the kernel's constant name, plus lookups
/// both ways.
macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $short:literal, $kernel:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in numeric order without gaps (index == number).
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The kernel's number for this value.
            pub fn number(self) -> u32 {
                self as u32
            }

            /// The value with this number, or `None` if 6.18 does not know it.
            pub fn from_number(n: u32) -> Option<Self> {
                Self::ALL.get(usize::try_from(n).ok()?).copied()
            }

            /// The name bpftool and libbpf print (`hash`, `xdp`, ...).
            pub fn name(self) -> &'static str {
                match self { $( $name::$variant => $short, )* }
            }

            /// The kernel's constant name (`BPF_MAP_TYPE_HASH`, ...).
            pub fn kernel_name(self) -> &'static str {
                match self { $( $name::$variant => $kernel, )* }
            }

            /// Looks a value up by bpftool's name or the kernel's constant
            /// name, ignoring ASCII case.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| {
                    v.name().eq_ignore_ascii_case(name) || v.kernel_name().eq_ignore_ascii_case(name)
                })
            }

            /// Like [`Self::from_number`], with an error saying what is wrong.
            pub fn try_from_number(n: u32) -> Result<Self, $crate::catalog::UnknownValue> {
                Self::from_number(n).ok_or($crate::catalog::UnknownValue { what: $what, number: n })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub mod attach_types;
mod helper_table;
pub mod helpers;
pub mod map_types;
pub mod prog_types;

pub use attach_types::AttachType;
pub use helpers::{
    ArgKind, HelperSpec, OutSize, OutputArg, RetKind, helper, helper_by_name, helper_name, helpers,
};
pub use map_types::MapType;
pub use prog_types::ProgType;

/// A number that Linux 6.18 does not define for one of its enums (from a
/// newer kernel, or a corrupted input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown {what} {number}: Linux 6.18 does not define it; the program or trace may come from a newer kernel"
)]
pub struct UnknownValue {
    /// Which enum: "map type", "program type", "attach type".
    pub what: &'static str,
    /// The number that was not recognised.
    pub number: u32,
}
