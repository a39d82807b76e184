#!/usr/bin/env python3
"""Deploy the translated template to the emulator's CloudFormation (moto server).

`sam deploy` straight to the emulator reports success but silently skips every
AWS::Serverless resource, so the template translated offline (scripts/sam-translate.py) is
given to CreateStack instead. The emulator cannot run Lambda code without Docker: the
functions are created from placeholder zips, and tests/tests/iac_stack.rs runs their
handlers in-process against the stack's table and queues, configured from the environment
each function was deployed with.

Two stacks are created:
  - the stack under test, with the template's defaults (Stage=test); it stays up and is
    described in STACK.json for the Rust test;
  - a stack with every optional part switched on (event bus, alarm e-mail, tick ENABLED,
    MaxReceiveCount 3), which is checked and deleted again (and must leave no queue).

Usage: iac-deploy.py TEMPLATE.json STACK.json
Needs AWS_ENDPOINT_URL (the moto server); runs in the moto virtualenv (boto3).
"""
import collections
import io
import json
import os
import sys
import time
import zipfile

import boto3

BUCKET = "hark-artifacts"  # the placeholder bucket named by sam-translate.py
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def client(service):
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


class DeployError(Exception):
    pass


def upload_placeholders(template):
    """CreateFunction reads the code from S3: give it a zip where `sam package` would."""
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# placeholder: the emulator never runs it\n")
    for lid, res in template["Resources"].items():
        if res["Type"] == "AWS::Lambda::Function":
            s3_code = res["Properties"]["Code"]
            s3.put_object(Bucket=s3_code["S3Bucket"], Key=s3_code["S3Key"], Body=code.getvalue())


def create(cfn, name, body, parameters):
    cfn.create_stack(
        StackName=name,
        TemplateBody=body,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    deadline = time.time() + 120
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.time() > deadline:
            raise DeployError(f"{name}: still {stack['StackStatus']} after 120 s")
        time.sleep(0.1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        reasons = [
            f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason')}"
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise DeployError(f"{name}: {stack['StackStatus']}\n" + "\n".join(reasons))
    return stack


def resources(cfn, name):
    summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in summaries if r["LogicalResourceId"]}


def describe(cfn, name, template, created):
    """What the Rust test needs: outputs, and per function its deployed configuration."""
    lam = client("lambda")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    functions = {}
    for lid, res in template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        physical = created[lid]["PhysicalResourceId"]
        config = lam.get_function_configuration(FunctionName=physical)
        mappings = lam.list_event_source_mappings(FunctionName=physical)["EventSourceMappings"]
        functions[lid] = {
            "name": physical,
            "timeout_s": config["Timeout"],
            "memory_mb": config["MemorySize"],
            # moto keeps a Ref to a Number parameter as a number; CloudFormation passes
            # every parameter as a string, and Lambda variables are strings.
            "environment": {
                k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()
            },
            "event_sources": [
                {
                    "queue_arn": m["EventSourceArn"],
                    "batch_size": m["BatchSize"],
                    "maximum_batching_window_s": m.get("MaximumBatchingWindowInSeconds", 0),
                    "function_response_types": m.get("FunctionResponseTypes", []),
                    "maximum_concurrency": m.get("ScalingConfig", {}).get("MaximumConcurrency"),
                }
                for m in mappings
            ],
        }
    return {
        "stack": name,
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "functions": functions,
    }


def check_options_stack(cfn, body):
    """Every condition switched on: the optional resources are created, then all is deleted."""
    name = f"hark-iac-options-{os.getpid()}"
    stack_id = create(
        cfn,
        name,
        body,
        {
            "Stage": "test",
            "TickState": "ENABLED",
            "EventBus": "ENABLED",
            "AlarmEmail": "ops@example.com",
            "MaxReceiveCount": "3",
        },
    )["StackId"]
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    }
    # moto answers Ref on an event bus with its object's repr (AWS: the bus name), so the
    # output is only required to exist; the bus is looked up by its templated name.
    if "EventBusName" not in outputs:
        raise DeployError(f"{name}: no EventBusName output with EventBus=ENABLED")
    client("events").describe_event_bus(Name=name)
    created = resources(cfn, name)
    redrive = client("sqs").get_queue_attributes(
        QueueUrl=outputs["PollQueueUrl"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    if json.loads(redrive)["maxReceiveCount"] != 3:
        raise DeployError(f"{name}: MaxReceiveCount=3 did not reach the poll queue: {redrive}")
    cfn.delete_stack(StackName=name)
    deadline = time.time() + 60
    while True:
        # By id, a deleted stack is still described (DELETE_COMPLETE); by name it is gone.
        stacks = cfn.describe_stacks(StackName=stack_id)["Stacks"]
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            break
        if time.time() > deadline or stacks[0]["StackStatus"].endswith("FAILED"):
            raise DeployError(f"{name}: delete ended {stacks[0]['StackStatus']}")
        time.sleep(0.1)
    left = client("sqs").list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    if left:
        raise DeployError(f"{name}: queues left after the stack was deleted: {left}")
    return created


def main(argv):
    if len(argv) != 2 or not os.environ.get("AWS_ENDPOINT_URL"):
        print(__doc__, file=sys.stderr)
        return 2
    template_path, stack_json = argv
    with open(template_path, encoding="utf-8") as f:
        body = f.read()
    template = json.loads(body)
    cfn = client("cloudformation")
    name = f"hark-iac-{os.getpid()}-{int(time.time())}"
    started = time.time()
    try:
        upload_placeholders(template)
        create(cfn, name, body, {"Stage": "test"})
        created = resources(cfn, name)
        described = describe(cfn, name, template, created)
        created_with_options = check_options_stack(cfn, body)
    except DeployError as e:
        print(f"deploy to the emulator failed: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # an SDK error: say which step, keep the emulator's message
        print(f"deploy to the emulator failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    # moto accepts some types without modelling them (no physical resource): they are
    # checked statically by iac-policy.py instead.
    not_modelled = collections.Counter(
        res["Type"]
        for lid, res in template["Resources"].items()
        if lid not in created_with_options
    )
    described["not_modelled_by_emulator"] = dict(sorted(not_modelled.items()))
    os.makedirs(os.path.dirname(os.path.abspath(stack_json)), exist_ok=True)
    with open(stack_json, "w", encoding="utf-8") as f:
        json.dump(described, f, indent=1, sort_keys=True)
        f.write("\n")
    by_type = collections.Counter(r["ResourceType"] for r in created.values())
    print(
        f"deployed stack {name} to {os.environ['AWS_ENDPOINT_URL']} in "
        f"{time.time() - started:.1f} s: {len(created)} resources created ("
        + ", ".join(f"{n} {t.split('::', 1)[1]}" for t, n in sorted(by_type.items()))
        + ")"
    )
    if not_modelled:
        print(
            "accepted but not modelled by the emulator (checked in the template instead): "
            + ", ".join(f"{n} {t.split('::', 1)[1]}" for t, n in sorted(not_modelled.items()))
        )
    print("options stack (event bus, alarm e-mail, tick ENABLED, MaxReceiveCount 3): created, checked, deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
