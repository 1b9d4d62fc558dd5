//! Reads `infra/template.yaml`, the single source of truth for what the local world needs: each function's
//! environment variables and the EventBridge rules and schedules that feed it (CloudFormation short tags resolved).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse the template: {0}")]
    Parse(String),
    #[error("{at}: cannot resolve {reference} (give the local world a value for it)")]
    Unresolved { at: String, reference: String },
    #[error("{at}: {message}")]
    Shape { at: String, message: String },
}

/// Which bus a rule listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    Default,
    /// A custom bus, by its resolved name.
    Named(String),
}

/// An EventBridge rule that targets a function.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The function's `FunctionName`.
    pub function: String,
    /// The key under the function's `Events`.
    pub event: String,
    pub bus: Bus,
    pub pattern: Json,
}

/// An EventBridge Scheduler schedule that targets a function.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub function: String,
    pub event: String,
    pub expression: String,
    pub input: Json,
}

/// A function as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The suite's name of the function: its binary (`Metadata.BuildProperties.Binary`).
    pub name: String,
    /// `FunctionName` as deployed (derived from the stack's name).
    pub deployed_name: String,
    pub binary: String,
    /// Globals and function variables merged, resolved.
    pub env: BTreeMap<String, String>,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub functions: Vec<FunctionSpec>,
    pub rules: Vec<RuleSpec>,
    pub schedules: Vec<ScheduleSpec>,
    pub parameters: BTreeMap<String, String>,
}

/// The template as text.
pub fn read_template_text(root: &Path) -> Result<String, TemplateError> {
    let path = root.join("infra/template.yaml");
    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Values for `!Ref`/`!GetAtt`/`${}` references: parameters (defaults, overridable) and resource names/attributes.
pub struct Resolver<'a> {
    pub values: &'a HashMap<String, String>,
}

impl Resolver<'_> {
    fn lookup(&self, at: &str, reference: &str) -> Result<String, TemplateError> {
        self.values
            .get(reference)
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved {
                at: at.to_string(),
                reference: reference.to_string(),
            })
    }

    /// Resolves intrinsic functions (short and long form) into plain JSON.
    pub fn resolve(&self, at: &str, value: &Yaml) -> Result<Json, TemplateError> {
        Ok(match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => Json::Array(
                items
                    .iter()
                    .map(|i| self.resolve(at, i))
                    .collect::<Result<_, _>>()?,
            ),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(at, tag.trim_start_matches('!'), &tagged.value)?
            }
            Yaml::Mapping(map) => {
                if map.len() == 1
                    && let Some((Yaml::String(k), v)) = map.iter().next()
                    && (k == "Ref" || k.starts_with("Fn::"))
                {
                    return self.intrinsic(at, k.trim_start_matches("Fn::"), v);
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    out.insert(key.clone(), self.resolve(&format!("{at}.{key}"), v)?);
                }
                Json::Object(out)
            }
        })
    }

    fn intrinsic(&self, at: &str, name: &str, arg: &Yaml) -> Result<Json, TemplateError> {
        match (name, arg) {
            ("Ref", Yaml::String(r)) => self.lookup(at, r).map(Json::String),
            ("GetAtt", Yaml::String(r)) => self.lookup(at, r).map(Json::String),
            ("GetAtt", Yaml::Sequence(parts)) => {
                let joined: Vec<String> = parts
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect();
                self.lookup(at, &joined.join(".")).map(Json::String)
            }
            ("Sub", Yaml::String(text)) => self.substitute(at, text).map(Json::String),
            // A condition's value comes from the values as `Condition:<name>` = true/false; only the chosen
            // branch is resolved (the other may name a resource that does not exist then).
            ("If", Yaml::Sequence(parts)) if parts.len() == 3 => {
                let name = parts[0].as_str().unwrap_or_default();
                match self.lookup(at, &format!("Condition:{name}"))?.as_str() {
                    "true" => self.resolve(at, &parts[1]),
                    "false" => self.resolve(at, &parts[2]),
                    other => Err(TemplateError::Shape {
                        at: at.to_string(),
                        message: format!("condition {name} is {other:?}, not true or false"),
                    }),
                }
            }
            _ => Err(TemplateError::Unresolved {
                at: at.to_string(),
                reference: format!("!{name} {arg:?}"),
            }),
        }
    }

    fn substitute(&self, at: &str, text: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(TemplateError::Shape {
                    at: at.to_string(),
                    message: format!("unterminated ${{ in {text:?}"),
                });
            };
            let name = &after[..end];
            let value = match name {
                "AWS::Region" => "us-east-1".to_string(),
                "AWS::AccountId" => crate::sim::ACCOUNT_ID.to_string(),
                "AWS::Partition" => "aws".to_string(),
                "AWS::StackName" => "studio-ops".to_string(),
                "AWS::URLSuffix" => "amazonaws.com".to_string(),
                other => self.lookup(at, other)?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Every condition of a template that evaluates from `values` (the parameters), by name.
pub fn conditions(
    text: &str,
    values: &HashMap<String, String>,
) -> Result<BTreeMap<String, bool>, TemplateError> {
    let doc: Yaml =
        serde_norway::from_str(text).map_err(|e| TemplateError::Parse(e.to_string()))?;
    Ok(mapping_entries(get(&doc, "Conditions"))
        .into_iter()
        .filter_map(|(name, c)| Some((name, evaluate_condition(&doc, c, values, 0)?)))
        .collect())
}

/// A template condition's value (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition` over parameters); None when it
/// needs something the values do not hold.
fn evaluate_condition(
    doc: &Yaml,
    condition: &Yaml,
    values: &HashMap<String, String>,
    depth: usize,
) -> Option<bool> {
    if depth > 16 {
        return None;
    }
    let (name, arg) = match condition {
        Yaml::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        ),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            (k.as_str()?.trim_start_matches("Fn::").to_string(), v)
        }
        _ => return None,
    };
    let each = |arg: &Yaml| -> Option<Vec<bool>> {
        arg.as_sequence()?
            .iter()
            .map(|c| evaluate_condition(doc, c, values, depth + 1))
            .collect()
    };
    match name.as_str() {
        "Equals" => {
            let sides = arg.as_sequence()?;
            let resolver = Resolver { values };
            let side = |i: usize| -> Option<Json> {
                let v = resolver.resolve("Conditions", sides.get(i)?).ok()?;
                // `!Join`/`!Select` and the like are not resolved here: leave such conditions to the values.
                Some(v)
            };
            Some(side(0)? == side(1)?)
        }
        "Not" => Some(!each(arg)?.first().copied()?),
        "And" => Some(each(arg)?.iter().all(|b| *b)),
        "Or" => Some(each(arg)?.iter().any(|b| *b)),
        "Condition" => evaluate_condition(
            doc,
            get(get(doc, "Conditions")?, arg.as_str()?)?,
            values,
            depth + 1,
        ),
        _ => None,
    }
}

