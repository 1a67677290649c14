//! Link settings of the `strata` binary.
//!
//! The binary stays position-independent (ASLR), but its relative relocations are packed
//! (`DT_RELR`, glibc 2.36+, binutils 2.38+): the 228k entries of `.rela.dyn` took 5.5 MB
//! that the loader read, and kept resident, at every start. The relocations are the same,
//! only their encoding is smaller (~1% of it).

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux-gnu") && std::env::var_os("STRATA_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=STRATA_NO_RELR");
    println!("cargo:rerun-if-changed=build.rs");
}
