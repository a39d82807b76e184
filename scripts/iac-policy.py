#!/usr/bin/env python3
"""Policy checks on the translated (plain CloudFormation) template.

1. Nothing may cost money while idle: no provisioned concurrency, provisioned throughput,
   provisioned SQS pollers, NAT gateways or anything else from EC2, Kinesis, RDS, always-on
   containers, clusters, load balancers, customer managed KMS keys; the only schedule is
   the tick, and it deploys DISABLED.
2. What the emulator cannot show: it reports arm64 as x86_64 and ignores TTL, IAM and
   logging settings, so those are checked here — arm64 and provided.al2023 everywhere,
   TTL on `expires_at`, JSON logs into a log group with retention, partial batch failures,
   function timeouts below their queue's visibility timeout, a DLQ with 3-5 receives and
   SSE on every queue, least-privilege IAM (no `*` resources or action wildcards for
   DynamoDB, SQS, SSM, Secrets Manager), an alarm per DLQ and per function.

Usage:
  iac-policy.py TEMPLATE.json          check; exit 1 with one line per violation
  iac-policy.py --self-test TEMPLATE.json
      check that every rule fires: each of a list of known-bad edits of the template must
      be reported (a check that cannot fail is no check).
"""
import copy
import json
import sys

# Resource types that bill by the hour (or month) whether or not anything happens.
IDLE_COST_TYPE_PREFIXES = (
    "AWS::EC2::",  # instances, NAT gateways, interface endpoints, elastic IPs
    "AWS::RDS::",
    "AWS::Kinesis::",
    "AWS::KinesisAnalytics",
    "AWS::ECS::Service",
    "AWS::EKS::",
    "AWS::AppRunner::",
    "AWS::ElastiCache::",
    "AWS::MemoryDB::",
    "AWS::DAX::",
    "AWS::Redshift::",
    "AWS::DocDB::",
    "AWS::Neptune::",
    "AWS::OpenSearchService::Domain",
    "AWS::Elasticsearch::Domain",
    "AWS::MSK::",
    "AWS::AmazonMQ::",
    "AWS::AutoScaling::",
    "AWS::ElasticLoadBalancing::",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::GlobalAccelerator::",
    "AWS::SageMaker::Endpoint",
    "AWS::Lightsail::",
    "AWS::KMS::Key",  # 1 USD a month per customer managed key
    "AWS::SecretsManager::Secret",  # 0.40 USD a month per secret
)

SERVICES_WITHOUT_STAR = ("dynamodb:", "sqs:", "ssm:", "secretsmanager:")


class Template:
    def __init__(self, doc):
        self.doc = doc
        self.resources = doc.get("Resources", {})
        self.parameters = doc.get("Parameters", {})

    def of_type(self, type_name):
        return {k: r for k, r in self.resources.items() if r.get("Type") == type_name}

    def props(self, logical_id):
        return self.resources.get(logical_id, {}).get("Properties", {})

    def values(self, value):
        """Every value a property can take: a literal, or a parameter's allowed values
        (its default when it has none)."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            param = self.parameters.get(value["Ref"])
            if param is not None:
                allowed = param.get("AllowedValues")
                if allowed:
                    return list(allowed)
                return [param.get("Default")]
        return [value]

    def default(self, value):
        if isinstance(value, dict) and set(value) == {"Ref"}:
            param = self.parameters.get(value["Ref"])
            if param is not None:
                return param.get("Default")
        return value


def target(value):
    """The logical id a Ref or GetAtt points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_list(value):
    return value if isinstance(value, list) else [value]


