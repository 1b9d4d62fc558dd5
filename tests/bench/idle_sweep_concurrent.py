"""The concurrent Python peer of idle-shutdown for `make bench`: what an administrator who writes Python would build
after issue 14 — a boto3 thread pool of the same concurrency as the Rust function, the same client-side limit per
SageMaker operation (a token bucket per operation), and the same request plan and decisions as the Rust function,
so that the comparison measures the implementation, not the algorithm.

The plan (as `functions/idle-shutdown/src/sweep.rs`):
- the domain's sweep state: one strongly consistent DynamoDB query (paginated) of the function's own table and item
  format (`pk` = domain, `sk` = `app#<owner>/<type>/<name>` lower-cased; `created`, `evidenceAt`, `warnedAt`);
- ListApps, paginated (100 a page); InService billable apps only (not JupyterServer, not `system` instances);
- an app whose last reading showed idle evidence at `t`, with no warning outstanding, is quiet until `t` + its idle
  limit (or its uptime cap, if sooner): no call at all;
- DescribeApp of every other app; an app not idle is kept (its reading recorded);
- an idle app with a valid warning still in its grace period is left (no call);
- otherwise (it would be warned or stopped) ListTags of the app and its owner's facts (DescribeSpace + ListTags of
  the space, DescribeUserProfile + ListTags of the profile), each owner once per sweep; an exempt tag on any of them
  keeps the app; the old warning tag is honoured once and removed (DeleteTags);
- a valid warning older than the grace period stops the app (DeleteApp), no valid warning warns it (recorded in the
  state table, no tag);
- changed state items are written 25 per BatchWriteItem;
- the spend ledger (`functions/idle-shutdown/src/meter.rs`, `ledger.rs`), when SPEND_TABLE is given: the month's
  records of the domain (one eventually consistent query), the spaces' owners (ListSpaces, 100 a page), and every
  InService app on a billable instance metered alongside the examination, in the same thread pool: its record of the
  current month (absolute seconds since creation or the month's start, per day, priced from the same price file)
  written with the same conditional PutItem unless the ledger holds a later reading. (The Rust function also closes
  the month before on an app's first sighting in a month; a bench run never crosses a month.)
Idle rules: ml.g*/ml.p*/ml.trn*/ml.inf* 60 min with a 24 h uptime cap, anything else 180 min. Like the sequential
peer it publishes no events and keeps no idempotency records, and it has no deadline (it always finishes), so it
keeps no record of apps not reached: lighter than the Rust function, the comparison favours Python.

Usage: idle_sweep_concurrent.py DOMAIN_ID STATE_TABLE [CONCURRENCY [CALLS_PER_SECOND [BURST [SPEND_TABLE]]]]
(endpoints from AWS_ENDPOINT_URL_SAGEMAKER / AWS_ENDPOINT_URL_DYNAMODB). Prints one JSON object.
"""

import concurrent.futures
import datetime
import fnmatch
import json
import pathlib
import resource
import sys
import threading
import time
import tomllib

import boto3
from botocore.config import Config

WARNING_TAG = "studio-ops:idle-warning-at"
EXEMPT = ("studio-ops:idle-shutdown", "exempt")
BILLABLE = {"JupyterLab", "CodeEditor", "KernelGateway", "RSessionGateway"}
RULES = [("ml.g*", 60, 24 * 60), ("ml.p*", 60, 24 * 60), ("ml.trn*", 60, 24 * 60), ("ml.inf*", 60, 24 * 60), ("*", 180, None)]
GRACE = datetime.timedelta(minutes=30)
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
TTL_SECONDS = 30 * 24 * 3600


class Buckets:
    """One token bucket per SageMaker operation (AWS sets its quotas per API), shared by the threads."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.lock = threading.Lock()
        self.state = {}

    def take(self, op):
        while True:
            with self.lock:
                now = time.monotonic()
                tokens, last = self.state.get(op, (self.burst, now))
                tokens = min(self.burst, tokens + (now - last) * self.rate)
                if tokens >= 1:
                    self.state[op] = (tokens - 1, now)
                    return
                self.state[op] = (tokens, now)
                wait = (1 - tokens) / self.rate
            time.sleep(wait)


class Once:
    """A value computed at most once per key per sweep, whatever the threads asking."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cells = {}

    def get(self, key, compute):
        with self.lock:
            cell = self.cells.setdefault(key, [threading.Lock(), None, False])
        with cell[0]:
            if not cell[2]:
                cell[1], cell[2] = compute(), True
            return cell[1]


