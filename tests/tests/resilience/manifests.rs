//! The hostile-manifest catalogue: `training.toml` files that try to take over what only the administrator
//! chooses (role, network, keys, output bucket), escape the model folder, exceed the caps or are not text at all.
//! Each must be refused by train-on-push's manifest reader with the exact line and reason, so nothing starts.

/// One hostile manifest and the refusal it must get (`line N: reason`, or the reason alone).
pub struct BadManifest {
    pub name: &'static str,
    pub text: Vec<u8>,
    pub expected: &'static str,
}

/// The repository's real churn manifest, the base every case changes.
pub fn base() -> String {
    std::fs::read_to_string(
        studio_ops_tests::moto::workspace_root()
            .join("tests/fixtures/models-repo/models/churn-xgboost/training.toml"),
    )
    .unwrap()
}

fn with_line(after: &str, line: &str) -> Vec<u8> {
    base()
        .replacen(after, &format!("{after}\n{line}"), 1)
        .into_bytes()
}

pub fn bad_manifests() -> Vec<BadManifest> {
    vec![
        BadManifest {
            name: "role override",
            text: with_line("[resources]", "role_arn = \"arn:aws:iam::999999999999:role/admin\""),
            expected: "line 9: `resources.role_arn` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)",
        },
        BadManifest {
            name: "top-level role override",
            text: format!("role_arn = \"arn:aws:iam::999999999999:role/admin\"\n{}", base()).into_bytes(),
            expected: "line 1: `role_arn` cannot be set in a manifest: the execution role is set by the administrator (STUDIO_OPS_TRAINING_ROLE_ARN)",
        },
        BadManifest {
            name: "output bucket override",
            text: format!("output_path = \"s3://attacker-bucket/out/\"\n{}", base()).into_bytes(),
            expected: "line 1: `output_path` cannot be set in a manifest: where models and checkpoints are written is set by the administrator (STUDIO_OPS_OUTPUT_S3_URI)",
        },
        BadManifest {
            name: "input from a foreign bucket",
            text: base()
                .replace("s3://studio-ops-data-123456789012/data/churn/train/", "s3://attacker-bucket/data/")
                .into_bytes(),
            expected: "line 22: channel `train` reads s3://attacker-bucket/data/, outside the allowed data location (s3://studio-ops-data-123456789012/data/)",
        },
        BadManifest {
            name: "path traversal in a channel",
            text: base()
                .replace("data/churn/train/", "data/../../other-team/secrets/")
                .into_bytes(),
            expected: "line 22: channel `train`: \"s3://studio-ops-data-123456789012/data/../../other-team/secrets/\" has an empty, `.` or `..` path segment",
        },
        BadManifest {
            name: "VPC override",
            text: with_line("[resources]", "subnets = [\"subnet-0123456789abcdef0\"]"),
            expected: "line 9: `resources.subnets` cannot be set in a manifest: the VPC subnets and security groups are set by the administrator (STUDIO_OPS_TRAINING_SUBNET_IDS, STUDIO_OPS_TRAINING_SECURITY_GROUP_IDS)",
        },
        BadManifest {
            name: "KMS key override",
            text: with_line("[resources]", "volume_kms_key_id = \"arn:aws:kms:us-east-1:999999999999:key/x\""),
            expected: "line 9: `resources.volume_kms_key_id` cannot be set in a manifest: encryption keys are set by the administrator (STUDIO_OPS_OUTPUT_KMS_KEY_ID, STUDIO_OPS_VOLUME_KMS_KEY_ID)",
        },
        BadManifest {
            name: "instance type not allowed",
            text: base().replace("ml.m5.xlarge", "ml.p4d.24xlarge").into_bytes(),
            expected: "line 9: instance type \"ml.p4d.24xlarge\" is not allowed; choose one of ml.m5.large, ml.m5.xlarge, ml.m5.2xlarge, ml.c5.xlarge, ml.c5.2xlarge, ml.g4dn.xlarge, ml.g5.xlarge, ml.p3.2xlarge",
        },
        BadManifest {
            name: "instance count beyond the cap",
            text: base().replace("instance_count = 1", "instance_count = 1000").into_bytes(),
            expected: "line 10: instance_count is 1000; the limit is 4 (STUDIO_OPS_MAX_INSTANCE_COUNT)",
        },
        BadManifest {
            name: "runtime beyond the cap",
            text: base().replace("max_runtime_minutes = 60", "max_runtime_minutes = 100000").into_bytes(),
            expected: "line 12: max_runtime_minutes is 100000; the limit is 1440 (STUDIO_OPS_MAX_RUNTIME_SECONDS)",
        },
        BadManifest {
            name: "image from a foreign registry",
            text: base()
                .replace("[algorithm]\nname = \"xgboost\"\nversion = \"1.7-1\"", "[container]\nimage = \"999999999999.dkr.ecr.us-east-1.amazonaws.com/miner:1.0\"")
                .into_bytes(),
            expected: "line 5: image repository 999999999999.dkr.ecr.us-east-1.amazonaws.com/miner is not allowed; allowed: none (ask an administrator to add it to STUDIO_OPS_ALLOWED_IMAGE_REPOSITORIES)",
        },
        BadManifest {
            name: "not UTF-8",
            text: {
                let mut b = base().into_bytes();
                b.extend_from_slice(b"\ndescription = \"\xff\xfe\"\n");
                b
            },
            expected: "line 36: the manifest is not valid UTF-8 text",
        },
        BadManifest {
            name: "1 MB manifest",
            text: format!("{}\n# {}\n", base(), "x".repeat(1024 * 1024)).into_bytes(),
            expected: "the manifest is 1049299 bytes; the limit is 65536 bytes",
        },
        BadManifest {
            name: "nesting bomb",
            text: format!("{}\n[hyperparameters.deep]\nx = {}1{}\n", base(), "[".repeat(200), "]".repeat(200)).into_bytes(),
            expected: "line 37: not valid TOML: cannot recurse further; max recursion depth met",
        },
        BadManifest {
            name: "not TOML",
            text: b"{\"algorithm\": \"xgboost\"}".to_vec(),
            expected: "line 1: not valid TOML: invalid key-value pair, expected key",
        },
        BadManifest {
            name: "unknown setting (typo)",
            text: with_line("[resources]", "instance_tyep = \"ml.m5.large\""),
            expected: "line 9: unknown field `instance_tyep`, expected one of `instance_type`, `instance_count`, `volume_gb`, `max_runtime_minutes`",
        },
        BadManifest {
            name: "script-mode hyperparameter the framework reserves",
            text: std::fs::read_to_string(
                studio_ops_tests::moto::workspace_root()
                    .join("tests/fixtures/models-repo/models/digits-cnn/training.toml"),
            )
            .unwrap()
            .replacen("[hyperparameters]", "[hyperparameters]\nmodel_dir = \"s3://attacker-bucket/\"", 1)
            .into_bytes(),
            expected: "line 15: hyperparameter `model_dir` is reserved: studio-ops sets it for script mode",
        },
        BadManifest {
            name: "experiment name with shell injection",
            text: base().replace("name = \"churn\"", "name = \"churn; rm -rf /\"").into_bytes(),
            expected: "line 30: experiment name \"churn; rm -rf /\" must be letters, digits and hyphens (at most 120), starting and ending with a letter or digit",
        },
    ]
}