def check(doc):
    t = Template(doc)
    errors = []

    def fail(logical_id, message):
        errors.append(f"{logical_id}: {message}")

    # ---------------------------------------------------------------- idle cost
    for lid, res in t.resources.items():
        rtype = res.get("Type", "")
        props = res.get("Properties", {})
        if rtype.startswith("AWS::Serverless::"):
            fail(lid, f"{rtype} left after translation")
        if rtype.startswith(IDLE_COST_TYPE_PREFIXES):
            fail(lid, f"{rtype} costs money while idle")
        if "ProvisionedConcurrencyConfig" in props:
            fail(lid, "provisioned concurrency costs money while idle")
        if rtype == "AWS::Lambda::EventSourceMapping" and "ProvisionedPollerConfig" in props:
            fail(lid, "provisioned event pollers cost money while idle")
        if rtype == "AWS::DynamoDB::Table" or rtype == "AWS::DynamoDB::GlobalTable":
            if t.default(props.get("BillingMode")) != "PAY_PER_REQUEST":
                fail(lid, "not on-demand (PAY_PER_REQUEST): provisioned throughput costs money while idle")
            indexes = props.get("GlobalSecondaryIndexes", [])
            if "ProvisionedThroughput" in props or any("ProvisionedThroughput" in i for i in indexes):
                fail(lid, "provisioned throughput costs money while idle")
        if rtype == "AWS::Events::Rule" and "ScheduleExpression" in props:
            fail(lid, "a schedule outside the tick parameter runs while no campaign is active")
        if rtype == "AWS::Scheduler::Schedule":
            state = props.get("State", "ENABLED")
            if t.default(state) != "DISABLED" or not (isinstance(state, dict) and "Ref" in state):
                fail(lid, "a schedule must take its State from a parameter that defaults to DISABLED")

    # ---------------------------------------------------------------- functions
    functions = t.of_type("AWS::Lambda::Function")
    if not functions:
        fail("Resources", "no AWS::Lambda::Function")
    log_groups = t.of_type("AWS::Logs::LogGroup")
    alarms = t.of_type("AWS::CloudWatch::Alarm").values()

    def alarmed(namespace, metric, dimension_target):
        for alarm in alarms:
            p = alarm.get("Properties", {})
            if p.get("Namespace") != namespace or p.get("MetricName") != metric:
                continue
            if not p.get("AlarmActions"):
                continue
            if any(target(d.get("Value")) == dimension_target for d in p.get("Dimensions", [])):
                return True
        return False

    for lid, res in functions.items():
        p = res.get("Properties", {})
        if p.get("Architectures") != ["arm64"]:
            fail(lid, f"Architectures is {p.get('Architectures')}, expected [arm64]")
        if p.get("Runtime") != "provided.al2023":
            fail(lid, f"Runtime is {p.get('Runtime')}, expected provided.al2023")
        if p.get("Handler") != "bootstrap":
            fail(lid, "Handler must be bootstrap")
        if number(p.get("MemorySize")) != 128:
            fail(lid, f"MemorySize is {p.get('MemorySize')}, expected 128 unless measured otherwise")
        logging = p.get("LoggingConfig", {})
        if logging.get("LogFormat") != "JSON":
            fail(lid, "LoggingConfig.LogFormat must be JSON")
        group = target(logging.get("LogGroup"))
        if group not in log_groups:
            fail(lid, "LoggingConfig.LogGroup must be a log group of this stack")
        elif "RetentionInDays" not in log_groups[group].get("Properties", {}):
            fail(group, "log group without RetentionInDays keeps (and bills) logs forever")
        if not alarmed("AWS/Lambda", "Errors", lid):
            fail(lid, "no Errors alarm")
        if not alarmed("AWS/Lambda", "Throttles", lid):
            fail(lid, "no Throttles alarm")

    # ---------------------------------------------------------------- table
    tables = t.of_type("AWS::DynamoDB::Table")
    if len(tables) != 1:
        fail("Resources", f"expected one DynamoDB table, found {len(tables)}")
    for lid, res in tables.items():
        p = res.get("Properties", {})
        ttl = p.get("TimeToLiveSpecification", {})
        if ttl.get("AttributeName") != "expires_at" or ttl.get("Enabled") is not True:
            fail(lid, "TTL must be enabled on expires_at (epoch seconds)")
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
            fail(lid, "point-in-time recovery must be enabled")
        if p.get("SSESpecification", {}).get("SSEEnabled") is not True:
            fail(lid, "SSE must be enabled")
        keys = {k["AttributeName"]: k["KeyType"] for k in p.get("KeySchema", [])}
        if keys != {"PK": "HASH", "SK": "RANGE"}:
            fail(lid, f"keys are {keys}, expected PK (HASH) and SK (RANGE)")
        gsi = {i.get("IndexName"): i for i in p.get("GlobalSecondaryIndexes", [])}.get("GSI1")
        if gsi is None:
            fail(lid, "index GSI1 is missing")
        else:
            keys = {k["AttributeName"]: k["KeyType"] for k in gsi.get("KeySchema", [])}
            if keys != {"GSI1PK": "HASH", "GSI1SK": "RANGE"}:
                fail(lid, f"GSI1 keys are {keys}, expected GSI1PK (HASH) and GSI1SK (RANGE)")
            if gsi.get("Projection", {}).get("ProjectionType") != "ALL":
                fail(lid, "GSI1 must project ALL attributes")

    # ---------------------------------------------------------------- queues
    queues = t.of_type("AWS::SQS::Queue")
    dead_letter = set()
    for lid, res in queues.items():
        p = res.get("Properties", {})
        if p.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in p:
            fail(lid, "queue without server-side encryption")
        policy = p.get("RedrivePolicy")
        if policy is not None:
            dlq = target(policy.get("deadLetterTargetArn"))
            if dlq not in queues:
                fail(lid, "RedrivePolicy must point at a dead-letter queue of this stack")
            dead_letter.add(dlq)
            counts = [number(v) for v in t.values(policy.get("maxReceiveCount"))]
            if not counts or any(c is None or not 3 <= c <= 5 for c in counts):
                fail(lid, f"maxReceiveCount may be {counts}, expected 3 to 5")
    for lid in queues:
        if lid in dead_letter:
            if not alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", lid):
                fail(lid, "dead-letter queue without a depth alarm")
        elif "RedrivePolicy" not in queues[lid].get("Properties", {}):
            fail(lid, "queue without a dead-letter queue (RedrivePolicy)")

    # ---------------------------------------------------------------- event sources
    for lid, res in t.of_type("AWS::Lambda::EventSourceMapping").items():
        p = res.get("Properties", {})
        queue = target(p.get("EventSourceArn"))
        function = target(p.get("FunctionName"))
        if queue not in queues:
            continue
        if "ReportBatchItemFailures" not in p.get("FunctionResponseTypes", []):
            fail(lid, "SQS event source without FunctionResponseTypes [ReportBatchItemFailures]")
        if "BatchSize" not in p or "MaximumBatchingWindowInSeconds" not in p:
            fail(lid, "SQS event source needs an explicit BatchSize and MaximumBatchingWindowInSeconds")
        timeout = number(t.default(t.props(function).get("Timeout", 3)))
        visibility = number(t.default(t.props(queue).get("VisibilityTimeout", 30)))
        if timeout is None or visibility is None or timeout >= visibility:
            fail(lid, f"{function} timeout {timeout} s is not below {queue}'s visibility timeout {visibility} s")

    # ---------------------------------------------------------------- env <-> IAM
    # A queue URL in a function's environment is a queue it sends to (shared/src/config.rs):
    # its role must allow exactly those sends, no more and no less.
    for lid, res in functions.items():
        p = res.get("Properties", {})
        env = p.get("Environment", {}).get("Variables", {})
        in_env = {
            target(v)
            for k, v in env.items()
            if k.startswith("HARK_") and k.endswith("_QUEUE_URL") and target(v) in queues
        }
        role = target(p.get("Role"))
        granted = set()
        for pol in t.props(role).get("Policies", []):
            for statement in as_list(pol.get("PolicyDocument", {}).get("Statement", [])):
                if statement.get("Effect") == "Allow" and "sqs:SendMessage" in as_list(statement.get("Action")):
                    granted |= {target(r) for r in as_list(statement.get("Resource", []))}
        for queue in sorted(in_env - granted):
            fail(lid, f"sends to {queue} (its URL is in the environment) but its role may not")
        for queue in sorted(q for q in granted - in_env if q is not None):
            fail(lid, f"its role may send to {queue}, whose URL is not in its environment")
        if target(env.get("HARK_TABLE")) not in tables:
            fail(lid, "HARK_TABLE must name the stack's table")

    # ---------------------------------------------------------------- IAM
    for lid, res in t.resources.items():
        rtype = res.get("Type")
        p = res.get("Properties", {})
        documents = []
        if rtype == "AWS::IAM::Role":
            documents = [pol.get("PolicyDocument", {}) for pol in p.get("Policies", [])]
            if p.get("ManagedPolicyArns"):
                fail(lid, "managed policies grant more than the function uses; write the statements")
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [p.get("PolicyDocument", {})]
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                if statement.get("Effect") != "Allow":
                    continue
                actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
                resources = as_list(statement.get("Resource", []))
                guarded = [a for a in actions if a.lower().startswith(SERVICES_WITHOUT_STAR)]
                if any(a == "*" or a.endswith(":*") for a in actions):
                    fail(lid, f"action wildcard in {actions}")
                if guarded and any(r == "*" for r in resources):
                    fail(lid, f"{guarded} on Resource '*'")

    return errors


