//! One source of truth between code and `infra/template.yaml`: every environment variable a function's
//! `Config::from_env` reads is set by the template (and parses), every rule and schedule feeds a function the
//! workspace builds, and every rule may dead-letter into the delivery queue. `infra/identity-center-forwarder.yaml`
//! forwards exactly the events the suite's membership rules match, through a role that can do nothing else.
//!
//! References the template resolves at deploy time (`!Ref`, `!GetAtt`, `${..}`) get placeholder values shaped like
//! the real ones, derived from the template itself, so a new reference needs no edit here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value as Json, json};
use serde_norway::Value as Yaml;
use studio_ops_shared::config::Env;
use studio_ops_tests::moto::workspace_root;
use studio_ops_tests::sim::ACCOUNT_ID;
use studio_ops_tests::template::{self, Bus, Template};

const REGION: &str = "us-east-1";
const KEY_ID: &str = "0123abcd-4567-89ef-0123-456789abcdef";

/// How each function reads its configuration: the function's own `Config::from_env`.
type ReadConfig = fn(&Env<'_>) -> Result<(), String>;

const CONFIG_READERS: &[(&str, ReadConfig)] = &[
    ("provision-users", |env| {
        provision_users::config::Config::from_env(env)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("idle-shutdown", |env| {
        idle_shutdown::config::Config::from_env(env)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("train-on-push", |env| {
        train_on_push::config::Config::from_env(env, REGION)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("notify", |env| {
        notify::config::Config::from_env(env)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
];

fn template_text() -> String {
    template::read_template_text(&workspace_root()).unwrap()
}

fn document(text: &str) -> Yaml {
    serde_norway::from_str(text).unwrap()
}

fn get<'a>(value: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    value.as_mapping().and_then(|m| m.get(key))
}

fn entries(value: Option<&Yaml>) -> Vec<(String, &Yaml)> {
    value
        .and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Logical id → resource type.
fn resource_types(doc: &Yaml) -> BTreeMap<String, String> {
    entries(get(doc, "Resources"))
        .into_iter()
        .map(|(id, r)| {
            let ty = get(r, "Type")
                .and_then(Yaml::as_str)
                .unwrap_or("")
                .to_string();
            (id, ty)
        })
        .collect()
}

/// The `X.Y` names in a `Fn::Sub` string.
fn sub_references(text: &str, out: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { return };
        let name = &after[..end];
        if name.contains('.') && !name.starts_with("AWS::") {
            out.insert(name.to_string());
        }
        rest = &after[end + 1..];
    }
}

fn get_att_name(arg: &Yaml) -> Option<String> {
    match arg {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Sequence(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        _ => None,
    }
}

fn sub_text(arg: &Yaml) -> Option<&str> {
    match arg {
        Yaml::String(s) => Some(s),
        Yaml::Sequence(parts) => parts.first().and_then(Yaml::as_str),
        _ => None,
    }
}

/// Every `X.Y` the template reads with `GetAtt` (short or long form) or inside a `Sub` string.
fn attribute_references(value: &Yaml, out: &mut BTreeSet<String>) {
    match value {
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            match tag.trim_start_matches('!') {
                "GetAtt" => out.extend(get_att_name(&tagged.value)),
                "Sub" => {
                    if let Some(text) = sub_text(&tagged.value) {
                        sub_references(text, out);
                    }
                }
                _ => {}
            }
            attribute_references(&tagged.value, out);
        }
        Yaml::Mapping(map) => {
            for (k, v) in map {
                match k.as_str() {
                    Some("Fn::GetAtt") => out.extend(get_att_name(v)),
                    Some("Fn::Sub") => {
                        if let Some(text) = sub_text(v) {
                            sub_references(text, out);
                        }
                    }
                    _ => {}
                }
                attribute_references(v, out);
            }
        }
        Yaml::Sequence(items) => items.iter().for_each(|i| attribute_references(i, out)),
        _ => {}
    }
}

fn placeholder_arn(logical_id: &str, resource_type: &str) -> String {
    let service = resource_type
        .split("::")
        .nth(1)
        .unwrap_or("service")
        .to_ascii_lowercase();
    let name = logical_id.to_ascii_lowercase();
    match resource_type {
        "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT_ID}:role/{logical_id}"),
        "AWS::S3::Bucket" => format!("arn:aws:s3:::{name}"),
        "AWS::KMS::Key" => format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{KEY_ID}"),
        "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"),
        "AWS::Events::EventBus" => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"),
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
            format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
        }
        _ => format!("arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{logical_id}"),
    }
}

/// What `!Ref` of a resource gives, shaped like the real value.
fn placeholder_ref(logical_id: &str, resource_type: &str) -> String {
    match resource_type {
        "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{logical_id}"),
        "AWS::SQS::Queue" => {
            format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{logical_id}")
        }
        "AWS::KMS::Key" => KEY_ID.to_string(),
        _ => logical_id.to_ascii_lowercase(),
    }
}

/// What `!GetAtt X.attribute` gives, shaped like the real value.
fn placeholder_attribute(logical_id: &str, resource_type: &str, attribute: &str) -> String {
    match attribute {
        "Arn" => placeholder_arn(logical_id, resource_type),
        "TopicArn" | "QueueUrl" => placeholder_ref(logical_id, resource_type),
        "DomainId" => "d-0123456789ab".to_string(),
        "DomainArn" => format!("arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:domain/d-0123456789ab"),
        "Outputs.VpcId" => "vpc-0123456789abcdef0".to_string(),
        "Outputs.SubnetIds" => "subnet-0aaaaaaaaaaaaaaa0,subnet-0bbbbbbbbbbbbbbb0".to_string(),
        a if a.ends_with("SecurityGroupId") => "sg-0123456789abcdef0".to_string(),
        "Name" | "QueueName" | "TopicName" => logical_id.to_ascii_lowercase(),
        other => format!(
            "{}-{}",
            logical_id.to_ascii_lowercase(),
            other.to_ascii_lowercase()
        ),
    }
}

/// Values for every reference the template makes: parameter defaults, resources, their attributes.
fn deploy_time_values(text: &str) -> HashMap<String, String> {
    let doc = document(text);
    let types = resource_types(&doc);
    let mut values: HashMap<String, String> = template::parameter_defaults(text)
        .unwrap()
        .into_iter()
        .collect();
    // Required parameters (no default) get what an admin would give.
    values
        .entry("IdentityStoreId".into())
        .or_insert_with(|| "d-1234567890".into());
    for (name, _) in entries(get(&doc, "Parameters")) {
        values
            .entry(name.clone())
            .or_insert_with(|| format!("{name}-value"));
    }
    for (id, ty) in &types {
        values.insert(id.clone(), placeholder_ref(id, ty));
    }
    let mut attributes = BTreeSet::new();
    attribute_references(&doc, &mut attributes);
    for name in attributes {
        let Some((id, attribute)) = name.split_once('.') else {
            continue;
        };
        if let Some(ty) = types.get(id) {
            values.insert(name.clone(), placeholder_attribute(id, ty, attribute));
        }
    }
    values
}

fn parsed_template() -> Template {
    let text = template_text();
    template::parse(&text, &deploy_time_values(&text)).unwrap()
}

/// What is wrong between a function's configuration code and the variables the template gives it.
fn config_mismatches(
    function: &str,
    read: ReadConfig,
    variables: &BTreeMap<String, String>,
) -> Vec<String> {
    let source: HashMap<String, String> = variables.clone().into_iter().collect();
    let env = Env::new(&source);
    let mut problems = Vec::new();
    if let Err(error) = read(&env) {
        problems.push(format!(
            "{function}: Config::from_env fails with the template's values: {error}"
        ));
    }
    for name in env.names_read() {
        if !variables.contains_key(name) {
            problems.push(format!(
                "{function}: reads {name}, which infra/template.yaml does not set (add it to the function's \
                 Environment.Variables or Globals)"
            ));
        }
    }
    problems
}

#[test]
fn every_variable_a_function_reads_is_set_by_the_template() {
    let template = parsed_template();
    let mut problems = Vec::new();
    for (function, read) in CONFIG_READERS {
        let Some(spec) = template.functions.iter().find(|f| f.name == *function) else {
            problems.push(format!(
                "{function}: no function with this FunctionName in the template"
            ));
            continue;
        };
        problems.extend(config_mismatches(function, *read, &spec.env));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A configuration that needs `BUS` and may read `TTL_SECONDS`, like the shared `SuiteConfig` does.
fn read_bus_and_ttl(env: &Env<'_>) -> Result<(), String> {
    env.string("BUS", "the bus").map_err(|e| e.to_string())?;
    env.number_in("TTL_SECONDS", 60..=86_400, 3_600u64)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn a_variable_the_template_lacks_is_reported() {
    let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let complete = set(&[("BUS", "studio-ops"), ("TTL_SECONDS", "600")]);
    assert!(config_mismatches("f", read_bus_and_ttl, &complete).is_empty());

    // An optional variable with a code default still has to be set by the template.
    let problems = config_mismatches("f", read_bus_and_ttl, &set(&[("BUS", "studio-ops")]));
    assert_eq!(
        problems,
        [
            "f: reads TTL_SECONDS, which infra/template.yaml does not set (add it to the function's \
          Environment.Variables or Globals)"
        ]
    );

    // A value the code rejects is reported with the code's own message.
    let problems = config_mismatches(
        "f",
        read_bus_and_ttl,
        &set(&[("BUS", "studio-ops"), ("TTL_SECONDS", "5")]),
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("f: Config::from_env fails") && problems[0].contains("TTL_SECONDS"),
        "{problems:?}"
    );

    let problems = config_mismatches("f", read_bus_and_ttl, &set(&[]));
    assert!(
        problems.iter().any(|p| p.contains("reads BUS")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Config::from_env fails") && p.contains("BUS")),
        "{problems:?}"
    );
}

#[test]
fn every_function_in_the_template_is_checked_here_and_built_by_the_workspace() {
    let template = parsed_template();
    let checked: BTreeSet<&str> = CONFIG_READERS.iter().map(|(name, _)| *name).collect();
    for function in &template.functions {
        assert!(
            checked.contains(function.name.as_str()),
            "{} is in the template but its Config::from_env is not checked by tests/tests/infra.rs",
            function.name
        );
        let manifest = workspace_root()
            .join("functions")
            .join(&function.binary)
            .join("Cargo.toml");
        assert!(
            manifest.is_file(),
            "{}: Metadata.BuildProperties.Binary {} has no crate at {}",
            function.logical_id,
            function.binary,
            manifest.display()
        );
    }
    assert_eq!(template.functions.len(), CONFIG_READERS.len());
}

#[test]
fn every_rule_and_schedule_targets_a_function_of_the_template() {
    let template = parsed_template();
    let functions: BTreeSet<&str> = template.functions.iter().map(|f| f.name.as_str()).collect();
    assert!(!template.rules.is_empty() && !template.schedules.is_empty());
    for rule in &template.rules {
        assert!(
            functions.contains(rule.function.as_str()),
            "rule {} targets {}, which is not a function of the template",
            rule.event,
            rule.function
        );
        assert!(
            rule.pattern.as_object().is_some_and(|p| !p.is_empty()),
            "rule {} of {} has an empty pattern: it would match every event",
            rule.event,
            rule.function
        );
    }
    for schedule in &template.schedules {
        assert!(
            functions.contains(schedule.function.as_str()),
            "schedule {} targets {}, which is not a function of the template",
            schedule.event,
            schedule.function
        );
        assert!(
            schedule.expression.starts_with("rate(") || schedule.expression.starts_with("cron("),
            "schedule {} of {}: {:?} is not a rate() or cron() expression",
            schedule.event,
            schedule.function,
            schedule.expression
        );
    }
    for function in &template.functions {
        let triggers = template
            .rules
            .iter()
            .filter(|r| r.function == function.name)
            .count()
            + template
                .schedules
                .iter()
                .filter(|s| s.function == function.name)
                .count();
        assert!(triggers > 0, "{} has no rule or schedule", function.name);
    }
}

/// Every rule and schedule of every function, as `(function logical id, event name, event)`.
fn function_events(doc: &Yaml) -> Vec<(String, String, &Yaml)> {
    let mut out = Vec::new();
    for (id, resource) in entries(get(doc, "Resources")) {
        if get(resource, "Type").and_then(Yaml::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let events = get(resource, "Properties").and_then(|p| get(p, "Events"));
        for (name, event) in entries(events) {
            out.push((id.clone(), name, event));
        }
    }
    out
}

#[test]
fn every_trigger_retries_and_dead_letters() {
    let doc = document(&template_text());
    let events = function_events(&doc);
    assert!(!events.is_empty());
    for (function, name, event) in events {
        let kind = get(event, "Type").and_then(Yaml::as_str).unwrap_or("");
        if kind != "EventBridgeRule" && kind != "ScheduleV2" {
            continue;
        }
        let props = get(event, "Properties");
        let retry = props.and_then(|p| get(p, "RetryPolicy"));
        for field in ["MaximumRetryAttempts", "MaximumEventAgeInSeconds"] {
            assert!(
                retry.and_then(|r| get(r, field)).is_some(),
                "{function}.Events.{name}: RetryPolicy.{field} is missing"
            );
        }
        assert!(
            props
                .and_then(|p| get(p, "DeadLetterConfig"))
                .and_then(|d| get(d, "Arn"))
                .is_some(),
            "{function}.Events.{name}: DeadLetterConfig.Arn is missing (point it at DeliveryDeadLetterQueue)"
        );
    }
}

#[test]
fn the_delivery_queue_admits_every_rule_and_no_other() {
    let doc = document(&template_text());
    // SAM names the rule it generates for function F's event E "FE".
    let rules: BTreeSet<String> = function_events(&doc)
        .into_iter()
        .filter(|(_, _, e)| get(e, "Type").and_then(Yaml::as_str) == Some("EventBridgeRule"))
        .map(|(function, name, _)| format!("{function}{name}.Arn"))
        .collect();
    let policy = get(&doc, "Resources")
        .and_then(|r| get(r, "DeliveryDeadLetterQueuePolicy"))
        .expect("DeliveryDeadLetterQueuePolicy");
    let statements = get(policy, "Properties")
        .and_then(|p| get(p, "PolicyDocument"))
        .and_then(|d| get(d, "Statement"))
        .and_then(Yaml::as_sequence)
        .expect("the queue policy's statements");
    let admitted = statements
        .iter()
        .find(|s| {
            get(s, "Effect").and_then(Yaml::as_str) == Some("Allow")
                && get(s, "Principal")
                    .and_then(|p| get(p, "Service"))
                    .and_then(Yaml::as_str)
                    == Some("events.amazonaws.com")
        })
        .and_then(|s| get(s, "Condition"))
        .and_then(|c| get(c, "ArnEquals"))
        .and_then(|a| get(a, "aws:SourceArn"))
        .expect("an Allow for events.amazonaws.com with ArnEquals aws:SourceArn");
    let mut listed = BTreeSet::new();
    attribute_references(admitted, &mut listed);
    assert_eq!(
        listed, rules,
        "DeliveryDeadLetterQueuePolicy must list exactly the rules' ARNs (!GetAtt <Function><Event>.Arn)"
    );
}

// ---- Identity Center in another account: infra/identity-center-forwarder.yaml, deployed there, forwards the
// membership events from that account's default bus to the suite's bus.

const FORWARDER: &str = "infra/identity-center-forwarder.yaml";

/// provision-users' membership rules: the one on the default bus (Identity Center in this account) and the one on
/// the suite's bus (the same events, forwarded from the Identity Center account).
const MEMBERSHIP_RULES: [(&str, bool); 2] = [
    ("GroupMembershipChanged", false),
    ("GroupMembershipForwarded", true),
];

fn forwarder_text() -> String {
    let path = workspace_root().join(FORWARDER);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A value of the template `text` as plain JSON, its references given the placeholder deploy-time values.
fn resolved(text: &str, at: &str, value: &Yaml) -> Json {
    let mut values = deploy_time_values(text);
    // `!Ref AWS::AccountId` and the like (`${AWS::..}` inside a `!Sub` resolves without them).
    for (name, value) in [
        ("AWS::AccountId", ACCOUNT_ID),
        ("AWS::Region", REGION),
        ("AWS::Partition", "aws"),
        ("AWS::StackName", "studio-ops"),
    ] {
        values.insert(name.to_string(), value.to_string());
    }
    template::Resolver { values: &values }
        .resolve(at, value)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A string or a list of strings (IAM's `Action` and `Resource`), as a list.
fn strings(value: &Json) -> Vec<String> {
    match value {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("a string").to_string())
            .collect(),
        other => panic!("expected a string or a list of strings, found {other}"),
    }
}

/// The forwarder's one rule: its logical id and properties.
fn forwarder_rule(doc: &Yaml) -> (String, &Yaml) {
    let rules: Vec<(String, &Yaml)> = entries(get(doc, "Resources"))
        .into_iter()
        .filter(|(_, r)| get(r, "Type").and_then(Yaml::as_str) == Some("AWS::Events::Rule"))
        .collect();
    let ids: Vec<&String> = rules.iter().map(|(id, _)| id).collect();
    assert_eq!(
        rules.len(),
        1,
        "{FORWARDER} must have exactly one rule, has {ids:?}"
    );
    let (id, rule) = rules.into_iter().next().unwrap();
    let props = get(rule, "Properties").unwrap_or_else(|| panic!("{id} has no Properties"));
    (id, props)
}

#[test]
fn the_forwarder_and_the_suites_membership_rules_match_exactly_the_same_events() {
    let text = forwarder_text();
    let doc = document(&text);
    let (id, rule) = forwarder_rule(&doc);
    assert!(
        matches!(
            get(rule, "EventBusName").and_then(Yaml::as_str),
            None | Some("default")
        ),
        "{FORWARDER}: {id} must listen on the default bus, where Identity Center's CloudTrail events arrive"
    );
    let forwarded = resolved(
        &text,
        &format!("{id}.EventPattern"),
        get(rule, "EventPattern").expect("the forwarder rule's EventPattern"),
    );

    let suite_text = template_text();
    let suite_bus = Bus::Named(deploy_time_values(&suite_text)["SuiteEventBus"].clone());
    let template = parsed_template();
    for (event, on_suite_bus) in MEMBERSHIP_RULES {
        let rule = template
            .rules
            .iter()
            .find(|r| r.function == "provision-users" && r.event == event)
            .unwrap_or_else(|| panic!("provision-users has no rule {event}"));
        let bus = if on_suite_bus {
            suite_bus.clone()
        } else {
            Bus::Default
        };
        assert_eq!(
            rule.bus, bus,
            "provision-users.Events.{event} listens on the wrong bus"
        );
        assert_eq!(
            rule.pattern, forwarded,
            "{FORWARDER} {id}.EventPattern and provision-users.Events.{event}.Pattern differ: the forwarder must \
             send exactly the events the suite's membership rules match\nforwarder: {forwarded:#}\nsuite: {:#}",
            rule.pattern
        );
    }

    // Its one target: the SuiteEventBusArn parameter, through a role, with retries and a dead-letter queue.
    let targets = get(rule, "Targets")
        .and_then(Yaml::as_sequence)
        .expect("the forwarder rule's Targets");
    assert_eq!(targets.len(), 1, "{id}: one target, the suite's bus");
    let target = resolved(&text, &format!("{id}.Targets"), &targets[0]);
    assert_eq!(
        target["Arn"],
        json!(deploy_time_values(&text)["SuiteEventBusArn"]),
        "{id}: the target is the suite's bus (the SuiteEventBusArn parameter)"
    );
    for field in ["RoleArn", "RetryPolicy", "DeadLetterConfig"] {
        assert!(
            target.get(field).is_some(),
            "{id}: the target has no {field}"
        );
    }

    // The suite's bus admits from the Identity Center account only what the pattern matches: its detail-type and,
    // for each eventSource x.amazonaws.com, the source aws.x.
    let suite_doc = document(&suite_text);
    let policies: Vec<(String, &Yaml)> = entries(get(&suite_doc, "Resources"))
        .into_iter()
        .filter(|(_, r)| {
            get(r, "Type").and_then(Yaml::as_str) == Some("AWS::Events::EventBusPolicy")
        })
        .collect();
    assert_eq!(
        policies.len(),
        1,
        "infra/template.yaml: one AWS::Events::EventBusPolicy"
    );
    let (policy_id, policy) = &policies[0];
    assert!(
        get(policy, "Condition").and_then(Yaml::as_str).is_some(),
        "{policy_id} must exist only when Identity Center is in another account (a Condition)"
    );
    let statement = resolved(
        &suite_text,
        policy_id,
        get(policy, "Properties")
            .and_then(|p| get(p, "Statement"))
            .expect("the bus policy's Statement"),
    );
    assert_eq!(strings(&statement["Action"]), ["events:PutEvents"]);
    assert!(
        statement["Condition"]["ArnLike"]["aws:SourceArn"]
            .as_str()
            .is_some_and(|arn| arn.contains(":rule/")),
        "{policy_id}: only events a rule forwards (ArnLike aws:SourceArn ...:rule/*)"
    );
    let admitted = &statement["Condition"]["ForAllValues:StringEquals"];
    assert_eq!(
        admitted["events:detail-type"], forwarded["detail-type"],
        "{policy_id}: events:detail-type must be the membership pattern's detail-type"
    );
    let sources: Vec<String> = strings(&forwarded["detail"]["eventSource"])
        .iter()
        .map(|s| format!("aws.{}", s.trim_end_matches(".amazonaws.com")))
        .collect();
    assert_eq!(
        strings(&admitted["events:source"]),
        sources,
        "{policy_id}: events:source must be aws.<prefix> of each eventSource of the membership pattern"
    );
}

#[test]
fn the_forwarders_role_may_only_put_events_on_the_suite_bus() {
    let text = forwarder_text();
    let doc = document(&text);
    let (id, rule) = forwarder_rule(&doc);
    let mut roles = BTreeSet::new();
    for target in get(rule, "Targets")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        let role = get(target, "RoleArn").unwrap_or_else(|| {
            panic!("{id}: a target needs a RoleArn to put events on a bus in another account")
        });
        attribute_references(role, &mut roles);
    }
    let role_ids: Vec<&str> = roles
        .iter()
        .filter_map(|r| r.split_once('.'))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        role_ids.len(),
        1,
        "{id}: its target's role, !GetAtt <Role>.Arn, found {roles:?}"
    );
    let role_id = role_ids[0];
    let role = get(&doc, "Resources")
        .and_then(|r| get(r, role_id))
        .unwrap_or_else(|| panic!("{role_id} is not a resource of {FORWARDER}"));
    assert_eq!(
        get(role, "Type").and_then(Yaml::as_str),
        Some("AWS::IAM::Role")
    );
    let role = resolved(&text, role_id, role);
    let props = &role["Properties"];
    assert!(
        props.get("ManagedPolicyArns").is_none(),
        "{role_id}: no managed policies, only its inline statement"
    );
    let attachable: Vec<(String, String)> = resource_types(&doc)
        .into_iter()
        .filter(|(_, ty)| {
            matches!(
                ty.as_str(),
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy"
            )
        })
        .collect();
    assert!(
        attachable.is_empty(),
        "{FORWARDER}: no policy resource may add to {role_id}: {attachable:?}"
    );

    // Only EventBridge assumes it.
    for statement in props["AssumeRolePolicyDocument"]["Statement"]
        .as_array()
        .expect("trust statements")
    {
        assert_eq!(
            statement["Principal"],
            json!({"Service": "events.amazonaws.com"}),
            "{role_id}: trust"
        );
        assert_eq!(
            strings(&statement["Action"]),
            ["sts:AssumeRole"],
            "{role_id}: trust"
        );
    }

    // It may put events on the suite's bus, and nothing else.
    let bus = deploy_time_values(&text)["SuiteEventBusArn"].clone();
    let mut granted = BTreeSet::new();
    for policy in props["Policies"].as_array().expect("the role's Policies") {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_array()
            .expect("statements")
        {
            for not in ["NotAction", "NotResource", "NotPrincipal"] {
                assert!(
                    statement.get(not).is_none(),
                    "{role_id}: {not} grants too much: {statement}"
                );
            }
            if statement["Effect"] != "Allow" {
                continue;
            }
            granted.extend(strings(&statement["Action"]));
            assert_eq!(
                strings(&statement["Resource"]),
                std::slice::from_ref(&bus),
                "{role_id}: only the suite's bus (the SuiteEventBusArn parameter): {statement}"
            );
        }
    }
    assert_eq!(
        granted,
        BTreeSet::from(["events:PutEvents".to_string()]),
        "{role_id} may only put events"
    );
}

/// Every statement (a mapping with this `Sid`) anywhere in the template.
fn statements_with_sid<'a>(v: &'a Yaml, sid: &str, out: &mut Vec<&'a Yaml>) {
    match v {
        Yaml::Mapping(m) => {
            if get(v, "Sid").and_then(Yaml::as_str) == Some(sid) {
                out.push(v);
            }
            for (_, child) in m {
                statements_with_sid(child, sid, out);
            }
        }
        Yaml::Sequence(items) => items.iter().for_each(|i| statements_with_sid(i, sid, out)),
        Yaml::Tagged(t) => statements_with_sid(&t.value, sid, out),
        _ => {}
    }
}

#[test]
fn the_instance_storage_families_of_iam_and_of_train_on_push_are_the_same() {
    let doc = document(&template_text());
    let expected: BTreeSet<String> = train_on_push::plan::INSTANCE_STORAGE_FAMILIES
        .iter()
        .map(|f| format!("{f}.*"))
        .collect();
    for sid in [
        "StartTrainingOnInstanceStorage",
        "JobsInTheVpcOnInstanceStorage",
    ] {
        let mut found = Vec::new();
        statements_with_sid(&doc, sid, &mut found);
        assert_eq!(found.len(), 1, "statement {sid}");
        let listed: BTreeSet<String> = get(found[0], "Condition")
            .and_then(|c| get(c, "ForAllValues:StringLike"))
            .and_then(|c| get(c, "sagemaker:InstanceTypes"))
            .and_then(Yaml::as_sequence)
            .unwrap_or_else(|| panic!("{sid} lists no instance-storage families"))
            .iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        assert_eq!(
            listed, expected,
            "{sid} and train_on_push::plan::INSTANCE_STORAGE_FAMILIES differ"
        );
    }
}

/// The seconds between two runs of a schedule expression's usual forms: `rate(N unit)`, and a `cron` that runs once
/// a day (fixed minute and hour, every day).
fn schedule_period(expression: &str) -> Option<u64> {
    if let Some(rate) = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (n, unit) = rate.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        let unit_seconds = match unit.trim_end_matches('s') {
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            _ => return None,
        };
        return Some(n * unit_seconds);
    }
    let cron = expression.strip_prefix("cron(")?.strip_suffix(')')?;
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let fixed = |f: &str| f.chars().all(|c| c.is_ascii_digit());
    match fields.as_slice() {
        [minute, hour, "*", "*", "?", "*"] if fixed(minute) && fixed(hour) => Some(86_400),
        _ => None,
    }
}

/// A number in the template, or a `!Ref` to a Number parameter: its (default, maximum).
fn number_or_parameter(doc: &Yaml, value: Option<&Yaml>) -> (u64, u64, Option<String>) {
    match value {
        Some(Yaml::Number(n)) => {
            let n = n.as_u64().unwrap();
            (n, n, None)
        }
        Some(Yaml::Tagged(t)) if t.tag.to_string().trim_start_matches('!') == "Ref" => {
            let name = t.value.as_str().unwrap().to_string();
            let param = get(doc, "Parameters").and_then(|p| get(p, &name)).unwrap();
            let n = |field: &str| {
                get(param, field)
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .unwrap_or_else(|| panic!("parameter {name} has no numeric {field}"))
            };
            (n("Default"), n("MaxValue"), Some(name))
        }
        other => panic!("expected a number or a !Ref to a parameter, found {other:?}"),
    }
}

#[test]
fn every_scheduled_function_has_a_heartbeat_alarm_that_a_silent_schedule_fires() {
    use studio_ops_shared::metrics::{FUNCTION_DIMENSION, NAMESPACE, RUN_COMPLETED};
    let text = template_text();
    let doc = document(&text);
    let template = parsed_template();
    let alarms: Vec<(String, &Yaml)> = entries(get(&doc, "Resources"))
        .into_iter()
        .filter(|(_, r)| get(r, "Type").and_then(Yaml::as_str) == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|(id, r)| Some((id, get(r, "Properties")?)))
        .filter(|(_, p)| get(p, "MetricName").and_then(Yaml::as_str) == Some(RUN_COMPLETED))
        .collect();
    let mut covered = BTreeSet::new();
    // The weekly digest's schedule reads the ledger and emits no heartbeat: the heartbeat is the work's schedule.
    for schedule in template
        .schedules
        .iter()
        .filter(|s| s.input.get("digest").is_none())
    {
        let function = template
            .functions
            .iter()
            .find(|f| f.logical_id == schedule.function || f.name == schedule.function)
            .unwrap_or_else(|| panic!("schedule of unknown function {}", schedule.function));
        let dimension = |p: &Yaml| {
            get(p, "Dimensions")
                .and_then(Yaml::as_sequence)
                .map(|dims| {
                    dims.iter()
                        .filter_map(|d| {
                            Some((
                                get(d, "Name")?.as_str()?.to_string(),
                                get(d, "Value")?.as_str()?.to_string(),
                            ))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let wanted = vec![(FUNCTION_DIMENSION.to_string(), function.name.clone())];
        let Some((id, alarm)) = alarms.iter().find(|(_, p)| dimension(p) == wanted) else {
            panic!(
                "{} runs on a schedule ({}) but no alarm watches its {RUN_COMPLETED} metric",
                function.name, schedule.expression
            )
        };
        let field = |name: &str| get(alarm, name).and_then(Yaml::as_str).unwrap_or("");
        assert_eq!(field("Namespace"), NAMESPACE, "{id}");
        assert_eq!(
            field("TreatMissingData"),
            "breaching",
            "{id}: a silent schedule must fire it"
        );
        assert_eq!(field("ComparisonOperator"), "LessThanThreshold", "{id}");
        assert_eq!(field("Statistic"), "Sum", "{id}");
        assert_eq!(
            get(alarm, "Threshold").and_then(Yaml::as_u64),
            Some(1),
            "{id}"
        );
        let evaluations = get(alarm, "EvaluationPeriods")
            .and_then(Yaml::as_u64)
            .unwrap();
        assert_eq!(
            evaluations, 2,
            "{id}: two periods, so that one late run is not an alarm"
        );
        let (default, max, param) = number_or_parameter(&doc, get(alarm, "Period"));
        assert!(
            default % 60 == 0 && max % 60 == 0,
            "{id}: CloudWatch periods are multiples of 60 s"
        );
        assert!(
            max * evaluations <= 7 * 86_400,
            "{id}: Period x EvaluationPeriods may reach {} s; CloudWatch allows 7 days",
            max * evaluations
        );
        // The schedule's default and the alarm's default period agree (both are parameters an admin changes together).
        let period = schedule_period(&schedule.expression).unwrap_or_else(|| {
            panic!(
                "{id}: cannot tell the period of {:?}; teach schedule_period",
                schedule.expression
            )
        });
        assert_eq!(
            default, period,
            "{id}: period {default} s ({param:?}) but {} runs every {period} s",
            function.name
        );
        covered.insert(function.name.clone());
    }
    assert!(
        covered.contains("idle-shutdown")
            && covered.contains("provision-users")
            && covered.contains("train-on-push"),
        "{covered:?}"
    );
}

#[test]
fn schedule_periods_are_read_or_refused() {
    assert_eq!(schedule_period("rate(15 minutes)"), Some(900));
    assert_eq!(schedule_period("rate(1 hour)"), Some(3600));
    assert_eq!(schedule_period("cron(0 5 * * ? *)"), Some(86_400));
    assert_eq!(schedule_period("cron(0 5 ? * MON *)"), None);
    assert_eq!(schedule_period("rate(2 fortnights)"), None);
}

/// The dashboard (issue 16): every widget reads what the functions emit (`studio_ops_tests::dashboard`), and it
/// shows what an admin looks for: spend and savings per day, apps warned and stopped, profiles created and removed,
/// jobs started, failed and registered, each function's errors and duration, both queues' depth, the heartbeats.
#[test]
fn the_dashboard_reads_only_metrics_the_functions_emit() {
    use studio_ops_tests::dashboard;
    let dashboards = dashboard::check(&template_text()).unwrap_or_else(|errors| {
        panic!(
            "the dashboard reads what nothing emits:\n  {}",
            errors.join("\n  ")
        )
    });
    assert_eq!(dashboards.len(), 1, "one dashboard for the suite");
    let d = &dashboards[0];
    let mut missing: Vec<String> = [
        "idle-shutdown/MeteredUSD",
        "idle-shutdown/EstimatedHourlySavingsUSD",
        "idle-shutdown/AppsWarned",
        "idle-shutdown/AppsStopped",
        "provision-users/ProfilesCreated",
        "provision-users/ProfilesDeprovisioned",
        "train-on-push/TrainingJobsStarted",
        "train-on-push/TrainingJobsFailed",
        "train-on-push/ModelsRegistered",
        "AWS/SQS ApproximateNumberOfMessagesVisible «FailedInvocationQueue.QueueName»",
        "AWS/SQS ApproximateNumberOfMessagesVisible «DeliveryDeadLetterQueue.QueueName»",
    ]
    .into_iter()
    .filter(|m| !d.metrics.contains(*m))
    .map(String::from)
    .collect();
    let template = parsed_template();
    for f in &template.functions {
        for metric in ["Errors", "Duration"] {
            let wanted = format!("AWS/Lambda {metric} «{}»", f.logical_id);
            if !d.metrics.contains(&wanted) {
                missing.push(wanted);
            }
        }
    }
    for alarm in ["IdleSweepHeartbeatAlarm", "ReconcileHeartbeatAlarm"] {
        if !d.alarms.contains(alarm) {
            missing.push(alarm.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );
}

#[test]
fn a_widget_that_reads_nothing_is_refused() {
    use studio_ops_tests::dashboard;
    let text = template_text();
    for (good, bad, why) in [
        (
            r#"["StudioOps", "AppsWarned", "Function", "idle-shutdown"]"#,
            r#"["StudioOps", "AppsWarnd", "Function", "idle-shutdown"]"#,
            "idle-shutdown emits no metric AppsWarnd",
        ),
        (
            r#"["StudioOps", "AlertsPublished", "Function", "notify"]"#,
            r#"["StudioOps", "AlertsPublished", "Function", "notify", "Domain", "d-1"]"#,
            "exactly the dimension Function",
        ),
        (
            r#""${IdleSweepHeartbeatAlarm.Arn}""#,
            r#""${IdleSweepHeartbeatAlrm.Arn}""#,
            "not the Arn of an alarm",
        ),
        (
            r#""expression": "stopped * 24""#,
            r#""expression": "stoped * 24""#,
            "names stoped",
        ),
    ] {
        assert!(text.contains(good), "{good}");
        let errors = dashboard::check(&text.replacen(good, bad, 1)).expect_err(bad);
        assert!(errors.iter().any(|e| e.contains(why)), "{why}: {errors:?}");
    }
}

/// Alerts in chat are notifications only (docs/notify.md, Chat): each Amazon Q Developer channel reads the topic
/// notify publishes to, its role grants nothing, its guardrail denies everything, and both exist only when all their
/// ids are given.
#[test]
fn chat_channels_read_the_team_topic_and_can_do_nothing_else() {
    let text = template_text();
    let doc = document(&text);
    let resources = get(&doc, "Resources").unwrap();
    let notify_topic = entries(get(resources, "NotifyFunction").and_then(|f| get(f, "Properties")))
        .into_iter()
        .find(|(k, _)| k == "Environment")
        .and_then(|(_, env)| get(env, "Variables"))
        .and_then(|v| get(v, "STUDIO_OPS_ALERT_TOPIC_ARN"))
        .map(|v| format!("{v:?}"))
        .expect("notify's topic");
    let mut seen = 0;
    for (id, resource) in entries(Some(resources)) {
        let ty = get(resource, "Type").and_then(Yaml::as_str).unwrap_or("");
        if !ty.starts_with("AWS::Chatbot::") {
            continue;
        }
        seen += 1;
        let props = get(resource, "Properties").unwrap();
        let topics = get(props, "SnsTopicArns")
            .and_then(Yaml::as_sequence)
            .unwrap();
        assert_eq!(topics.len(), 1, "{id}");
        assert_eq!(
            format!("{:?}", topics[0]),
            notify_topic,
            "{id} reads notify's topic"
        );
        let guardrails = format!("{:?}", get(props, "GuardrailPolicies"));
        assert!(
            guardrails.contains("policy/AWSDenyAll"),
            "{id}: {guardrails}"
        );
        assert!(
            get(resource, "Condition").is_some(),
            "{id} exists only when its ids are given"
        );
        let role = format!("{:?}", get(props, "IamRoleArn"));
        assert!(role.contains("ChatChannelRole"), "{id}: {role}");
    }
    assert_eq!(seen, 2, "one Slack and one Teams channel configuration");
    let role = get(resources, "ChatChannelRole")
        .and_then(|r| get(r, "Properties"))
        .unwrap();
    for grant in ["Policies", "ManagedPolicyArns"] {
        assert!(
            get(role, grant).is_none(),
            "the chat role grants nothing: {grant}"
        );
    }
    let trust = format!("{:?}", get(role, "AssumeRolePolicyDocument"));
    assert!(trust.contains("chatbot.amazonaws.com"), "{trust}");
}

/// Every schedule's `Input`, as EventBridge Scheduler delivers it (its context attributes filled in), is a request
/// its function reads: a typo in the template would otherwise fail only in the account, once a week.
#[test]
fn every_schedules_input_is_a_request_its_function_reads() {
    let template = parsed_template();
    let mut read = 0;
    for schedule in &template.schedules {
        let delivered = schedule
            .input
            .to_string()
            .replace("<aws.scheduler.scheduled-time>", "2026-12-07T07:00:00Z")
            .replace(
                "<aws.scheduler.execution-id>",
                "d1c4a7e2-0000-4000-8000-000000000001",
            );
        let input: Json = serde_json::from_str(&delivered).unwrap();
        let function = template
            .functions
            .iter()
            .find(|f| f.logical_id == schedule.function || f.name == schedule.function)
            .unwrap();
        let parsed = match function.name.as_str() {
            "idle-shutdown" => idle_shutdown::trigger::Trigger::parse(&input).map(drop),
            "provision-users" => provision_users::trigger::parse_trigger(&input).map(drop),
            "train-on-push" => match train_on_push::trigger::parse_trigger(&input) {
                Ok(train_on_push::trigger::Trigger::CatchUp) => Ok(()),
                Ok(other) => panic!("train-on-push's schedule reads as {other:?}"),
                Err(e) => Err(e),
            },
            other => panic!("teach this test how {other} reads its schedule"),
        };
        parsed.unwrap_or_else(|e| panic!("{}'s schedule {}: {e}", function.name, schedule.event));
        read += 1;
    }
    assert!(
        read >= 3,
        "the sweep, the digests and the reconcile: {read}"
    );
    // The digest's week comes from the schedule's time, not from when the event arrives.
    let digest = template
        .schedules
        .iter()
        .find(|s| s.input.get("digest").is_some())
        .expect("the weekly digest's schedule");
    assert_eq!(
        digest.input["scheduledTime"], "<aws.scheduler.scheduled-time>",
        "{:?}",
        digest.input
    );
}

/// The network stack opens exactly Livy (TCP 8998, Studio → the cluster's primary node) when `EmrSecurityGroupId` is
/// set, and nothing when it is not: the rules that exist with and without it differ by those two alone.
#[test]
fn the_livy_rules_exist_exactly_when_an_emr_cluster_is_named_and_nothing_else_opens() {
    let path = workspace_root().join("infra/network.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = document(&text);
    let rules = |emr: &str| -> BTreeMap<String, Json> {
        let mut values: HashMap<String, String> = template::parameter_defaults(&text)
            .unwrap()
            .into_iter()
            .collect();
        values.insert("EmrSecurityGroupId".into(), emr.into());
        let on = template::conditions(&text, &values).unwrap();
        let mut out = BTreeMap::new();
        for (id, r) in entries(get(&doc, "Resources")) {
            let kind = get(r, "Type").and_then(Yaml::as_str).unwrap_or("");
            let condition = get(r, "Condition").and_then(Yaml::as_str);
            let exists = condition.is_none_or(|c| {
                on.get(c)
                    .copied()
                    .unwrap_or_else(|| panic!("{id}: condition {c} unknown"))
            });
            if !exists {
                continue;
            }
            let props = get(r, "Properties");
            let port = |k: &str| props.and_then(|p| get(p, k)).cloned();
            match kind {
                "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
                    out.insert(
                        id,
                        json!([
                            kind,
                            format!("{:?}", port("FromPort")),
                            format!("{:?}", port("ToPort"))
                        ]),
                    );
                }
                "AWS::EC2::SecurityGroup" => {
                    for key in ["SecurityGroupIngress", "SecurityGroupEgress"] {
                        if let Some(inline) = props.and_then(|p| get(p, key)) {
                            out.insert(format!("{id}.{key}"), json!(format!("{inline:?}")));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    };
    let without = rules("");
    let with = rules("sg-0e1f2a3b4c5d6e7f8");
    let added: Vec<&String> = with.keys().filter(|k| !without.contains_key(*k)).collect();
    assert_eq!(
        added,
        vec!["EmrLivyFromStudioIngress", "StudioToEmrLivyEgress"],
        "what EmrSecurityGroupId opens"
    );
    for id in added {
        let rule = with[id].to_string();
        assert!(
            rule.contains("8998"),
            "{id} must be Livy's port alone: {rule}"
        );
    }
    assert!(
        without
            .keys()
            .all(|k| with.contains_key(k) && with[k] == without[k]),
        "the other rules do not change with EMR"
    );
    assert!(
        !without.values().any(|v| v.to_string().contains("8998")),
        "no Livy rule without a cluster"
    );
}
