//! The shape of the house, checked from the sources: services meet only through their
//! contracts, each service's code names only the tables its service owns (as
//! `fastbreak_db::owners` says), the service kit stays free of the data crate, and no two
//! source files import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use fastbreak_db::owners;

/// The service crates, by target name and folder.
const SERVICES: &[&str] =
    &["gateway", "user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents", "web"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The lines of one `[section]` of a manifest.
fn manifest_section(manifest: &str, section: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == format!("[{section}]");
            continue;
        }
        if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            lines.push(trimmed.to_owned());
        }
    }
    lines
}

/// The crates a manifest section names.
fn crates_named(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|line| line.split(['=', '.', ' ']).next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

fn service_crate(name: &str) -> String {
    format!("fastbreak-{name}")
}

#[test]
fn no_service_crate_depends_on_another() {
    let mut problems = Vec::new();
    for service in SERVICES {
        let manifest = fs::read_to_string(root().join("services").join(service).join("Cargo.toml")).unwrap();
        for section in ["dependencies", "dev-dependencies"] {
            let named = crates_named(&manifest_section(&manifest, section));
            for other in SERVICES.iter().filter(|other| *other != service) {
                if named.contains(&service_crate(other)) {
                    problems.push(format!("{service} names {other} in its [{section}]"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "services meet only through their contracts:\n{}", problems.join("\n"));
}

#[test]
fn the_service_kit_does_not_depend_on_the_data_crate() {
    let manifest = fs::read_to_string(root().join("libs/mesh/Cargo.toml")).unwrap();
    let named = crates_named(&manifest_section(&manifest, "dependencies"));
    for forbidden in ["fastbreak-db", "diesel", "diesel-async", "deadpool"] {
        assert!(!named.contains(forbidden), "libs/mesh depends on {forbidden}");
    }
    for service in SERVICES {
        assert!(!named.contains(&service_crate(service)), "libs/mesh depends on the {service} service");
    }
}

/// The tables of the schema, as `libs/db/src/schema.rs` declares them.
fn schema_tables() -> BTreeSet<String> {
    let schema = fs::read_to_string(root().join("libs/db/src/schema.rs")).unwrap();
    let mut tables = BTreeSet::new();
    let mut lines = schema.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "diesel::table! {" {
            let declaration = lines.next().expect("a table after table!");
            let name = declaration.trim().split([' ', '(']).next().unwrap();
            tables.insert(name.to_owned());
        }
    }
    tables
}

#[test]
fn every_table_has_one_owner() {
    let tables = schema_tables();
    assert!(tables.len() > 40, "the schema was not read: {tables:?}");
    let listed: BTreeSet<String> = owners::TABLES.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(listed.len(), owners::TABLES.len(), "a table is listed twice in owners::TABLES");
    let unowned: Vec<_> = tables.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&tables).collect();
    assert!(unowned.is_empty(), "tables with no owner in libs/db/src/owners.rs: {unowned:?}");
    assert!(gone.is_empty(), "owners.rs lists tables the schema does not have: {gone:?}");
    for (table, owner) in owners::TABLES {
        assert!(
            SERVICES.contains(owner) || *owner == owners::OUTBOX,
            "{table} belongs to {owner}, which is no service"
        );
    }
}

/// Where a source file names a table: through the diesel schema (`schema::name`, or a name in
/// `schema::{...}`), or in SQL text after FROM, JOIN, INTO, UPDATE or TABLE.
fn tables_named(source: &str, tables: &BTreeSet<String>) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let words: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '{' || c == '}' || c == ','))
        .filter(|w| !w.is_empty())
        .collect();
    // schema::name and schema::{a, b}
    let mut rest = source;
    while let Some(at) = rest.find("schema::") {
        rest = &rest[at + "schema::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            for name in inner[..end].split(',').map(|n| n.trim()) {
                let name = name.split("::").next().unwrap_or(name);
                if tables.contains(name) {
                    named.insert(name.to_owned());
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if tables.contains(&name) {
                named.insert(name);
            }
        }
    }
    // SQL text
    for pair in words.windows(2) {
        let keyword = pair[0].to_ascii_uppercase();
        if ["FROM", "JOIN", "INTO", "UPDATE", "TABLE"].contains(&keyword.as_str()) {
            let name = pair[1].trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            if tables.contains(name) {
                named.insert(name.to_owned());
            }
        }
    }
    named
}

#[test]
fn a_service_names_only_the_tables_it_owns() {
    let tables = schema_tables();
    let mut crossings = BTreeMap::<(String, String), Vec<String>>::new();
    for service in SERVICES {
        let dir = root().join("services").join(service).join("src");
        for file in rust_files(&dir) {
            let source = fs::read_to_string(&file).unwrap();
            for table in tables_named(&source, &tables) {
                let owner = owners::owner_of(&table).expect("every table has an owner");
                if owner == *service || owner == owners::OUTBOX {
                    continue;
                }
                let shown = file.strip_prefix(root()).unwrap().display().to_string();
                crossings.entry(((*service).to_owned(), table)).or_default().push(shown);
            }
        }
    }
    let problems: Vec<String> = crossings
        .iter()
        .map(|((service, table), files)| {
            let owner = owners::owner_of(table).unwrap();
            format!("{service} names {owner}'s table {table} in {}", files.join(", "))
        })
        .collect();
    assert!(problems.is_empty(), "a service touches only its own tables:\n{}", problems.join("\n"));
}

#[test]
fn the_table_finder_sees_the_ways_code_names_a_table() {
    let tables: BTreeSet<String> = ["moments", "sales", "players"].iter().map(|t| (*t).to_owned()).collect();
    let found = |source: &str| tables_named(source, &tables).into_iter().collect::<Vec<_>>();
    assert_eq!(found("use fastbreak_db::schema::{moments, players};"), ["moments", "players"]);
    assert_eq!(found("use fastbreak_db::schema::sales;"), ["sales"]);
    assert_eq!(found("sql_query(\"SELECT 1 FROM sales s JOIN moments m\")"), ["moments", "sales"]);
    assert!(found("// the players of a game and their sales figures").is_empty());
}

/// The module a `crate::` path names, as a file of the crate (`None` for an item of the crate's
/// root).
fn module_file(src: &Path, path: &[&str]) -> Option<PathBuf> {
    let mut best = None;
    let mut dir = src.to_path_buf();
    for segment in path {
        let file = dir.join(format!("{segment}.rs"));
        let folder = dir.join(segment).join("mod.rs");
        if file.is_file() {
            best = Some(file);
        } else if folder.is_file() {
            best = Some(folder);
        } else {
            break;
        }
        dir = dir.join(segment);
    }
    best
}

/// The files of its own crate a source file imports through `crate::` paths.
fn imports(src: &Path, file: &Path) -> BTreeSet<PathBuf> {
    let source = fs::read_to_string(file).unwrap();
    let mut found = BTreeSet::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let path: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        // `crate::a::{b, c}` names a's files b and c too.
        let mut paths = vec![segments.clone()];
        if rest[path.len()..].starts_with('{') {
            let inner = &rest[path.len() + 1..];
            let end = inner.find('}').unwrap_or(inner.len());
            for name in inner[..end].split(',').map(str::trim) {
                let mut longer = segments.clone();
                longer.extend(name.split("::").next());
                paths.push(longer);
            }
        }
        for path in paths {
            if let Some(target) = module_file(src, &path)
                && target != file
            {
                found.insert(target);
            }
        }
    }
    found
}

#[test]
fn no_two_files_import_each_other() {
    let mut crates = vec![root().join("services/fastbreak/src")];
    for service in SERVICES {
        crates.push(root().join("services").join(service).join("src"));
    }
    for lib in ["mesh", "db", "config", "telemetry", "market-sim", "proto"] {
        crates.push(root().join("libs").join(lib).join("src"));
    }
    crates.push(root().join("integration-tests/src"));
    let mut pairs = Vec::new();
    for src in crates {
        let files = rust_files(&src);
        let graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> =
            files.iter().map(|file| (file.clone(), imports(&src, file))).collect();
        for (file, targets) in &graph {
            for target in targets {
                if file < target && graph.get(target).is_some_and(|back| back.contains(file)) {
                    let show = |p: &Path| p.strip_prefix(root()).unwrap().display().to_string();
                    pairs.push(format!("{} <-> {}", show(file), show(target)));
                }
            }
        }
    }
    assert!(pairs.is_empty(), "files that import each other:\n{}", pairs.join("\n"));
}
