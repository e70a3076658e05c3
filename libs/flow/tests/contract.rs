//! The Access API contract of `proto/` against the public definitions: a client and a fake
//! built from one contract would share its mistakes, so every service, method, message and
//! field written here is checked against a table taken by hand from github.com/onflow/flow,
//! `protobuf/flow/access/access.proto` and `protobuf/flow/entities/*.proto` at commit
//! 4b03c37139aee573036743a46227114d0ea07e06.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

/// (package, service, method, request, response), as published.
const METHODS: &[(&str, &str, &str, &str, &str)] = &[
    ("flow.access", "AccessAPI", "Ping", ".flow.access.PingRequest", ".flow.access.PingResponse"),
    (
        "flow.access",
        "AccessAPI",
        "GetLatestBlockHeader",
        ".flow.access.GetLatestBlockHeaderRequest",
        ".flow.access.BlockHeaderResponse",
    ),
    (
        "flow.access",
        "AccessAPI",
        "ExecuteScriptAtBlockHeight",
        ".flow.access.ExecuteScriptAtBlockHeightRequest",
        ".flow.access.ExecuteScriptResponse",
    ),
    (
        "flow.access",
        "AccessAPI",
        "GetEventsForHeightRange",
        ".flow.access.GetEventsForHeightRangeRequest",
        ".flow.access.EventsResponse",
    ),
];

/// (message, field, number, type: a scalar's name or a message's/enum's full name, repeated), as
/// published. Messages written here with fewer fields than published list only those.
const FIELDS: &[(&str, &str, i32, &str, bool)] = &[
    ("flow.access.GetLatestBlockHeaderRequest", "is_sealed", 1, "bool", false),
    ("flow.access.BlockHeaderResponse", "block", 1, ".flow.entities.BlockHeader", false),
    ("flow.access.BlockHeaderResponse", "block_status", 2, ".flow.entities.BlockStatus", false),
    ("flow.access.BlockHeaderResponse", "metadata", 3, ".flow.entities.Metadata", false),
    ("flow.access.ExecuteScriptAtBlockHeightRequest", "block_height", 1, "uint64", false),
    ("flow.access.ExecuteScriptAtBlockHeightRequest", "script", 2, "bytes", false),
    ("flow.access.ExecuteScriptAtBlockHeightRequest", "arguments", 3, "bytes", true),
    (
        "flow.access.ExecuteScriptAtBlockHeightRequest",
        "execution_state_query",
        4,
        ".flow.entities.ExecutionStateQuery",
        false,
    ),
    ("flow.access.ExecuteScriptResponse", "value", 1, "bytes", false),
    ("flow.access.ExecuteScriptResponse", "metadata", 2, ".flow.entities.Metadata", false),
    ("flow.access.ExecuteScriptResponse", "computation_usage", 3, "uint64", false),
    ("flow.access.GetEventsForHeightRangeRequest", "type", 1, "string", false),
    ("flow.access.GetEventsForHeightRangeRequest", "start_height", 2, "uint64", false),
    ("flow.access.GetEventsForHeightRangeRequest", "end_height", 3, "uint64", false),
    (
        "flow.access.GetEventsForHeightRangeRequest",
        "event_encoding_version",
        4,
        ".flow.entities.EventEncodingVersion",
        false,
    ),
    (
        "flow.access.GetEventsForHeightRangeRequest",
        "execution_state_query",
        5,
        ".flow.entities.ExecutionStateQuery",
        false,
    ),
    ("flow.access.EventsResponse", "results", 1, ".flow.access.EventsResponse.Result", true),
    ("flow.access.EventsResponse", "metadata", 2, ".flow.entities.Metadata", false),
    ("flow.access.EventsResponse.Result", "block_id", 1, "bytes", false),
    ("flow.access.EventsResponse.Result", "block_height", 2, "uint64", false),
    ("flow.access.EventsResponse.Result", "events", 3, ".flow.entities.Event", true),
    ("flow.access.EventsResponse.Result", "block_timestamp", 4, ".google.protobuf.Timestamp", false),
    ("flow.entities.Event", "type", 1, "string", false),
    ("flow.entities.Event", "transaction_id", 2, "bytes", false),
    ("flow.entities.Event", "transaction_index", 3, "uint32", false),
    ("flow.entities.Event", "event_index", 4, "uint32", false),
    ("flow.entities.Event", "payload", 5, "bytes", false),
    ("flow.entities.BlockHeader", "id", 1, "bytes", false),
    ("flow.entities.BlockHeader", "parent_id", 2, "bytes", false),
    ("flow.entities.BlockHeader", "height", 3, "uint64", false),
    ("flow.entities.BlockHeader", "timestamp", 4, ".google.protobuf.Timestamp", false),
    ("flow.entities.Metadata", "latest_finalized_block_id", 1, "bytes", false),
    ("flow.entities.Metadata", "latest_finalized_height", 2, "uint64", false),
    ("flow.entities.Metadata", "node_id", 3, "bytes", false),
    ("flow.entities.Metadata", "highest_indexed_height", 4, "uint64", false),
    ("flow.entities.ExecutionStateQuery", "agreeing_executors_count", 1, "uint64", false),
    ("flow.entities.ExecutionStateQuery", "required_executor_ids", 2, "bytes", true),
    ("flow.entities.ExecutionStateQuery", "include_executor_metadata", 3, "bool", false),
];

