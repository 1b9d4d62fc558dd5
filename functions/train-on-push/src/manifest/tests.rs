//! The manifest catalogue: the four example manifests, and hostile ones, each with its exact rejection.

use super::*;

fn policy() -> Policy {
    Policy {
        region: "us-east-1".into(),
        instance_types: crate::config::DEFAULT_INSTANCE_TYPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        image_repositories: vec!["123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima".into()],
        data_prefixes: vec![S3Location::parse("s3://studio-ops-data-123456789012/data/").unwrap()],
        max_instance_count: 4,
        max_volume_gb: 100,
        max_runtime_seconds: 86_400,
        max_wait_seconds: 172_800,
        require_network_isolation: false,
        limits: Limits {
            max_bytes: 65_536,
            max_depth: 4,
        },
    }
}

const CHURN: &str =
    include_str!("../../../../tests/fixtures/models-repo/models/churn-xgboost/training.toml");
const SEQ2SEQ: &str =
    include_str!("../../../../tests/fixtures/models-repo/models/translate-seq2seq/training.toml");
const ARIMA: &str =
    include_str!("../../../../tests/fixtures/models-repo/models/sales-arima/training.toml");
const DIGITS: &str =
    include_str!("../../../../tests/fixtures/models-repo/models/digits-cnn/training.toml");

/// A minimal built-in manifest (11 lines) the hostile cases change.
const BASE: &str = r#"[algorithm]
name = "xgboost"

[resources]
instance_type = "ml.m5.xlarge"

[hyperparameters]
num_round = 10

[channels.train]
s3_uri = "s3://studio-ops-data-123456789012/data/churn/train/"
"#;

/// A minimal script-mode manifest (11 lines).
const SCRIPT: &str = r#"[framework]
name = "tensorflow"
version = "2.16"
entry_point = "train.py"
source_dir = "src"

[resources]
instance_type = "ml.m5.xlarge"

[channels.training]
s3_uri = "s3://studio-ops-data-123456789012/data/digits/"
"#;

fn ok(text: &str) -> Manifest {
    parse(text.as_bytes(), &policy()).unwrap_or_else(|r| panic!("rejected: {r}\n{text}"))
}

fn rejected(text: &str) -> (Option<u32>, String) {
    match parse(text.as_bytes(), &policy()) {
        Ok(m) => panic!("accepted: {m:?}\n{text}"),
        Err(r) => (r.line, r.reason),
    }
}

fn replace(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from:?} not in base");
    base.replacen(from, to, 1)
}

#[test]
fn the_four_example_manifests_are_valid() {
    let churn = ok(CHURN);
    assert_eq!(
        churn.kind,
        ModelKind::Algorithm {
            algorithm: Algorithm::Xgboost,
            version: "1.7-1".into()
        }
    );
    assert_eq!(
        churn.images.training,
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    );
    assert!(
        churn.network_isolation,
        "on by default for built-in algorithms"
    );
    assert_eq!(churn.hyperparameters["eta"].plain(), "0.2");
    assert_eq!(churn.hyperparameters["num_round"].plain(), "100");
    assert_eq!(churn.channels.len(), 2);
    assert_eq!(churn.experiment.as_deref(), Some("churn"));
    assert_eq!(churn.registry.content_types, vec!["text/csv"]);
    assert_eq!(churn.resources.max_runtime_seconds, 3600);

    let s2s = ok(SEQ2SEQ);
    assert_eq!(
        s2s.images.training,
        "811284229777.dkr.ecr.us-east-1.amazonaws.com/seq2seq:1"
    );
    assert_eq!(
        s2s.spot,
        Some(Spot {
            max_wait_seconds: 480 * 60,
            checkpoints: true
        })
    );
    assert_eq!(s2s.resources.volume_gb, 50);

    let arima = ok(ARIMA);
    assert_eq!(arima.kind, ModelKind::Container);
    assert_eq!(
        arima.images.training,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima:1.4.0"
    );
    assert_eq!(arima.images.inference, arima.images.training);
    assert!(arima.network_isolation);
    assert_eq!(arima.metrics.len(), 2);
    assert_eq!(arima.resources.volume_gb, 30, "the default volume");

    let digits = ok(DIGITS);
    let ModelKind::Framework(script) = &digits.kind else {
        panic!("not script mode")
    };
    assert_eq!(script.entry_point, "train.py");
    assert_eq!(script.source_dir, "src");
    assert_eq!(script.entry_point_line, Some(7));
    assert!(!digits.network_isolation, "off by default for script mode");
    assert_eq!(
        digits.images.training,
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.16.2-gpu-py310"
    );
    assert_eq!(
        digits.images.inference,
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16.1-cpu"
    );
    assert_eq!(digits.hyperparameters["optimizer"].json(), "\"adam\"");
    assert_eq!(digits.hyperparameters["learning_rate"].json(), "0.001");
}

