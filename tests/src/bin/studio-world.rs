//! `make world`: starts the local AWS world (moto + simulator, the suite's bus/table/topic and rules) and keeps it
//! up until Ctrl-C. It creates the Identity Center group provision-users follows (`data-science`), writes every variable the functions need to `target/world/lambda.env` (what
//! `cargo lambda watch --env-file` reads) and prints them as shell-safe `export` lines for any other AWS tool.

use studio_ops_tests::world::{World, WorldConfig, env_file_text, newcomer_env, shell_export};

/// Where `make world` writes the functions' variables (relative to the workspace root, where make runs).
const ENV_FILE: &str = "target/world/lambda.env";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let world = match World::start(WorldConfig::default()).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot start the local world: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let written = newcomer_env(&world).await.and_then(|env| {
        let text = env_file_text(&env)?;
        std::fs::create_dir_all("target/world").map_err(|e| format!("target/world: {e}"))?;
        std::fs::write(ENV_FILE, text).map_err(|e| format!("{ENV_FILE}: {e}"))?;
        Ok(env)
    });
    let env = match written {
        Ok(env) => env,
        Err(e) => {
            eprintln!("cannot write the functions' variables: {e}");
            world.stop().await;
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "# The local AWS world is up. Every function's variables are in {ENV_FILE}; in another shell:"
    );
    println!(
        "#   .venv/bin/cargo-lambda lambda watch --env-file {ENV_FILE}\n\
         # and in a third:\n\
         #   .venv/bin/cargo-lambda lambda invoke idle-shutdown --data-file events/idle-shutdown/manual-dry-run.json\n\
         # For other tools, the same variables as shell-safe lines (paste them, or: set -a; . {ENV_FILE}; set +a):"
    );
    for (k, v) in &env {
        println!("{}", shell_export(k, v));
    }
    println!("# Ctrl-C stops moto and the simulator.");
    let _ = tokio::signal::ctrl_c().await;
    world.stop().await;
    std::process::ExitCode::SUCCESS
}
