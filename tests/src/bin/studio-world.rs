//! `make world`: starts the local AWS world (moto + simulator, the suite's bus/table/topic and rules) and keeps it
//! up until Ctrl-C, printing the variables that point `cargo lambda watch` (or any AWS tool) at it.

use studio_ops_tests::world::{World, WorldConfig, aws_env};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let world = match World::start(WorldConfig::default()).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot start the local world: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("# The local AWS world is up. In another shell:");
    for (k, v) in aws_env(world.moto().url(), world.sim().url()) {
        println!("export {k}={v}");
    }
    for function in &world.template.functions {
        println!("# {}:", function.name);
        for (k, v) in &function.env {
            println!("#   export {k}={v}");
        }
    }
    println!(
        "# then: cargo lambda watch   and   cargo lambda invoke <function> --data-file events/<function>/<fixture>.json"
    );
    println!("# Ctrl-C stops moto and the simulator.");
    let _ = tokio::signal::ctrl_c().await;
    world.stop().await;
    std::process::ExitCode::SUCCESS
}