fn get<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn mapping_entries(v: Option<&Yaml>) -> Vec<(String, &Yaml)> {
    v.and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The parameters' defaults.
pub fn parameter_defaults(text: &str) -> Result<BTreeMap<String, String>, TemplateError> {
    let doc: Yaml =
        serde_norway::from_str(text).map_err(|e| TemplateError::Parse(e.to_string()))?;
    Ok(mapping_entries(get(&doc, "Parameters"))
        .into_iter()
        .filter_map(|(name, p)| {
            let d = get(p, "Default")?;
            let text = match d {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((name, text))
        })
        .collect())
}

/// Reads functions, rules and schedules, resolving references with `values` (which should include the parameters).
pub fn parse(text: &str, values: &HashMap<String, String>) -> Result<Template, TemplateError> {
    let doc: Yaml =
        serde_norway::from_str(text).map_err(|e| TemplateError::Parse(e.to_string()))?;
    // Conditions evaluate from the parameters (`Condition:<name>`), unless the values give them.
    let mut with_conditions = values.clone();
    for (name, condition) in mapping_entries(get(&doc, "Conditions")) {
        let key = format!("Condition:{name}");
        if !with_conditions.contains_key(&key)
            && let Some(v) = evaluate_condition(&doc, condition, values, 0)
        {
            with_conditions.insert(key, v.to_string());
        }
    }
    let values = &with_conditions;
    let resolver = Resolver { values };
    let globals = get(&doc, "Globals").and_then(|g| get(g, "Function"));
    let global_env = globals
        .and_then(|g| get(g, "Environment"))
        .and_then(|e| get(e, "Variables"));
    let global_timeout = globals
        .and_then(|g| get(g, "Timeout"))
        .and_then(Yaml::as_u64)
        .unwrap_or(3);

    let mut template = Template {
        functions: Vec::new(),
        rules: Vec::new(),
        schedules: Vec::new(),
        parameters: parameter_defaults(text)?,
    };
    for (logical_id, resource) in mapping_entries(get(&doc, "Resources")) {
        if get(resource, "Type").and_then(Yaml::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = get(resource, "Properties");
        let at = format!("Resources.{logical_id}");
        // The suite knows a function by its binary; the deployed name carries the stack's name.
        let binary = get(resource, "Metadata")
            .and_then(|m| get(m, "BuildProperties"))
            .and_then(|b| get(b, "Binary"))
            .and_then(Yaml::as_str)
            .ok_or_else(|| TemplateError::Shape {
                at: at.clone(),
                message: "a function needs Metadata.BuildProperties.Binary".into(),
            })?
            .to_string();
        let name = binary.clone();
        let deployed_name = match props.and_then(|p| get(p, "FunctionName")) {
            Some(v) => match resolver.resolve(&format!("{at}.FunctionName"), v)? {
                Json::String(s) => s,
                other => other.to_string(),
            },
            None => name.clone(),
        };
        let mut env = BTreeMap::new();
        let own_env = props
            .and_then(|p| get(p, "Environment"))
            .and_then(|e| get(e, "Variables"));
        for (key, value) in mapping_entries(global_env)
            .into_iter()
            .chain(mapping_entries(own_env))
        {
            let resolved = resolver.resolve(&format!("{at}.Environment.{key}"), value)?;
            let text = match resolved {
                Json::String(s) => s,
                other => other.to_string(),
            };
            env.insert(key, text);
        }
        let timeout_seconds = props
            .and_then(|p| get(p, "Timeout"))
            .and_then(Yaml::as_u64)
            .unwrap_or(global_timeout);
        for (event, spec) in mapping_entries(props.and_then(|p| get(p, "Events"))) {
            let at = format!("{at}.Events.{event}");
            let kind = get(spec, "Type").and_then(Yaml::as_str).unwrap_or("");
            let eprops = get(spec, "Properties");
            match kind {
                "EventBridgeRule" | "CloudWatchEvent" => {
                    let pattern = eprops.and_then(|p| get(p, "Pattern")).ok_or_else(|| {
                        TemplateError::Shape {
                            at: at.clone(),
                            message: "an EventBridge rule needs a Pattern".into(),
                        }
                    })?;
                    let bus = match eprops.and_then(|p| get(p, "EventBusName")) {
                        None => Bus::Default,
                        Some(b) => match resolver.resolve(&at, b)? {
                            Json::String(s) if s == "default" => Bus::Default,
                            Json::String(s) => Bus::Named(s),
                            other => {
                                return Err(TemplateError::Shape {
                                    at,
                                    message: format!("EventBusName resolved to {other}"),
                                });
                            }
                        },
                    };
                    template.rules.push(RuleSpec {
                        function: name.clone(),
                        event,
                        bus,
                        pattern: resolver.resolve(&format!("{at}.Pattern"), pattern)?,
                    });
                }
                "ScheduleV2" | "Schedule" => {
                    let expression = eprops
                        .and_then(|p| get(p, "ScheduleExpression"))
                        .map(|e| resolver.resolve(&at, e))
                        .transpose()?
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let input = match eprops.and_then(|p| get(p, "Input")) {
                        Some(Yaml::String(s)) => {
                            serde_json::from_str(s).map_err(|e| TemplateError::Shape {
                                at: at.clone(),
                                message: format!("Input is not JSON: {e}"),
                            })?
                        }
                        Some(other) => resolver.resolve(&at, other)?,
                        None => Json::Object(Default::default()),
                    };
                    template.schedules.push(ScheduleSpec {
                        function: name.clone(),
                        event,
                        expression,
                        input,
                    });
                }
                _ => {}
            }
        }
        template.functions.push(FunctionSpec {
            logical_id,
            deployed_name,
            name,
            binary,
            env,
            timeout_seconds,
        });
    }
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
Parameters:
  Repo: {Type: String, Default: sagemaker-repository}
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables:
        BUS: !Ref Bus
Resources:
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: studio-ops}}
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: train-on-push}
    Properties:
      FunctionName: !Sub ${AWS::StackName}-train-on-push
      Environment:
        Variables:
          REPO: !Ref Repo
          ARN: !Sub "arn:aws:codecommit:${AWS::Region}:${AWS::AccountId}:${Repo}"
          ROLE: !GetAtt Role.Arn
      Events:
        Push:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              detail: {repositoryName: [!Ref Repo]}
        Tick:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 hour), Input: '{"dryRun": true}'}
