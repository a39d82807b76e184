#!/usr/bin/env python3
"""Translate the SAM template to plain CloudFormation, offline.

cfn-lint 1.x does not expand the SAM transform, so errors inside AWS::Serverless::*
resources (a wrong Runtime, an unknown event property, a GetAtt to a missing resource) are
only found on the translated template. aws-sam-translator does the translation without AWS
when it has a region, an S3 location for each function's code (CodeUri is a local path
until `sam build` uploads it) and a managed-policy loader that does not call IAM.

Before translating, each function's build metadata is checked against the workspace:
`BuildMethod: rust-cargolambda`, `CodeUri` a crate directory, `Binary` that crate's name.

Usage: sam-translate.py TEMPLATE OUTPUT.json [ARTIFACT_BUCKET]
Runs in the cfn-lint virtualenv (aws-sam-translator is pinned there).
"""
import json
import os
import sys
import tomllib

# The translator builds ARNs for the session's region; there are no credentials here.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class OfflinePolicyLoader:
    """Answers managed-policy names with their well-known ARNs instead of listing IAM."""

    def load(self):
        return {}

    def get(self, name, partition="aws"):
        return f"arn:{partition}:iam::aws:policy/{name}"


def build_problems(template_path, name, resource):
    """What would make `sam build` fail or build the wrong binary: each function is built
    by cargo-lambda from its own workspace member, and `Binary` names that member's bin."""
    metadata = resource.get("Metadata", {})
    if metadata.get("BuildMethod") != "rust-cargolambda":
        return [f"{name}: Metadata.BuildMethod must be rust-cargolambda"]
    code_uri = resource.get("Properties", {}).get("CodeUri")
    if not isinstance(code_uri, str):
        return [f"{name}: CodeUri must be the path of the function's crate"]
    manifest = os.path.join(os.path.dirname(os.path.abspath(template_path)), code_uri, "Cargo.toml")
    try:
        with open(manifest, "rb") as f:
            package = tomllib.load(f).get("package", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError) as e:
        return [f"{name}: CodeUri {code_uri} has no readable Cargo.toml ({e})"]
    binary = metadata.get("BuildProperties", {}).get("Binary")
    if binary != package:
        return [f"{name}: BuildProperties.Binary is {binary!r}, but {code_uri} builds {package!r}"]
    return []


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    source, output = sys.argv[1], sys.argv[2]
    bucket = sys.argv[3] if len(sys.argv) == 4 else "hark-artifacts"
    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    functions = [
        name
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    if not functions:
        print(f"{source}: no AWS::Serverless::Function to translate", file=sys.stderr)
        return 1
    problems = [p for name in functions for p in build_problems(source, name, template["Resources"][name])]
    if problems:
        for problem in problems:
            print(f"{source}: {problem}", file=sys.stderr)
        return 1
    for name in functions:
        # What `sam package` would put there: one zip per function in the artifact bucket.
        template["Resources"][name]["Properties"]["CodeUri"] = {
            "Bucket": bucket,
            "Key": f"{name}.zip",
        }
    try:
        translated = transform(template, {}, OfflinePolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{source}: {cause.message}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(translated, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"translated {len(functions)} functions: {source} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
