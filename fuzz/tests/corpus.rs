//! Replays the committed corpus on the stable toolchain: every file of
//! `corpus/TARGET/` through the function that the `TARGET` fuzz binary
//! calls. A target without corpus files, or a corpus directory without a
//! target, fails the test.

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_file_passes_its_target() {
    let mut total = 0;
    for (name, target) in dlm_fuzz::TARGETS {
        let dir = corpus_dir().join(name);
        let inputs = files(&dir);
        assert!(
            !inputs.is_empty(),
            "target {name} has no corpus in {}",
            dir.display()
        );
        for path in &inputs {
            let data = std::fs::read(path).expect("corpus file");
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name}: {} fails its checks", path.display());
        }
        println!("{name}: {} inputs", inputs.len());
        total += inputs.len();
    }
    println!("{total} corpus inputs replayed");
}

#[test]
fn every_corpus_directory_has_a_target() {
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus/") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            dlm_fuzz::TARGETS.iter().any(|(t, _)| *t == name),
            "corpus/{name} has no target in dlm_fuzz::TARGETS"
        );
    }
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("Cargo.toml");
    for (name, _) in dlm_fuzz::TARGETS {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz_targets/{name}.rs"));
        let source =
            std::fs::read_to_string(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(
            source.contains(&format!("dlm_fuzz::{name}(data)")),
            "{} does not call dlm_fuzz::{name}",
            bin.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "Cargo.toml has no [[bin]] {name}"
        );
    }
}
