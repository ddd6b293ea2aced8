//! `nst-cli completions SHELL` and `nst-cli man`: generated from the clap definitions, so they
//! list the real subcommands and flags.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nst-cli");

fn run(args: &[&str]) -> (Output, String) {
    let o = Command::new(BIN)
        .args(args)
        .output()
        .expect("running nst-cli");
    let out = String::from_utf8(o.stdout.clone()).expect("UTF-8 output");
    (o, out)
}

#[test]
fn completions_cover_subcommands_and_flags_in_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _nst__cli"),
        ("zsh", "#compdef nst-cli"),
        ("fish", "complete -c nst-cli"),
    ] {
        let (o, out) = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {o:?}");
        assert!(out.contains(marker), "{shell}: no {marker:?}");
        for word in [
            "transfer",
            "eval",
            "weights",
            "style-weight",
            "sheet",
            "original-colors",
            "lbfgs",
        ] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (o, _) = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("possible values"));
}

#[test]
fn man_pages_document_every_subcommand() {
    let (o, out) = run(&["man"]);
    assert!(o.status.success());
    assert!(
        out.starts_with(".ie") && out.contains(".TH nst-cli 1"),
        "{out}"
    );
    assert!(out.contains("nst\\-cli\\-transfer(1)"));

    let dir = std::env::temp_dir().join(format!("nst-cli-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (o, _) = run(&["man", "--dir", &dir.display().to_string()]);
    assert!(o.status.success(), "{o:?}");
    for page in ["nst-cli.1", "nst-cli-transfer.1", "nst-cli-weights-fetch.1"] {
        assert!(dir.join(page).exists(), "{page} missing");
    }
    let transfer = std::fs::read_to_string(dir.join("nst-cli-transfer.1")).unwrap();
    for flag in ["style\\-weight", "content\\-weight", "original\\-colors"] {
        assert!(transfer.contains(flag), "nst-cli-transfer.1 lacks {flag}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
