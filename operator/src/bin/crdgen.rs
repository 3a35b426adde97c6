//! `crdgen [DIR...]`: writes the CRDs of `dittofs.io/v1alpha1` as YAML into each DIR
//! (default: `crds/` and `charts/dittofs/crds/`), one file per kind. `crdgen --check
//! [DIR...]` compares instead and exits 1 on drift (CI).

use std::path::PathBuf;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.first().is_some_and(|a| a == "--check");
    if check {
        args.remove(0);
    }
    let dirs: Vec<PathBuf> = if args.is_empty() {
        dittofs_operator::crd::OUTPUT_DIRS
            .iter()
            .map(PathBuf::from)
            .collect()
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let mut drift = 0;
    for dir in &dirs {
        for (file, crd) in dittofs_operator::crd::all() {
            let yaml = match dittofs_operator::crd::to_yaml(&crd) {
                Ok(y) => y,
                Err(e) => {
                    eprintln!("crdgen: {file}: {e}");
                    std::process::exit(1);
                }
            };
            let path = dir.join(file);
            if check {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                    eprintln!("crdgen: {} is out of date", path.display());
                    drift += 1;
                }
            } else if let Err(e) = std::fs::write(&path, yaml) {
                eprintln!("crdgen: {}: {e}", path.display());
                std::process::exit(1);
            } else {
                println!("wrote {}", path.display());
            }
        }
    }
    if drift > 0 {
        eprintln!("crdgen: regenerate with `cargo run -p dittofs-operator --bin crdgen`");
        std::process::exit(1);
    }
}
