//! Every CUDA kernel source compiles with NVRTC, for compute_80 and compute_90 (PTX) and for
//! sm_80 and sm_90 (CUBIN, what the backend loads at run time), and defines every kernel the
//! launch wrappers call. Needs libnvrtc but no GPU:
//! `python3 -m pip install nvidia-cuda-nvrtc` and LD_LIBRARY_PATH=<site-packages>/nvidia/cu13/lib.
//! Without libnvrtc the test is skipped, except under CI (env `CI` set), where it fails.

use kernels::cuda::nvrtc::{self, Image, Module};

/// True when the test can run; panics (fails) under CI when libnvrtc is missing.
fn nvrtc_or_skip() -> bool {
    if kernels::cuda::nvrtc_present() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "libnvrtc not found, and CI is set so this test must run: install it with \
             `python3 -m pip install nvidia-cuda-nvrtc` and put the directory holding \
             libnvrtc.so.* (python3 -c 'import nvidia; print(nvidia.__path__)' → <that>/cu13/lib) \
             on LD_LIBRARY_PATH (.ci/run does both)"
        );
    }
    eprintln!("skipped: libnvrtc not found");
    false
}

#[test]
fn every_module_compiles_for_sm80_and_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    let (major, minor) = nvrtc::version().expect("nvrtcVersion");
    eprintln!("NVRTC {major}.{minor}");
    for module in Module::ALL {
        for arch in ["compute_80", "compute_90"] {
            let (img, log) = nvrtc::compile_with_log(module, arch)
                .unwrap_or_else(|e| panic!("{}.cu for {arch}: {e}", module.name()));
            assert!(
                log.is_empty(),
                "{}.cu for {arch}: NVRTC warnings:\n{log}",
                module.name()
            );
            let Image::Ptx(ptx) = img else {
                panic!("{}.cu for {arch}: expected PTX", module.name())
            };
            assert!(
                ptx.contains(&format!(".target sm_{}", &arch["compute_".len()..])),
                "{}.cu: PTX for the wrong target",
                module.name()
            );
            for k in module.kernels() {
                assert!(
                    ptx.contains(&format!(".entry {k}(")),
                    "{}.cu for {arch}: no kernel {k}",
                    module.name()
                );
            }
            eprintln!("{}.cu {arch}: {} bytes of PTX", module.name(), ptx.len());
        }
        for arch in ["sm_80", "sm_90"] {
            let img = nvrtc::compile(module, arch)
                .unwrap_or_else(|e| panic!("{}.cu for {arch}: {e}", module.name()));
            let Image::Cubin(cubin) = img else {
                panic!("{}.cu for {arch}: expected a CUBIN", module.name())
            };
            assert_eq!(
                &cubin[..4],
                b"\x7fELF",
                "{}.cu {arch}: not an ELF",
                module.name()
            );
            for k in module.kernels() {
                // Kernel names appear in the CUBIN's symbol table.
                let name = k.as_bytes();
                assert!(
                    cubin
                        .windows(name.len() + 1)
                        .any(|w| &w[..name.len()] == name && w[name.len()] == 0),
                    "{}.cu for {arch}: no symbol {k}",
                    module.name()
                );
            }
            eprintln!(
                "{}.cu {arch}: {} bytes of CUBIN",
                module.name(),
                cubin.len()
            );
        }
    }
}

#[test]
fn an_unknown_architecture_is_an_error_naming_module_and_arch() {
    if !nvrtc_or_skip() {
        return;
    }
    let err = nvrtc::compile(Module::Adam, "sm_1").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("adam.cu") && msg.contains("sm_1"), "{msg}");
}

#[test]
fn compile_cache_returns_the_same_image() {
    if !nvrtc_or_skip() {
        return;
    }
    let a = nvrtc::compile_cached(Module::Reduce, "sm_90").unwrap();
    let b = nvrtc::compile_cached(Module::Reduce, "sm_90").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