#[test]
fn harmless_variations_are_accepted() {
    // A byte-order mark, CRLF line ends, a hyperparameter that merely looks like a setting.
    let bom = format!("\u{feff}{}", BASE.replace('\n', "\r\n"));
    assert_eq!(ok(&bom).channels.len(), 1);
    let m = ok(&replace(
        BASE,
        "num_round = 10",
        "num_round = 10\nrole = \"teacher\"\noutput = \"probabilities\"",
    ));
    assert_eq!(m.hyperparameters["role"].plain(), "teacher");
    // Unicode where free text is allowed.
    let m = ok(&format!("description = \"Modèle de churn — v2 ✓\"\n{BASE}"));
    assert_eq!(m.description.as_deref(), Some("Modèle de churn — v2 ✓"));
    // Channel names that look like settings are names, not settings.
    ok(&format!(
        "{BASE}\n[channels.output]\ns3_uri = \"s3://studio-ops-data-123456789012/data/x/\"\n"
    ));
    // The data location itself and a bucket-wide allowance.
    ok(&replace(BASE, "data/churn/train/", "data/"));
    // Spot with the default wait, disabled spot.
    let m = ok(&format!("{BASE}\n[spot]\n"));
    assert_eq!(m.spot.map(|s| s.max_wait_seconds), Some(7200));
    assert_eq!(ok(&format!("{BASE}\n[spot]\nenabled = false\n")).spot, None);
    // Script mode: the model folder itself as source, isolation on with the code channel free.
    let m = ok(&replace(
        SCRIPT,
        "source_dir = \"src\"",
        "source_dir = \".\"",
    ));
    let ModelKind::Framework(s) = &m.kind else {
        panic!()
    };
    assert_eq!(s.source_dir, "");
    assert!(ok(&format!("network_isolation = true\n{SCRIPT}")).network_isolation);
}