def rule_for(instance):
    return next(r for r in RULES if fnmatch.fnmatch(instance.lower(), r[0]))


def seconds(ts):
    return int(ts.timestamp())


def from_seconds(s):
    return datetime.datetime.fromtimestamp(s, datetime.timezone.utc)


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def exempt(tags):
    return tags.get(EXEMPT[0]) == EXEMPT[1]


def main():
    domain, table = sys.argv[1], sys.argv[2]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 100.0
    burst = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    spend_table = sys.argv[6] if len(sys.argv) > 6 else None
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=concurrency + 4)
    sm = boto3.client("sagemaker", config=config)
    ddb = boto3.client("dynamodb", config=config)
    buckets = Buckets(rate, burst)
    now = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()

    def call(op, fn, **kwargs):
        buckets.take(op)
        return fn(**kwargs)

    def tags_of(arn):
        out, token = {}, None
        while True:
            kwargs = {"ResourceArn": arn, **({"NextToken": token} if token else {})}
            page = call("ListTags", sm.list_tags, **kwargs)
            out.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
            token = page.get("NextToken")
            if not token:
                return out

    # The domain's state: one query, page by page.
    state, ddb_requests = {}, {"Query": 0, "BatchWriteItem": 0}
    kwargs = {
        "TableName": table,
        "KeyConditionExpression": "pk = :d",
        "ExpressionAttributeValues": {":d": {"S": domain}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        ddb_requests["Query"] += 1
        for item in page.get("Items", []):
            sk = item["sk"]["S"]
            if sk.startswith("app#"):
                state[sk] = {
                    "created": int(item["created"]["N"]),
                    "evidenceAt": int(item["evidenceAt"]["N"]) if "evidenceAt" in item else None,
                    "warnedAt": parse_time(item["warnedAt"]["S"]) if "warnedAt" in item else None,
                }
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    apps, token = [], None
    while True:
        kwargs = {"DomainIdEquals": domain, "MaxResults": 100, **({"NextToken": token} if token else {})}
        page = call("ListApps", sm.list_apps, **kwargs)
        apps.extend(page.get("Apps", []))
        token = page.get("NextToken")
        if not token:
            break

    # The spend ledger's month of this domain, and the spaces' owners (a private space's apps are billed to it).
    month = now.strftime("%Y-%m")
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    held, owners, prices = {}, {}, {}
    if spend_table:
        price_file = pathlib.Path(__file__).resolve().parents[2] / "shared/prices/studio/us-east-1.toml"
        prices = {k: v["usd_per_hour"] for k, v in tomllib.loads(price_file.read_text())["prices"].items()}
        ddb_requests["PutItem"] = 0
        kwargs = {
            "TableName": spend_table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": domain + "#" + month}},
        }
        while True:
            page = ddb.query(**kwargs)
            ddb_requests["Query"] += 1
            for item in page.get("Items", []):
                if "until" in item:
                    held[item["sk"]["S"]] = int(item["until"]["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if any(a.get("SpaceName") for a in apps):
            token = None
            while True:
                kwargs = {"DomainIdEquals": domain, "MaxResults": 100, **({"NextToken": token} if token else {})}
                page = call("ListSpaces", sm.list_spaces, **kwargs)
                for sp in page.get("Spaces", []):
                    owner = (sp.get("OwnershipSettingsSummary") or {}).get("OwnerUserProfileName")
                    if owner:
                        owners[sp["SpaceName"].lower()] = owner
                token = page.get("NextToken")
                if not token:
                    break

    def meter(app):
        created = app.get("CreationTime")
        instance = (app.get("ResourceSpec") or {}).get("InstanceType")
        if created is None or now <= created:
            return
        if app.get("SpaceName"):
            owner = owners.get(app["SpaceName"].lower())
            account = "user/" + owner.lower() if owner else "space/" + app["SpaceName"].lower()
            kind = "space/" + app["SpaceName"]
        else:
            account = "user/" + app["UserProfileName"].lower()
            kind = "user/" + app["UserProfileName"]
        sk = ("app#" + kind + "/" + app["AppType"] + "/" + app["AppName"]).lower() + "#" + str(seconds(created))
        until = seconds(now)
        if held.get(sk, -1) >= until:
            return
        start = max(created, month_start)
        days, at = {}, start
        while at < now:
            nxt = min(now, (at + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))
            days[at.strftime("%Y-%m-%d")] = {"N": str(seconds(nxt) - seconds(at))}
            at = nxt
        total = until - seconds(start)
        item = {
            "pk": {"S": domain + "#" + month}, "sk": {"S": sk}, "kind": {"S": "studio-app"},
            "account": {"S": account}, "appType": {"S": app["AppType"]}, "appName": {"S": app["AppName"]},
            "instanceType": {"S": instance}, "created": {"N": str(seconds(created))}, "until": {"N": str(until)},
            "seconds": {"N": str(total)}, "days": {"M": days},
            "expiration": {"N": str(until + 430 * 24 * 3600)},
        }
        if app.get("SpaceName"):
            item["space"] = {"S": app["SpaceName"]}
        if instance in prices:
            item["usdPerHour"] = {"N": str(prices[instance])}
            item["usd"] = {"N": "%.6f" % (prices[instance] * total / 3600)}
        try:
            ddb.put_item(
                TableName=spend_table, Item=item,
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
        with lock:
            ddb_requests["PutItem"] += 1

    spaces, profiles = Once(), Once()
    lock = threading.Lock()
    changes, stopped, warned, failed = [], [], [], []
    counts = {"kept": 0, "quiet": 0, "awaiting-grace": 0}

    def count(what):
        with lock:
            counts[what] += 1

    def change(request):
        with lock:
            changes.append(request)

    def put(key, created, evidence, warned_at):
        item = {
            "pk": {"S": domain},
            "sk": {"S": key},
            "created": {"N": str(created)},
            "expiration": {"N": str(seconds(now) + TTL_SECONDS)},
        }
        if evidence is not None:
            item["evidenceAt"] = {"N": str(evidence)}
        if warned_at is not None:
            item["warnedAt"] = {"S": warned_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        change({"PutRequest": {"Item": item}})

    def space_facts(name):
        def read():
            d = call("DescribeSpace", sm.describe_space, DomainId=domain, SpaceName=name)
            return d, tags_of(d["SpaceArn"])
        return spaces.get(name.lower(), read)

    def profile_tags(name):
        def read():
            d = call("DescribeUserProfile", sm.describe_user_profile, DomainId=domain, UserProfileName=name)
            return tags_of(d["UserProfileArn"])
        return profiles.get(name.lower(), read)

    def examine(app):
        app_type = app["AppType"]
        owner = {"SpaceName": app["SpaceName"]} if app.get("SpaceName") else {"UserProfileName": app["UserProfileName"]}
        owner_key = "space/" + app["SpaceName"] if "SpaceName" in owner else "user/" + app["UserProfileName"]
        key = owner_key + "/" + app_type + "/" + app["AppName"]
        skey = ("app#" + key).lower()
        instance = (app.get("ResourceSpec") or {}).get("InstanceType") or "unknown"
        created = app.get("CreationTime")
        previous = state.get(skey)
        if previous and created and previous["created"] != seconds(created):
            previous = None  # an earlier app of the same name
        try:
            _, idle_minutes, cap_minutes = rule_for(instance)
            if previous and previous["warnedAt"] is None and previous["evidenceAt"] is not None and created:
                until = from_seconds(previous["evidenceAt"]) + datetime.timedelta(minutes=idle_minutes)
                if cap_minutes is not None:
                    until = min(until, created + datetime.timedelta(minutes=cap_minutes))
                if now < until:
                    count("quiet")
                    return
            d = call("DescribeApp", sm.describe_app, DomainId=domain, AppType=app_type, AppName=app["AppName"], **owner)
            if d.get("Status") != "InService":
                return
            created = d["CreationTime"]
            instance = (d.get("ResourceSpec") or {}).get("InstanceType") or instance
            _, idle_minutes, cap_minutes = rule_for(instance)
            evidence = created
            activity, health = d.get("LastUserActivityTimestamp"), d.get("LastHealthCheckTimestamp")
            if activity and activity != health and activity > evidence:
                evidence = activity
            reading = (seconds(created), seconds(evidence))

            def remember(warned_at):
                if previous is None or (previous["created"], previous["evidenceAt"], previous["warnedAt"]) != (*reading, warned_at):
                    put(skey, reading[0], reading[1], warned_at)

            cap_hit = cap_minutes is not None and now - created >= datetime.timedelta(minutes=cap_minutes)
            idle_hit = now - evidence >= datetime.timedelta(minutes=idle_minutes)
            if not (cap_hit or idle_hit):
                count("kept")
                remember(None)
                return

            def valid(w):
                return w is not None and w >= created and (cap_hit or w >= evidence) and w <= now + FUTURE_TOLERANCE

            warned_at = previous["warnedAt"] if previous else None
            if valid(warned_at) and now < warned_at + GRACE:
                count("awaiting-grace")
                return
            # It would be warned or stopped: now the tags matter, the app's and its owner's.
            tags = tags_of(d["AppArn"])
            legacy = parse_time(tags.get(WARNING_TAG)) if WARNING_TAG in tags else None
            if not valid(warned_at) and valid(legacy):
                warned_at = legacy
            if WARNING_TAG in tags:
                call("DeleteTags", sm.delete_tags, ResourceArn=d["AppArn"], TagKeys=[WARNING_TAG])
            keep = exempt(tags)
            if not keep and "SpaceName" in owner:
                space, space_tags = space_facts(owner["SpaceName"])
                keep = exempt(space_tags)
                owner_profile = (space.get("OwnershipSettings") or {}).get("OwnerUserProfileName")
            else:
                owner_profile = owner.get("UserProfileName")
            if not keep and owner_profile:
                keep = exempt(profile_tags(owner_profile))
            if keep:
                count("kept")
                remember(None)
            elif valid(warned_at) and now >= warned_at + GRACE:
                call("DeleteApp", sm.delete_app, DomainId=domain, AppType=app_type, AppName=app["AppName"], **owner)
                if previous is not None:
                    change({"DeleteRequest": {"Key": {"pk": {"S": domain}, "sk": {"S": skey}}}})
                with lock:
                    stopped.append(key)
            elif valid(warned_at):
                count("awaiting-grace")
                remember(warned_at)
            else:
                at = now.replace(microsecond=0)
                remember(at)
                with lock:
                    warned.append(key)
        except Exception as e:  # noqa: BLE001 - a sweep keeps going and reports
            with lock:
                failed.append({"app": key, "error": str(e)})

    billable = [
        a for a in apps
        if a["AppType"] in BILLABLE
        and (a.get("ResourceSpec") or {}).get("InstanceType") != "system"
        and a.get("Status") == "InService"
    ]
    metered = [
        a for a in apps
        if a.get("Status") == "InService"
        and (a.get("ResourceSpec") or {}).get("InstanceType") not in (None, "", "system")
    ] if spend_table else []
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        # The meter alongside the examination, as the Rust function does.
        tasks = [pool.submit(meter, a) for a in metered] + [pool.submit(examine, a) for a in billable]
        for t in tasks:
            t.result()

    # Changed items, 25 per batch; what DynamoDB does not process is sent again.
    for i in range(0, len(changes), 25):
        batch = {table: changes[i:i + 25]}
        for attempt in range(6):
            answer = ddb.batch_write_item(RequestItems=batch)
            ddb_requests["BatchWriteItem"] += 1
            batch = answer.get("UnprocessedItems") or {}
            if not batch:
                break
            time.sleep(0.05 * 2 ** attempt)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        # The whole process: interpreter start, imports and the sweep (what a Lambda invocation would run).
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "wall_s": time.monotonic() - started,
        "listed": len(apps),
        "stopped": sorted(stopped),
        "warned": sorted(warned),
        "skipped": counts,
        "failed": failed,
        "dynamodb_requests": ddb_requests,
        "metered": len(metered),
    }))


if __name__ == "__main__":
    main()
