//! The contracts themselves: every file compiles into the descriptor set, every element is
//! documented, and the public surface follows the mesh rules.

use fastbreak_integration_tests::{contract_services, descriptor_set, target_names};

#[test]
fn every_proto_file_under_proto_is_compiled_into_the_descriptor_set() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let mut on_disk = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                on_disk.push(path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.sort();
    let compiled: Vec<String> = descriptor_set().file.iter().map(|f| f.name().to_owned()).collect();
    assert_eq!(on_disk.len(), 10, "one contract per service plus common: {on_disk:?}");
    for file in &on_disk {
        assert!(compiled.contains(file), "{file} is not in the descriptor set");
    }
}

#[test]
fn every_target_has_a_public_service_and_every_service_a_target() {
    let services = contract_services();
    // The dashboard serves pages (and health), not a contract of its own.
    for target in target_names().into_iter().filter(|target| *target != fastbreak_web::TARGET) {
        assert!(services.iter().any(|s| s.target == target && !s.internal), "target {target} has no public service");
    }
    for service in &services {
        assert!(target_names().contains(&service.target.as_str()), "{} has no target", service.full_name);
        assert!(!service.methods.is_empty(), "{} has no RPC", service.full_name);
    }
}

/// Paths in `SourceCodeInfo` (see descriptor.proto): 4 = message_type, 5 = enum_type,
/// 6 = service; inside a message 2 = field, 3 = nested_type, 4 = enum_type, 8 = oneof_decl;
/// inside an enum 2 = value; inside a service 2 = method.
#[test]
fn every_service_rpc_message_field_and_enum_value_has_a_doc_comment() {
    let mut missing = Vec::new();
    for file in descriptor_set().file.iter().filter(|f| f.package().starts_with("fastbreak.")) {
        let info = file.source_code_info.as_ref().expect("source info is kept");
        let documented =
            |path: &[i32]| info.location.iter().any(|l| l.path == path && !l.leading_comments().trim().is_empty());
        let mut check = |path: Vec<i32>, what: String| {
            if !documented(&path) {
                missing.push(format!("{}: {what}", file.name()));
            }
        };
        for (s, service) in file.service.iter().enumerate() {
            check(vec![6, s as i32], format!("service {}", service.name()));
            for (m, method) in service.method.iter().enumerate() {
                check(vec![6, s as i32, 2, m as i32], format!("rpc {}.{}", service.name(), method.name()));
            }
        }
        for (e, enumeration) in file.enum_type.iter().enumerate() {
            check(vec![5, e as i32], format!("enum {}", enumeration.name()));
            for (v, value) in enumeration.value.iter().enumerate() {
                check(vec![5, e as i32, 2, v as i32], format!("enum value {}", value.name()));
            }
        }
        for (m, message) in file.message_type.iter().enumerate() {
            check(vec![4, m as i32], format!("message {}", message.name()));
            for (f, field) in message.field.iter().enumerate() {
                check(vec![4, m as i32, 2, f as i32], format!("field {}.{}", message.name(), field.name()));
            }
            assert!(
                message.nested_type.is_empty() && message.enum_type.is_empty(),
                "{}: keep messages flat so every element is checked",
                message.name()
            );
        }
    }
    assert!(missing.is_empty(), "undocumented elements:\n{}", missing.join("\n"));
}

#[test]
fn public_requests_never_carry_a_user_id_the_client_could_forge() {
    let set = descriptor_set();
    let messages: Vec<(String, &prost_types::DescriptorProto)> = set
        .file
        .iter()
        .flat_map(|f| f.message_type.iter().map(move |m| (format!(".{}.{}", f.package(), m.name()), m)))
        .collect();
    for service in contract_services().iter().filter(|s| !s.internal) {
        for method in &service.methods {
            let (_, input) = messages.iter().find(|(name, _)| name == method.input_type()).unwrap();
            assert!(
                input.field.iter().all(|f| f.name() != "user_id" && f.name() != "user_ids"),
                "{}.{} takes a user id from the client",
                service.full_name,
                method.name()
            );
        }
    }
}

#[test]
fn list_rpcs_page_with_page_size_and_page_token() {
    let set = descriptor_set();
    for file in set.file.iter().filter(|f| f.package().starts_with("fastbreak.")) {
        for message in &file.message_type {
            let name = message.name();
            if name.starts_with("List") && name.ends_with("Request") {
                let fields: Vec<&str> = message.field.iter().map(|f| f.name()).collect();
                assert!(fields.contains(&"page_size") && fields.contains(&"page_token"), "{name} does not page");
                let response = name.replace("Request", "Response");
                let response = file
                    .message_type
                    .iter()
                    .find(|m| m.name() == response)
                    .unwrap_or_else(|| panic!("{name} has no {response}"));
                assert!(
                    response.field.iter().any(|f| f.name() == "next_page_token"),
                    "{response:?} has no next_page_token"
                );
            }
        }
    }
}

#[test]
fn money_is_integer_cents_and_times_are_timestamps() {
    use prost_types::field_descriptor_proto::Type;
    for file in descriptor_set().file.iter().filter(|f| f.package().starts_with("fastbreak.")) {
        for message in &file.message_type {
            for field in &message.field {
                let name = field.name();
                if name.ends_with("_cents") {
                    assert_eq!(field.r#type(), Type::Int64, "{}.{name} must be int64 cents", message.name());
                }
                if name.ends_with("_time") {
                    assert_eq!(field.type_name(), ".google.protobuf.Timestamp", "{}.{name}", message.name());
                }
            }
        }
    }
}

#[test]
fn strategy_parameters_are_a_typed_oneof() {
    let set = descriptor_set();
    let file = set.file.iter().find(|f| f.package() == "fastbreak.strategy.v1").unwrap();
    let strategy = file.message_type.iter().find(|m| m.name() == "Strategy").unwrap();
    let oneof = strategy.oneof_decl.iter().position(|o| o.name() == "parameters").expect("a parameters oneof") as i32;
    let kinds: Vec<&str> =
        strategy.field.iter().filter(|f| f.oneof_index == Some(oneof)).map(|f| f.type_name()).collect();
    assert_eq!(
        kinds,
        [
            ".fastbreak.strategy.v1.RookieRisersParameters",
            ".fastbreak.strategy.v1.PostGameSpikeParameters",
            ".fastbreak.strategy.v1.ArbitrageModeParameters",
        ]
    );
}