/// Every hostile manifest, with the line and the exact reason it is refused for.
#[test]
fn hostile_manifests_are_rejected_with_line_and_reason() {
    let instance_list = crate::config::DEFAULT_INSTANCE_TYPES.join(", ");
    let cases: Vec<(&str, String, Option<u32>, String)> = vec![
        // --- settings only the administrator may choose
        (
            "role override",
            format!("role_arn = \"arn:aws:iam::999999999999:role/admin\"\n{BASE}"),
            Some(1),
            "`role_arn` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)".into(),
        ),
        (
            "role override in API spelling",
            format!("RoleArn = \"arn:aws:iam::999999999999:role/admin\"\n{BASE}"),
            Some(1),
            "`RoleArn` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)".into(),
        ),
        (
            "role hidden in a section",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\nexecution-role = \"admin\""),
            Some(6),
            "`resources.execution-role` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)".into(),
        ),
        (
            "subnet override",
            format!("{BASE}\n[vpc]\nsubnets = [\"subnet-0badbadbadbadbad0\"]\n"),
            Some(13),
            "`vpc` cannot be set in a manifest: the VPC subnets and security groups are set by the administrator (STUDIO_OPS_TRAINING_SUBNET_IDS, STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS)".into(),
        ),
        (
            "security groups",
            format!("security_group_ids = [\"sg-1\"]\n{BASE}"),
            Some(1),
            "`security_group_ids` cannot be set in a manifest: the VPC subnets and security groups are set by the administrator (STUDIO_OPS_TRAINING_SUBNET_IDS, STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS)".into(),
        ),
        (
            "KMS key in a channel",
            format!("{BASE}kms_key_id = \"arn:aws:kms:us-east-1:999999999999:key/x\"\n"),
            Some(12),
            "`channels.train.kms_key_id` cannot be set in a manifest: encryption keys are set by the administrator (STUDIO_OPS_OUTPUT_KMS_KEY_ID, STUDIO_OPS_VOLUME_KMS_KEY_ID)".into(),
        ),
        (
            "output location",
            format!("output_path = \"s3://attacker/loot/\"\n{BASE}"),
            Some(1),
            "`output_path` cannot be set in a manifest: where models and checkpoints are written is set by the administrator (STUDIO_OPS_OUTPUT_S3_URI)".into(),
        ),
        (
            "checkpoint location",
            format!("{BASE}\n[spot]\ncheckpoint_s3_uri = \"s3://attacker/ckpt/\"\n"),
            Some(14),
            "`spot.checkpoint_s3_uri` cannot be set in a manifest: where models and checkpoints are written is set by the administrator (STUDIO_OPS_OUTPUT_S3_URI)".into(),
        ),
        (
            "data bucket",
            format!("bucket = \"attacker\"\n{BASE}"),
            Some(1),
            "`bucket` cannot be set in a manifest: the allowed data location is set by the administrator (STUDIO_OPS_DATA_S3_URIS); point each channel's s3_uri inside it".into(),
        ),
        (
            "tags",
            format!("{BASE}\n[tags]\n\"studio-ops:managed-by\" = \"studio-ops\"\n"),
            Some(13),
            "`tags` cannot be set in a manifest: tags are set by studio-ops".into(),
        ),
        (
            "job name",
            format!("training_job_name = \"someone-elses-job\"\n{BASE}"),
            Some(1),
            "`training_job_name` cannot be set in a manifest: training job names are <model>-<short commit>, set by studio-ops".into(),
        ),
        (
            "inter-container encryption off",
            format!("enable_inter_container_traffic_encryption = false\n{BASE}"),
            Some(1),
            "`enable_inter_container_traffic_encryption` cannot be set in a manifest: inter-container traffic encryption is always on".into(),
        ),
        // --- data outside the allowed location
        (
            "another bucket",
            replace(BASE, "s3://studio-ops-data-123456789012/data/churn/train/", "s3://attacker-bucket/exfil/"),
            Some(11),
            "channel `train` reads s3://attacker-bucket/exfil/, outside the allowed data location (s3://studio-ops-data-123456789012/data/)".into(),
        ),
        (
            "a sibling prefix",
            replace(BASE, "data/churn/train/", "data-private/keys/"),
            Some(11),
            "channel `train` reads s3://studio-ops-data-123456789012/data-private/keys/, outside the allowed data location (s3://studio-ops-data-123456789012/data/)".into(),
        ),
        (
            "path traversal in S3",
            replace(BASE, "data/churn/train/", "data/../secrets/"),
            Some(11),
            "channel `train`: \"s3://studio-ops-data-123456789012/data/../secrets/\" has an empty, `.` or `..` path segment".into(),
        ),
        (
            "encoded traversal in S3",
            replace(BASE, "data/churn/train/", "data/%2e%2e/secrets/"),
            Some(11),
            "channel `train`: \"s3://studio-ops-data-123456789012/data/%2e%2e/secrets/\" contains '%'; use letters, digits and ! - _ . * ' ( ) / = only".into(),
        ),
        (
            "not S3",
            replace(BASE, "s3://studio-ops-data-123456789012/data/churn/train/", "file:///etc/passwd"),
            Some(11),
            "channel `train`: \"file:///etc/passwd\" is not an s3:// URI".into(),
        ),
        // --- paths in the repository
        (
            "source_dir leaves the model folder",
            replace(SCRIPT, "source_dir = \"src\"", "source_dir = \"../churn-xgboost\""),
            Some(5),
            "source_dir \"../churn-xgboost\" leaves the model folder (`..`)".into(),
        ),
        (
            "absolute entry point",
            replace(SCRIPT, "entry_point = \"train.py\"", "entry_point = \"/etc/passwd\""),
            Some(4),
            "entry_point \"/etc/passwd\" is absolute; give a path inside the model folder".into(),
        ),
        (
            "backslash path",
            replace(SCRIPT, "source_dir = \"src\"", "source_dir = \"..\\\\secrets\""),
            Some(5),
            "source_dir \"..\\\\secrets\" contains '\\\\'; use letters, digits, `.`, `_`, `-` and `/` only".into(),
        ),
        (
            "entry point not Python",
            replace(SCRIPT, "entry_point = \"train.py\"", "entry_point = \"run.sh\""),
            Some(4),
            "entry_point \"run.sh\" must be a Python file (.py)".into(),
        ),
        // --- size and shape
        (
            "deep nesting",
            format!("{BASE}\n[registry.a.b.c]\nx = 1\n"),
            Some(14),
            "`registry.a.b.c.x` is nested 5 levels deep; a manifest may nest at most 4".into(),
        ),
        (
            "deep arrays",
            format!("x = [[[[[1]]]]]\n{BASE}"),
            Some(1),
            "`x[0][0][0][0]` is nested 5 levels deep; a manifest may nest at most 4".into(),
        ),
        (
            "nesting beyond the TOML parser's own limit",
            format!("x = {}{}\n", "[".repeat(500), "]".repeat(500)),
            Some(1),
            "not valid TOML: cannot recurse further; max recursion depth met".into(),
        ),
        (
            "duplicate key",
            replace(BASE, "num_round = 10", "num_round = 10\nnum_round = 20"),
            Some(9),
            "not valid TOML: duplicate key".into(),
        ),
        (
            "not TOML",
            format!("{BASE}this is not toml\n"),
            Some(12),
            "not valid TOML: key with no value, expected `=`".into(),
        ),
        (
            "empty",
            String::new(),
            Some(1),
            "missing field `resources`".into(),
        ),
        // --- wrong types and unknown keys
        (
            "count as a string",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\ninstance_count = \"2\""),
            Some(6),
            "invalid type: string \"2\", expected a whole number".into(),
        ),
        (
            "runtime as a float",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\nmax_runtime_minutes = 1.5"),
            Some(6),
            "invalid type: floating point `1.5`, expected a whole number".into(),
        ),
        (
            "hyperparameter as an array",
            replace(BASE, "num_round = 10", "num_round = 10\nlayers = [64, 32]"),
            Some(9),
            "invalid type: sequence, expected a string, number or boolean".into(),
        ),
        (
            "isolation as a string",
            format!("network_isolation = \"yes\"\n{BASE}"),
            Some(1),
            "invalid type: string \"yes\", expected a boolean".into(),
        ),
        (
            "unknown key",
            replace(BASE, "instance_type", "instance"),
            Some(5),
            "unknown field `instance`, expected one of `instance_type`, `instance_count`, `volume_gb`, `max_runtime_minutes`".into(),
        ),
        (
            "unknown section",
            format!("{BASE}\n[debugger]\nenabled = true\n"),
            Some(13),
            "unknown field `debugger`, expected one of `description`, `network_isolation`, `algorithm`, `container`, `framework`, `resources`, `spot`, `hyperparameters`, `channels`, `metrics`, `experiment`, `registry`".into(),
        ),
        // --- unicode
        (
            "look-alike instance type",
            replace(BASE, "ml.m5.xlarge", "ml.m5.\u{445}large"),
            Some(5),
            format!("instance type \"ml.m5.\u{445}large\" is not allowed; choose one of {instance_list}"),
        ),
        (
            "unicode in a channel name",
            replace(BASE, "[channels.train]", "[channels.\"tr\u{e4}in\"]"),
            Some(10),
            "channel name \"tr\u{e4}in\" must be 1 to 64 letters, digits, `.`, `-` or `_`".into(),
        ),
        (
            "control character in a hyperparameter",
            replace(BASE, "num_round = 10", "num_round = 10\nobjective = \"reg\\u0007\""),
            Some(9),
            "hyperparameter `objective` must be at most 2500 printable characters".into(),
        ),
        // --- allow-lists and caps
        (
            "instance type not allowed",
            replace(BASE, "ml.m5.xlarge", "ml.p4d.24xlarge"),
            Some(5),
            format!("instance type \"ml.p4d.24xlarge\" is not allowed; choose one of {instance_list}"),
        ),
        (
            "too many instances",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\ninstance_count = 50"),
            Some(6),
            "instance_count is 50; the limit is 4 (STUDIO_OPS_MAX_INSTANCE_COUNT)".into(),
        ),
        (
            "negative volume",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\nvolume_gb = -1"),
            Some(6),
            "volume_gb must be at least 1, not -1".into(),
        ),
        (
            "runtime over the cap",
            replace(BASE, "instance_type = \"ml.m5.xlarge\"", "instance_type = \"ml.m5.xlarge\"\nmax_runtime_minutes = 100000"),
            Some(6),
            "max_runtime_minutes is 100000; the limit is 1440 (STUDIO_OPS_MAX_RUNTIME_SECONDS)".into(),
        ),
        (
            "spot wait shorter than the runtime",
            format!("{BASE}\n[spot]\nmax_wait_minutes = 10\n"),
            Some(14),
            "spot max_wait_minutes must be at least 60, not 10".into(),
        ),
        (
            "image from an unlisted repository",
            replace(ARIMA, "sales-arima:1.4.0", "crypto-miner:1.0"),
            Some(5),
            "image repository 123456789012.dkr.ecr.us-east-1.amazonaws.com/crypto-miner is not allowed; allowed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima".into(),
        ),
        (
            "image from another account",
            replace(ARIMA, "123456789012.dkr", "999999999999.dkr"),
            Some(5),
            "image repository 999999999999.dkr.ecr.us-east-1.amazonaws.com/sales-arima is not allowed; allowed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima".into(),
        ),
        (
            "image from Docker Hub",
            replace(ARIMA, "123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima:1.4.0", "docker.io/library/python:3.12"),
            Some(5),
            "\"docker.io/library/python:3.12\" is not an ECR image URI (the host must be <account>.dkr.ecr.<region>.amazonaws.com)".into(),
        ),
        (
            "mutable latest tag",
            replace(ARIMA, ":1.4.0", ":latest"),
            Some(5),
            "the tag `latest` moves; pin a version tag or a digest so the run can be reproduced".into(),
        ),
        (
            "image in another region",
            replace(ARIMA, "us-east-1", "eu-west-1"),
            Some(5),
            "image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/sales-arima:1.4.0 is in eu-west-1, but training runs in us-east-1".into(),
        ),
        (
            "unknown algorithm",
            replace(BASE, "xgboost", "lightgbm"),
            Some(2),
            "unknown algorithm \"lightgbm\"; built-in algorithms: xgboost, seq2seq".into(),
        ),
        (
            "unknown algorithm version",
            replace(BASE, "name = \"xgboost\"", "name = \"xgboost\"\nversion = \"0.72\""),
            Some(3),
            "xgboost version \"0.72\" is not available; known versions: 0.90-1, 0.90-2, 1.0-1, 1.2-1, 1.2-2, 1.3-1, 1.5-1, 1.7-1, 3.0-5".into(),
        ),
        (
            "unknown TensorFlow Python",
            replace(SCRIPT, "version = \"2.16\"", "version = \"2.16\"\npython = \"py27\""),
            Some(4),
            "tensorflow 2.16.2 has no Python \"py27\"; available: py310".into(),
        ),
        (
            "two ways to train",
            format!("{BASE}\n[container]\nimage = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/sales-arima:1.4.0\"\n"),
            Some(13),
            "say how the model trains with exactly one of [algorithm], [container] or [framework] (found [algorithm] and [container])".into(),
        ),
        (
            "no way to train",
            replace(BASE, "[algorithm]\nname = \"xgboost\"\n", ""),
            None,
            "say how the model trains with exactly one of [algorithm], [container] or [framework]".into(),
        ),
        // --- what the algorithms need
        (
            "xgboost without num_round",
            replace(BASE, "num_round = 10", "max_depth = 3"),
            None,
            "xgboost needs the hyperparameter num_round (the number of boosting rounds) in [hyperparameters]".into(),
        ),
        (
            "seq2seq on a CPU",
            replace(SEQ2SEQ, "ml.p3.2xlarge", "ml.m5.xlarge"),
            Some(8),
            "seq2seq trains on GPU instances only; ml.m5.xlarge has no GPU".into(),
        ),
        (
            "seq2seq on two machines",
            replace(SEQ2SEQ, "volume_gb = 50", "volume_gb = 50\ninstance_count = 2"),
            Some(10),
            "seq2seq trains on a single instance; set instance_count = 1".into(),
        ),
        (
            "seq2seq without vocabulary",
            replace(SEQ2SEQ, "[channels.vocab]", "[channels.vocabulary]"),
            Some(26),
            "seq2seq needs the channels train, validation, vocab ([channels.vocab] is missing)".into(),
        ),
        (
            "metrics for a built-in algorithm",
            format!("{BASE}\n[metrics]\n\"validation:auc\" = 'auc:([0-9.]+)'\n"),
            Some(13),
            "built-in algorithms publish their own metrics (e.g. validation:auc); remove [metrics]".into(),
        ),
        (
            "no channels",
            replace(BASE, "[channels.train]\ns3_uri = \"s3://studio-ops-data-123456789012/data/churn/train/\"\n", ""),
            None,
            "add at least one input channel, e.g. [channels.train] with s3_uri = \"s3://...\"".into(),
        ),
        // --- script mode
        (
            "script mode sets its own program",
            format!("{SCRIPT}\n[hyperparameters]\nsagemaker_program = \"evil.py\"\n"),
            Some(14),
            "hyperparameter `sagemaker_program` is reserved: studio-ops sets it for script mode".into(),
        ),
        (
            "script mode code channel taken",
            format!("network_isolation = true\n{}\n[channels.code]\ns3_uri = \"s3://studio-ops-data-123456789012/data/x/\"\n", SCRIPT),
            Some(14),
            "channel name `code` is reserved: it carries the packaged source in a network-isolated job".into(),
        ),
        (
            "bad experiment name",
            format!("{BASE}\n[experiment]\nname = \"my experiment!\"\n"),
            Some(14),
            "experiment name \"my experiment!\" must be letters, digits and hyphens (at most 120), starting and ending with a letter or digit".into(),
        ),
        (
            "bad content type",
            format!("{BASE}\n[registry]\ncontent_types = [\"csv\"]\n"),
            Some(14),
            "content_types: \"csv\" is not a MIME type like text/csv".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, line, reason) in &cases {
        let got = rejected(text);
        if got != (*line, reason.clone()) {
            failures.push(format!(
                "{name}:\n  want {line:?} {reason}\n  got  {:?} {}",
                got.0, got.1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn size_and_encoding_bounds() {
    let huge = format!("{BASE}# {}\n", "x".repeat(70_000));
    assert_eq!(
        rejected(&huge),
        (
            None,
            format!(
                "the manifest is {} bytes; the limit is 65536 bytes",
                huge.len()
            )
        )
    );
    let mut bytes = format!("{BASE}description = \"").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'"', b'\n']);
    let err = parse(&bytes, &policy()).unwrap_err();
    assert_eq!(
        err,
        Rejection::new(Some(12), "the manifest is not valid UTF-8 text")
    );
    let many: String = (0..101).map(|i| format!("h{i} = {i}\n")).collect();
    let (_, reason) = rejected(&replace(
        BASE,
        "num_round = 10\n",
        &format!("num_round = 10\n{many}"),
    ));
    assert_eq!(reason, "at most 100 hyperparameters");
}

#[test]
fn administrator_policies_apply() {
    let mut strict = policy();
    strict.require_network_isolation = true;
    let digits = parse(DIGITS.as_bytes(), &strict).unwrap();
    assert!(
        digits.network_isolation,
        "required isolation turns script mode's default on"
    );
    let err = parse(
        format!("network_isolation = false\n{BASE}").as_bytes(),
        &strict,
    )
    .unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(
        err.reason.contains("STUDIO_OPS_REQUIRE_NETWORK_ISOLATION"),
        "{}",
        err.reason
    );
    let mut no_images = policy();
    no_images.image_repositories.clear();
    let err = parse(ARIMA.as_bytes(), &no_images).unwrap_err();
    assert!(err.reason.ends_with("allowed: none (ask an administrator to add it to STUDIO_OPS_ALLOWED_IMAGE_REPOSITORIES)"), "{}", err.reason);
    let mut eu = policy();
    eu.region = "eu-central-1".into();
    eu.image_repositories.clear();
    let churn = parse(CHURN.as_bytes(), &eu).unwrap();
    assert_eq!(
        churn.images.training,
        "492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    );
    let mut shallow = policy();
    shallow.limits.max_depth = 2;
    let err = parse(CHURN.as_bytes(), &shallow).unwrap_err();
    assert_eq!(
        err.reason,
        "`channels.train.content_type` is nested 3 levels deep; a manifest may nest at most 2"
    );
}