"#;

    #[test]
    fn resolves_short_and_long_intrinsics() {
        let mut values: HashMap<String, String> =
            parameter_defaults(DOC).unwrap().into_iter().collect();
        values.insert("Bus".into(), "studio-ops".into());
        values.insert("Role.Arn".into(), "arn:role".into());
        let t = parse(DOC, &values).unwrap();
        let f = &t.functions[0];
        assert_eq!(f.env["BUS"], "studio-ops");
        assert_eq!(f.name, "train-on-push");
        assert_eq!(f.deployed_name, "studio-ops-train-on-push");
        assert_eq!(f.env["REPO"], "sagemaker-repository");
        assert_eq!(
            f.env["ARN"],
            "arn:aws:codecommit:us-east-1:123456789012:sagemaker-repository"
        );
        assert_eq!(f.env["ROLE"], "arn:role");
        assert_eq!(f.timeout_seconds, 30);
        assert_eq!(t.rules[0].bus, Bus::Named("studio-ops".into()));
        assert_eq!(
            t.rules[0].pattern,
            serde_json::json!({"detail": {"repositoryName": ["sagemaker-repository"]}})
        );
        assert_eq!(t.schedules[0].input, serde_json::json!({"dryRun": true}));
    }

    #[test]
    fn unresolved_reference_is_named() {
        let err = parse(DOC, &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("cannot resolve"), "{err}");
    }
}
