//! What a server's reflection describes: the services it serves and the types they use, and
//! nothing else of the contracts. Every reflection method answers from this set, so a service
//! the server does not serve (an internal one at the public edge) cannot be found by symbol,
//! by file or by listing.

use std::collections::{BTreeSet, VecDeque};

use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The files of `set` cut down to the named services (full names, `package.Service`) and the
/// messages and enums their methods reach. Files keep their names and imports; their source
/// info (whose paths would no longer match, and whose comments may name what was cut) is
/// dropped.
pub fn served_only(set: FileDescriptorSet, services: &[&str]) -> FileDescriptorSet {
    let reached = reached_types(&set, services);
    let file = set
        .file
        .into_iter()
        .map(|mut file| {
            let package = file.package().to_owned();
            let full = |name: &str| if package.is_empty() { format!(".{name}") } else { format!(".{package}.{name}") };
            file.service.retain(|s| services.contains(&full(s.name()).trim_start_matches('.')));
            file.message_type.retain(|m| reached.contains(&full(m.name())));
            file.enum_type.retain(|e| reached.contains(&full(e.name())));
            file.source_code_info = None;
            file
        })
        .collect();
    FileDescriptorSet { file }
}

/// The fully qualified names (with the leading dot) of the top-level messages and enums that
/// the named services' methods reach through their fields.
fn reached_types(set: &FileDescriptorSet, services: &[&str]) -> BTreeSet<String> {
    // Every message by its full name, nested ones included, with the top-level name it sits in.
    let mut messages: std::collections::HashMap<String, (&DescriptorProto, String)> = Default::default();
    fn index<'a>(
        prefix: &str,
        top: Option<&str>,
        list: &'a [DescriptorProto],
        into: &mut std::collections::HashMap<String, (&'a DescriptorProto, String)>,
    ) {
        for message in list {
            let name = format!("{prefix}.{}", message.name());
            let top = top.map_or_else(|| name.clone(), str::to_owned);
            index(&name, Some(&top), &message.nested_type, into);
            into.insert(name, (message, top));
        }
    }
    let mut enums: std::collections::HashMap<String, String> = Default::default();
    for file in &set.file {
        let prefix = if file.package().is_empty() { String::new() } else { format!(".{}", file.package()) };
        index(&prefix, None, &file.message_type, &mut messages);
        for e in &file.enum_type {
            enums.insert(format!("{prefix}.{}", e.name()), format!("{prefix}.{}", e.name()));
        }
    }
    for (name, (message, top)) in &messages {
        for e in &message.enum_type {
            enums.insert(format!("{name}.{}", e.name()), top.clone());
        }
    }
    let mut queue: VecDeque<String> = set
        .file
        .iter()
        .flat_map(|file: &FileDescriptorProto| {
            file.service
                .iter()
                .filter(|s| services.contains(&format!("{}.{}", file.package(), s.name()).as_str()))
                .flat_map(|s| s.method.iter().flat_map(|m| [m.input_type().to_owned(), m.output_type().to_owned()]))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut reached = BTreeSet::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(top) = enums.get(&name) {
            reached.insert(top.clone());
        }
        let Some((message, top)) = messages.get(&name) else { continue };
        if reached.insert(top.clone()) {
            // The whole top-level message is described, so everything in it is reached too.
            queue.push_back(top.clone());
        }
        for nested in &message.nested_type {
            queue.push_back(format!("{name}.{}", nested.name()));
        }
        queue.extend(message.field.iter().filter(|f| !f.type_name().is_empty()).map(|f| f.type_name().to_owned()));
    }
    reached
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_cut_set_keeps_the_named_services_and_what_they_use_only() {
        let set = FileDescriptorSet::decode(fastbreak_proto::FILE_DESCRIPTOR_SET).unwrap();
        let cut = served_only(set, &["fastbreak.user.v1.UserService"]);
        let user = cut.file.iter().find(|f| f.package() == "fastbreak.user.v1").unwrap();
        let services: Vec<&str> = user.service.iter().map(|s| s.name()).collect();
        assert_eq!(services, ["UserService"]);
        let messages: Vec<&str> = user.message_type.iter().map(|m| m.name()).collect();
        assert!(messages.contains(&"CreateUserRequest"), "{messages:?}");
        assert!(!messages.contains(&"AuthenticateAccessTokenRequest"), "{messages:?}");
        // Another package's services are gone, and so are its types nobody kept uses.
        let risk = cut.file.iter().find(|f| f.package() == "fastbreak.risk.v1").unwrap();
        assert!(risk.service.is_empty() && risk.message_type.is_empty(), "{risk:?}");
    }
}
