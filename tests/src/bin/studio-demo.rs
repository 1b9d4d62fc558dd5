//! `make demo`: starts the local AWS world, tells the team's day through the four functions, prints what
//! happened and writes `target/demo/report.json`; every process it started stops with it (also on Ctrl-C).

use std::time::Instant;

use studio_ops_tests::demo::{self, Report};
use studio_ops_tests::moto::world_dir;
use studio_ops_tests::world::{World, WorldConfig, WorldError};

async fn story(report: &mut Report) -> Result<(), WorldError> {
    println!("starting the local AWS world (moto + simulator + four Lambda processes)…");
    let mut world = World::start(WorldConfig::team_day()).await?;
    println!(
        "  moto {}  simulator {}  domain {}",
        world.moto().url(),
        world.sim().url(),
        world.names.domain_id
    );
    report
        .chapters
        .push(demo::provision::run(&mut world).await?);
    report.chapters.push(demo::train::run(&world).await?);
    report.chapters.push(demo::idle::run(&world).await?);
    report.chapters.push(demo::month::run(&world).await?);
    for message in world.inbox().await? {
        let body = message
            .get("Body")
            .and_then(serde_json::Value::as_str)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(message);
        report.team_messages.push(body);
    }
    world.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let mut report = Report {
        started_at: jiff::Timestamp::now().to_string(),
        ..Report::default()
    };
    let outcome = tokio::select! {
        r = story(&mut report) => r.map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.ok = outcome.is_ok() && report.chapters.iter().all(|c| c.ok);
    if let Err(e) = &outcome {
        eprintln!("demo failed: {e}");
    }
    report.print();
    let dir = world_dir()
        .parent()
        .map(|t| t.join("demo"))
        .unwrap_or_default();
    let path = dir.join("report.json");
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => println!("report written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
    if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
