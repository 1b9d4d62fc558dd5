"""The Python peer of idle-shutdown for `make bench`: the sequential boto3 sweep an administrator would copy from
a sample, given the same decisions as the Rust function on the benchmark's world so the two can be compared.

Per domain: ListApps (paginated); billable InService apps only (not JupyterServer, not `system` instances);
DescribeApp and ListTags of the app; for an idle candidate the owner's facts (DescribeSpace + ListTags of the
space, DescribeUserProfile + ListTags of the profile, cached per profile); exempt tag on any of them keeps the app;
a valid warning tag older than the grace period stops the app (DeleteApp), no valid warning warns it (AddTags).
Idle rules: ml.g*/ml.p*/ml.trn*/ml.inf* 60 min with a 24 h uptime cap, anything else 180 min. It publishes no
events and keeps no idempotency records (lighter than the Rust function, so the comparison favours Python).

Usage: idle_sweep.py DOMAIN_ID   (endpoint from AWS_ENDPOINT_URL_SAGEMAKER). Prints one JSON object.
"""

import datetime
import fnmatch
import json
import resource
import sys
import time

import boto3
from botocore.config import Config

WARNING_TAG = "studio-ops:idle-warning-at"
EXEMPT = ("studio-ops:idle-shutdown", "exempt")
BILLABLE = {"JupyterLab", "CodeEditor", "KernelGateway", "RSessionGateway"}
RULES = [("ml.g*", 60, 24 * 60), ("ml.p*", 60, 24 * 60), ("ml.trn*", 60, 24 * 60), ("ml.inf*", 60, 24 * 60), ("*", 180, None)]
GRACE = datetime.timedelta(minutes=30)
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def tags_of(sm, arn):
    out = {}
    for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
        for t in page.get("Tags", []):
            out[t["Key"]] = t["Value"]
    return out


def exempt(tags):
    return tags.get(EXEMPT[0]) == EXEMPT[1]


def main():
    domain = sys.argv[1]
    sm = boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 5}))
    now = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    stopped, warned, kept, failed = [], [], 0, []
    profile_tags = {}

    def profile(name):
        if name not in profile_tags:
            arn = sm.describe_user_profile(DomainId=domain, UserProfileName=name)["UserProfileArn"]
            profile_tags[name] = tags_of(sm, arn)
        return profile_tags[name]

    apps = []
    for page in sm.get_paginator("list_apps").paginate(DomainIdEquals=domain):
        apps.extend(page.get("Apps", []))
    for app in apps:
        app_type, status = app["AppType"], app.get("Status")
        instance = (app.get("ResourceSpec") or {}).get("InstanceType")
        if app_type not in BILLABLE or instance == "system" or status != "InService":
            continue
        owner = {"SpaceName": app["SpaceName"]} if app.get("SpaceName") else {"UserProfileName": app["UserProfileName"]}
        key = ("space/" + app["SpaceName"] if "SpaceName" in owner else "user/" + app["UserProfileName"]) + "/" + app_type + "/" + app["AppName"]
        try:
            d = sm.describe_app(DomainId=domain, AppType=app_type, AppName=app["AppName"], **owner)
            if d.get("Status") != "InService":
                continue
            tags = tags_of(sm, d["AppArn"])
            if exempt(tags):
                kept += 1
                continue
            instance = (d.get("ResourceSpec") or {}).get("InstanceType") or instance or "unknown"
            pattern, idle_minutes, cap_minutes = next(r for r in RULES if fnmatch.fnmatch(instance.lower(), r[0]))
            created = d["CreationTime"]
            evidence = created
            activity, health = d.get("LastUserActivityTimestamp"), d.get("LastHealthCheckTimestamp")
            if activity and activity != health and activity > evidence:
                evidence = activity
            cap_hit = cap_minutes is not None and now - created >= datetime.timedelta(minutes=cap_minutes)
            idle_hit = now - evidence >= datetime.timedelta(minutes=idle_minutes)
            if not (cap_hit or idle_hit):
                kept += 1
                continue
            if "SpaceName" in owner:
                space = sm.describe_space(DomainId=domain, SpaceName=owner["SpaceName"])
                if exempt(tags_of(sm, space["SpaceArn"])):
                    kept += 1
                    continue
                owner_profile = (space.get("OwnershipSettings") or {}).get("OwnerUserProfileName")
            else:
                owner_profile = owner["UserProfileName"]
            if owner_profile and exempt(profile(owner_profile)):
                kept += 1
                continue
            warned_at = parse_time(tags.get(WARNING_TAG))
            valid = warned_at is not None and warned_at >= created and (cap_hit or warned_at >= evidence) and warned_at <= now + FUTURE_TOLERANCE
            if valid and now >= warned_at + GRACE:
                sm.delete_app(DomainId=domain, AppType=app_type, AppName=app["AppName"], **owner)
                stopped.append(key)
            elif valid:
                kept += 1
            else:
                sm.add_tags(ResourceArn=d["AppArn"], Tags=[{"Key": WARNING_TAG, "Value": now.strftime("%Y-%m-%dT%H:%M:%SZ")}])
                warned.append(key)
        except Exception as e:  # noqa: BLE001 - a sample keeps going and reports
            failed.append({"app": key, "error": str(e)})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        # The whole process: interpreter start, imports and the sweep (what a Lambda invocation would run).
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "wall_s": time.monotonic() - started,
        "listed": len(apps),
        "stopped": sorted(stopped),
        "warned": sorted(warned),
        "kept": kept,
        "failed": failed,
    }))


if __name__ == "__main__":
    main()
