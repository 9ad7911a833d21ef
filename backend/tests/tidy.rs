//! Tidiness checks over the source: no setting that no code reads.

use std::path::Path;

/// The `[section]` structs of `config.rs` and their fields.
fn settings(config_rs: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for line in config_rs.lines() {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{', '(']).next().unwrap_or("");
            section = name
                .strip_suffix("Config")
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase);
        } else if line.starts_with('}') {
            section = None;
        } else if let (Some(s), Some(field)) = (&section, line.strip_prefix("    pub "))
            && let Some((name, _)) = field.split_once(':')
        {
            out.push((s.clone(), name.trim().to_string()));
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// Whether `text` reads `.field` as a whole word (not `.field_more`).
fn reads(text: &str, field: &str) -> bool {
    let needle = format!(".{field}");
    text.match_indices(&needle).any(|(i, _)| {
        let after = text[i + needle.len()..].chars().next();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn every_setting_is_read_by_some_code_outside_the_config_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let config_rs = std::fs::read_to_string(src.join("config.rs")).unwrap();
    let all = settings(&config_rs);
    assert!(
        all.len() > 30
            && all.contains(&("detection".into(), "enabled".into()))
            && all.contains(&("auth".into(), "login_failures_per_address".into())),
        "the settings were not found in config.rs: {all:?}"
    );
    let mut files = Vec::new();
    sources(&src, &mut files);
    // Code that reads a setting: anything but config.rs itself (its checks and
    // defaults do not make a setting do something).
    let code: Vec<&str> = files
        .iter()
        .filter(|(p, _)| !p.ends_with("config.rs"))
        .map(|(_, t)| t.as_str())
        .collect();
    // A file reads `section.field` when it reads `.section.field`, or reads `.field`
    // and names the section's type (fields such as `enabled` are in several sections:
    // a read of `jira.enabled` says nothing of `detection.enabled`).
    let read_in = |t: &str, section: &str, field: &str| {
        let ty = format!(
            "{}{}Config",
            section[..1].to_ascii_uppercase(),
            &section[1..]
        );
        t.contains(&format!(".{section}.{field}")) || (reads(t, field) && t.contains(&ty))
    };
    let dead: Vec<String> = all
        .iter()
        .filter(|(s, field)| !code.iter().any(|t| read_in(t, s, field)))
        .map(|(s, f)| format!("{s}.{f}"))
        .collect();
    assert!(
        dead.is_empty(),
        "settings that no code reads (make them work, or remove them): {dead:?}"
    );
}

#[test]
fn the_reader_check_tells_a_field_from_a_longer_one() {
    assert!(reads("if c.enabled {", "enabled"));
    assert!(!reads("c.enabled_x", "enabled"));
    assert_eq!(
        settings(
            "pub struct FooConfig {\n    pub a: u8,\n}\npub struct Other {\n    pub b: u8,\n}\n"
        ),
        vec![("foo".to_string(), "a".to_string())]
    );
}
