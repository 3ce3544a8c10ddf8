//! The modules of `src/` form layers with no way back up: ids, then records, then the
//! pure rules, then the ports, then the service and the stores. This test reads every
//! `crate::module` path in the code (comments aside) and fails on an import that goes
//! up a layer, on a module the table does not place, and on any cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of the crate and its layer; a module may use its own layer and those
/// below. Within a layer the graph must still be acyclic.
const LAYERS: &[(&str, u8)] = &[
    ("id", 0),
    ("timestamp", 0),
    ("wire", 0),
    ("text", 0),
    ("partner", 1),
    ("subscription", 1),
    ("event", 1),
    ("role", 1),
    ("feed", 1),
    ("error", 2),
    ("schema", 2),
    ("association", 3),
    ("actor", 3),
    ("attribution", 3),
    ("incentive", 3),
    ("link", 3),
    ("check", 3),
    ("delivery", 3),
    ("ports", 4),
    ("trace", 4),
    ("service", 5),
    ("memory", 5),
    ("sql", 5),
    ("spare", 5),
    ("sqlite", 5),
    ("postgres", 5),
    ("testkit", 5),
    ("transfer", 5),
    ("doc_fixture", 6),
];

/// The module a file belongs to: `src/x.rs` and `src/x/...` are `x`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::name` in the code of `text`, comments left out; a group
/// `crate::{a::X, b}` (on one line or several) names each of its modules.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                group[..end].split([',', '{', '}']).collect()
            }
            None => vec![rest],
        };
        for name in names {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file).expect("a file under src/");
        if module == "lib" {
            continue; // the root re-exports everything
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let uses = graph.entry(module.clone()).or_default();
        for name in crate_paths(&text) {
            if modules.contains(name.as_str()) && name != module {
                uses.insert(name);
            }
        }
    }
    graph
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let placed: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    for module in module_graph().keys() {
        assert!(
            placed.contains(module.as_str()),
            "src/{module} is in no layer: add it to LAYERS"
        );
    }
}

#[test]
fn no_module_uses_a_higher_layer() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    for (module, uses) in module_graph() {
        let own = layer[module.as_str()];
        for used in uses {
            if layer[used.as_str()] > own {
                violations.push(format!(
                    "{module} (layer {own}) uses {used} (layer {})",
                    layer[used.as_str()]
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports going up:\n{}",
        violations.join("\n")
    );
}

/// A cycle of `graph` as `a -> b -> a`, if there is one (depth-first search: a module
/// met again while on the current path closes a cycle).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle.join(" -> "));
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_cycle() {
    if let Some(cycle) = find_cycle(&module_graph()) {
        panic!("the modules form a cycle: {cycle}");
    }
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let edge = |from: &str, to: &str| (from.to_owned(), BTreeSet::from([to.to_owned()]));
    let graph = BTreeMap::from([
        edge("actor", "subscription"),
        edge("error", "actor"),
        edge("subscription", "error"),
    ]);
    assert_eq!(
        find_cycle(&graph).as_deref(),
        Some("actor -> subscription -> error -> actor")
    );
    let graph = BTreeMap::from([edge("actor", "subscription"), edge("error", "subscription")]);
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn the_reader_finds_grouped_and_plain_paths_outside_comments() {
    let paths = crate_paths(
        "use crate::{actor::Actor, error::Error};\nuse crate::id::MpnId; // crate::service\n",
    );
    assert_eq!(
        paths,
        ["actor", "error", "id"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}
