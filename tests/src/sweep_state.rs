//! idle-shutdown's sweep state in the local world's table, read and written through the function's own adapter
//! (`DynamoTables`) so that the tests, the demo and the bench agree with the function on keys and items: the
//! key of a simulator app, the warnings a sweep left, a warning planted or backdated, a domain's state cleared.

use std::collections::BTreeMap;

use idle_shutdown::adapters::dynamodb::DynamoTables;
use idle_shutdown::decision::{AppListing, AppOwner};
use idle_shutdown::ports::SweepState;
use idle_shutdown::state::{
    AppState as SweepAppState, SAVE_BATCH, StateChange, Warning, state_key,
};
use jiff::{SignedDuration, Timestamp};
use studio_ops_shared::AwsCallError;

use crate::sim::admin::AppState;
use crate::world::World;

/// The sweep-state table of `world`, through the function's adapter.
pub fn store(world: &World) -> DynamoTables {
    DynamoTables::new(
        aws_sdk_dynamodb::Client::new(world.moto_sdk()),
        &world.names.idle_state_table,
        &world.names.spend_table,
    )
}

/// The item key the function gives a simulator app (`app#user/ana/kernelgateway/default`).
pub fn key_of(app: &AppState) -> String {
    let owner = match (&app.space_name, &app.user_profile_name) {
        (Some(s), _) => AppOwner::Space(s.clone()),
        (None, u) => AppOwner::UserProfile(u.clone().unwrap_or_default()),
    };
    state_key(&AppListing {
        domain_id: app.domain_id.clone(),
        owner,
        app_type: app.app_type.clone(),
        app_name: app.app_name.clone(),
        status: app.status.clone(),
        instance_type: app.instance_type.clone(),
        created: Some(app.creation_time),
    })
}

/// The warnings the state holds for these apps (this incarnation of each: an item left by an earlier app of the
/// same name does not count), by `key_of`.
pub async fn warnings(
    world: &World,
    apps: &[AppState],
) -> Result<BTreeMap<String, Timestamp>, AwsCallError> {
    let mut out = BTreeMap::new();
    let mut domains: Vec<&str> = apps.iter().map(|a| a.domain_id.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    let store = store(world);
    for domain in domains {
        let state = store.load(domain).await?;
        for app in apps.iter().filter(|a| a.domain_id == domain) {
            let key = key_of(app);
            let warning = state
                .apps
                .get(&key)
                .filter(|s| s.created == app.creation_time.as_second())
                .and_then(|s| s.warning.as_ref());
            if let Some(w) = warning {
                out.insert(key, w.at);
            }
        }
    }
    Ok(out)
}

/// Records (or backdates) a warning of `app` sent at `at`, as the function would have recorded it.
pub async fn warn_at(world: &World, app: &AppState, at: Timestamp) -> Result<(), AwsCallError> {
    let state = SweepAppState {
        created: app.creation_time.as_second(),
        evidence_at: None,
        warning: Some(Warning {
            // The table keeps whole seconds.
            at: Timestamp::from_second(at.as_second()).unwrap_or(at),
            episode: None,
        }),
    };
    store(world)
        .save(
            &app.domain_id,
            &[StateChange::Put {
                key: key_of(app),
                state,
            }],
        )
        .await
}

/// Forgets everything remembered about a domain (a reseeded world starts without history).
pub async fn clear(world: &World, domain_id: &str) -> Result<(), AwsCallError> {
    let store = store(world);
    let state = store.load(domain_id).await?;
    let mut changes: Vec<StateChange> = state
        .apps
        .into_keys()
        .map(|key| StateChange::Delete { key })
        .collect();
    changes.push(StateChange::Unreached(BTreeMap::new()));
    for chunk in changes.chunks(SAVE_BATCH) {
        store.save(domain_id, chunk).await?;
    }
    Ok(())
}

/// Moves a domain's sweep state `by` into the past, as if that much time had passed since the sweeps that wrote it
/// (the demo's way of letting a grace period pass without waiting): warnings and the readings' idle evidence move;
/// creation times stay, since they must match the simulator's apps.
pub async fn shift(world: &World, domain_id: &str, by: SignedDuration) -> Result<(), AwsCallError> {
    let store = store(world);
    let state = store.load(domain_id).await?;
    let changes: Vec<StateChange> = state
        .apps
        .into_iter()
        .map(|(key, mut app)| {
            app.evidence_at = app.evidence_at.map(|e| e - by.as_secs());
            if let Some(w) = app.warning.as_mut() {
                w.at = w.at.checked_sub(by).unwrap_or(w.at);
            }
            StateChange::Put { key, state: app }
        })
        .collect();
    for chunk in changes.chunks(SAVE_BATCH) {
        store.save(domain_id, chunk).await?;
    }
    Ok(())
}

/// Backdates a budget notice of this month in the spend ledger (the demo's way of letting the grace period pass).
pub async fn backdate_notice(
    world: &World,
    domain_id: &str,
    account: &idle_shutdown::ledger::Account,
    notice: idle_shutdown::budget::Notice,
    at: Timestamp,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    use idle_shutdown::adapters::dynamodb::{budget_key, ledger_partition};
    let month = idle_shutdown::ledger::month_of(Timestamp::now());
    aws_sdk_dynamodb::Client::new(world.moto_sdk())
        .update_item()
        .table_name(&world.names.spend_table)
        .key("pk", AttributeValue::S(ledger_partition(domain_id, &month)))
        .key("sk", AttributeValue::S(budget_key(account)))
        .update_expression("SET #notice = :at")
        .expression_attribute_names("#notice", notice.attribute())
        .expression_attribute_values(
            ":at",
            AttributeValue::S(
                Timestamp::from_second(at.as_second())
                    .unwrap_or(at)
                    .to_string(),
            ),
        )
        .send()
        .await
        .map(drop)
        .map_err(|e| format!("UpdateItem: {e:?}"))
}