# Each edit breaks one rule; --self-test requires each to be reported with its message.
def _edits():
    def first(doc, type_name):
        return next(
            (lid for lid, r in doc["Resources"].items() if r.get("Type") == type_name),
            None,
        )

    def main_queue(doc):
        return next(
            lid
            for lid, r in doc["Resources"].items()
            if r.get("Type") == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {})
        )

    def put(type_name, props):
        def edit(doc):
            doc["Resources"]["Extra"] = {"Type": type_name, "Properties": props}

        return edit

    def prop(type_name, path, value):
        def edit(doc):
            node = doc["Resources"][first(doc, type_name)]["Properties"]
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value

        return edit

    def drop(type_name, path):
        def edit(doc):
            node = doc["Resources"][first(doc, type_name)]["Properties"]
            for key in path[:-1]:
                node = node[key]
            del node[path[-1]]

        return edit

    def grant_star(doc):
        role = first(doc, "AWS::IAM::Role")
        doc["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"}
        )

    def enabled_tick(doc):
        schedule = first(doc, "AWS::Scheduler::Schedule")
        doc["Resources"][schedule]["Properties"]["State"] = "ENABLED"

    def slow_consumer(doc):
        # The message comes back while the function may still be working on it.
        mapping = doc["Resources"][first(doc, "AWS::Lambda::EventSourceMapping")]["Properties"]
        timeout = doc["Resources"][target(mapping["FunctionName"])]["Properties"]["Timeout"]
        doc["Resources"][target(mapping["EventSourceArn"])]["Properties"]["VisibilityTimeout"] = timeout

    def receive_count(doc):
        doc["Resources"][main_queue(doc)]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = 10

    def no_redrive(doc):
        del doc["Resources"][main_queue(doc)]["Properties"]["RedrivePolicy"]

    def drop_send(doc):
        for r in doc["Resources"].values():
            if r.get("Type") != "AWS::IAM::Role":
                continue
            for pol in r["Properties"].get("Policies", []):
                statements = pol["PolicyDocument"]["Statement"]
                kept = [s for s in statements if s.get("Action") != "sqs:SendMessage"]
                if len(kept) != len(statements):
                    pol["PolicyDocument"]["Statement"] = kept
                    return

    def extra_send(doc):
        # The role keeps its grant, the URL leaves the environment: a grant nothing uses.
        for r in doc["Resources"].values():
            if r.get("Type") != "AWS::Lambda::Function":
                continue
            env = r["Properties"]["Environment"]["Variables"]
            url = next((k for k in env if k.endswith("_QUEUE_URL")), None)
            if url is not None:
                del env[url]
                return

    def no_alarms(doc):
        for lid in [l for l, r in doc["Resources"].items() if r.get("Type") == "AWS::CloudWatch::Alarm"]:
            del doc["Resources"][lid]

    return [
        ("a NAT gateway", put("AWS::EC2::NatGateway", {"SubnetId": "subnet-1"}), "NatGateway costs money while idle"),
        ("an EC2 instance", put("AWS::EC2::Instance", {"ImageId": "ami-1"}), "Instance costs money while idle"),
        ("a Kinesis stream", put("AWS::Kinesis::Stream", {"ShardCount": 1}), "Kinesis::Stream costs money"),
        ("an RDS instance", put("AWS::RDS::DBInstance", {"DBInstanceClass": "db.t4g.micro"}), "RDS::DBInstance costs money"),
        ("an ECS service", put("AWS::ECS::Service", {"DesiredCount": 1}), "ECS::Service costs money"),
        ("a KMS key", put("AWS::KMS::Key", {}), "KMS::Key costs money"),
        ("provisioned concurrency", put("AWS::Lambda::Alias", {"ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 1}}), "provisioned concurrency"),
        ("an always-on rule", put("AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"}), "a schedule outside the tick parameter"),
        ("provisioned table", prop("AWS::DynamoDB::Table", ["BillingMode"], "PROVISIONED"), "not on-demand"),
        ("provisioned pollers", prop("AWS::Lambda::EventSourceMapping", ["ProvisionedPollerConfig"], {"MinimumPollers": 1}), "provisioned event pollers"),
        ("an enabled tick", enabled_tick, "defaults to DISABLED"),
        ("x86_64", prop("AWS::Lambda::Function", ["Architectures"], ["x86_64"]), "expected [arm64]"),
        ("another runtime", prop("AWS::Lambda::Function", ["Runtime"], "provided.al2"), "expected provided.al2023"),
        ("text logs", prop("AWS::Lambda::Function", ["LoggingConfig", "LogFormat"], "Text"), "LogFormat must be JSON"),
        ("logs kept forever", drop("AWS::Logs::LogGroup", ["RetentionInDays"]), "without RetentionInDays"),
        ("TTL on another attribute", prop("AWS::DynamoDB::Table", ["TimeToLiveSpecification", "AttributeName"], "ttl"), "TTL must be enabled on expires_at"),
        ("no PITR", drop("AWS::DynamoDB::Table", ["PointInTimeRecoverySpecification"]), "point-in-time recovery"),
        ("no GSI1", prop("AWS::DynamoDB::Table", ["GlobalSecondaryIndexes"], []), "index GSI1 is missing"),
        ("an unencrypted queue", drop("AWS::SQS::Queue", ["SqsManagedSseEnabled"]), "without server-side encryption"),
        ("maxReceiveCount 10", receive_count, "expected 3 to 5"),
        ("a queue without DLQ", no_redrive, "queue without a dead-letter queue"),
        ("no partial batch failures", prop("AWS::Lambda::EventSourceMapping", ["FunctionResponseTypes"], []), "ReportBatchItemFailures"),
        ("a timeout not below the visibility timeout", slow_consumer, "is not below"),
        ("a '*' resource for DynamoDB", grant_star, "on Resource '*'"),
        ("a managed policy", prop("AWS::IAM::Role", ["ManagedPolicyArns"], ["arn:aws:iam::aws:policy/AdministratorAccess"]), "managed policies grant more"),
        ("no alarms", no_alarms, "no Errors alarm"),
        ("a queue URL in the environment without sqs:SendMessage", drop_send, "but its role may not"),
        ("sqs:SendMessage on a queue whose URL is not in the environment", extra_send, "whose URL is not in its environment"),
    ]


def self_test(doc):
    if check(doc):
        print("self-test needs a template that passes; fix it first", file=sys.stderr)
        return 1
    missed = []
    for name, edit, expected in _edits():
        broken = copy.deepcopy(doc)
        edit(broken)
        errors = check(broken)
        if not any(expected in e for e in errors):
            missed.append(f"{name} (expected `{expected}`, got {errors})")
    if missed:
        for name in missed:
            print(f"self-test: the checks did not notice {name}", file=sys.stderr)
        return 1
    print(f"iac-policy self-test: all {len(_edits())} known-bad edits are reported")
    return 0


def main(argv):
    args = [a for a in argv if a != "--self-test"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        doc = json.load(f)
    if "--self-test" in argv:
        return self_test(doc)
    errors = check(doc)
    for e in errors:
        print(f"{args[0]}: {e}", file=sys.stderr)
    if errors:
        return 1
    t = Template(doc)
    print(
        f"iac-policy: {len(t.resources)} resources, nothing billed while idle; "
        f"{len(t.of_type('AWS::Lambda::Function'))} functions arm64/provided.al2023/JSON logs, "
        f"TTL on expires_at, {len(t.of_type('AWS::SQS::Queue'))} queues encrypted with DLQs, "
        f"least-privilege IAM, {len(t.of_type('AWS::CloudWatch::Alarm'))} alarms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