/// (enum, value, number), as published.
const ENUM_VALUES: &[(&str, &str, i32)] = &[
    ("flow.entities.EventEncodingVersion", "JSON_CDC_V0", 0),
    ("flow.entities.EventEncodingVersion", "CCF_V0", 1),
    ("flow.entities.BlockStatus", "BLOCK_UNKNOWN", 0),
    ("flow.entities.BlockStatus", "BLOCK_FINALIZED", 1),
    ("flow.entities.BlockStatus", "BLOCK_SEALED", 2),
];

/// Messages published without fields.
const EMPTY: &[&str] = &["flow.access.PingRequest", "flow.access.PingResponse"];

fn type_name(field: &prost_types::FieldDescriptorProto) -> String {
    match field.r#type() {
        Type::Message | Type::Enum => field.type_name().to_owned(),
        Type::Bool => "bool".into(),
        Type::Uint64 => "uint64".into(),
        Type::Uint32 => "uint32".into(),
        Type::String => "string".into(),
        Type::Bytes => "bytes".into(),
        other => format!("{other:?}"),
    }
}

fn collect(prefix: &str, message: &DescriptorProto, out: &mut BTreeMap<String, DescriptorProto>) {
    let name = format!("{prefix}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, out);
    }
    out.insert(name, message.clone());
}

#[test]
fn the_access_api_written_here_is_the_published_one() {
    let set = FileDescriptorSet::decode(fastbreak_flow::DESCRIPTOR_SET).unwrap();
    let mut messages = BTreeMap::new();
    let mut enums = BTreeMap::new();
    let mut methods = Vec::new();
    for file in set.file.iter().filter(|f| !f.package().starts_with("google.")) {
        for message in &file.message_type {
            collect(file.package(), message, &mut messages);
        }
        for e in &file.enum_type {
            enums.insert(format!("{}.{}", file.package(), e.name()), e.clone());
        }
        for service in &file.service {
            for m in &service.method {
                methods.push((
                    file.package().to_owned(),
                    service.name().to_owned(),
                    m.name().to_owned(),
                    m.input_type().to_owned(),
                    m.output_type().to_owned(),
                ));
            }
        }
    }
    let expected: Vec<_> = METHODS
        .iter()
        .map(|(p, s, m, i, o)| ((*p).to_owned(), (*s).to_owned(), (*m).to_owned(), (*i).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(methods, expected, "the service and its methods");

    let mut written = Vec::new();
    for (name, message) in &messages {
        for field in &message.field {
            let repeated = field.label() == Label::Repeated;
            written.push((name.clone(), field.name().to_owned(), field.number(), type_name(field), repeated));
        }
    }
    written.sort();
    let mut published: Vec<_> =
        FIELDS.iter().map(|(m, f, n, t, r)| ((*m).to_owned(), (*f).to_owned(), *n, (*t).to_owned(), *r)).collect();
    published.sort();
    assert_eq!(written, published, "every field: message, name, number, type, repeated");

    let with_fields: std::collections::BTreeSet<&str> = FIELDS.iter().map(|f| f.0).collect();
    for name in messages.keys() {
        assert!(
            with_fields.contains(name.as_str()) || EMPTY.contains(&name.as_str()),
            "{name} is not a published message of the table"
        );
    }
    let mut values = Vec::new();
    for (name, e) in &enums {
        for v in &e.value {
            values.push((name.clone(), v.name().to_owned(), v.number()));
        }
    }
    values.sort();
    let mut published: Vec<_> = ENUM_VALUES.iter().map(|(e, v, n)| ((*e).to_owned(), (*v).to_owned(), *n)).collect();
    published.sort();
    assert_eq!(values, published, "every enum value");
}
