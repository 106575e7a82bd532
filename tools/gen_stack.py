#!/usr/bin/env python3
"""Generates a realistic ibsync desired-state tree of N resources (benchmarks).

Usage: tools/gen_stack.py N OUTDIR [--seed S] [--stack NAME] [--region R]

Writes OUTDIR/stack.yaml and OUTDIR/teams/<team>/<kind>/<name>.yaml, one
resource per file, in the format of docs/format.md. The stack is spread over
teams the way an organisation's image repository grows: every team owns
components, recipes, configurations and pipelines; the "platform" team's
components (hardening, agents) are shared, so recipes reference components of
their own team and of the platform team ({ref:}) next to Amazon-managed
component ARNs. Image recipes use 3-8 components, pipelines reference a recipe,
an infrastructure and a distribution configuration (some also workflows), and
lifecycle policies select recipes by name or images by tag. The dependency
graph is component/workflow/configuration -> recipe -> pipeline (depth 3).

The mix of kinds follows KIND_WEIGHTS (many components and recipes, fewer
pipelines); every kind gets at least one resource, so N >= 8. The same N and
seed always give the same tree, byte for byte. OUTDIR must not exist or be
empty: a stale file of another run would become part of the stack.

Prints one line per kind, "KIND COUNT", on stdout (bench/plan.sh computes
the list-page bound from them).
"""

import argparse
import json
import os
import random
import re
import sys

# Share of each kind, per thousand resources.
KIND_WEIGHTS = [
    ("Component", 380),
    ("Workflow", 40),
    ("ImageRecipe", 200),
    ("ContainerRecipe", 80),
    ("InfrastructureConfiguration", 70),
    ("DistributionConfiguration", 70),
    ("ImagePipeline", 120),
    ("LifecyclePolicy", 40),
]

KIND_DIRS = {
    "Component": "components",
    "Workflow": "workflows",
    "ImageRecipe": "recipes",
    "ContainerRecipe": "container-recipes",
    "InfrastructureConfiguration": "infrastructure",
    "DistributionConfiguration": "distribution",
    "ImagePipeline": "pipelines",
    "LifecyclePolicy": "lifecycle",
}

TEAMS = ["platform", "web", "data", "ml", "payments", "search", "identity", "edge",
         "analytics", "mobile", "storage", "security", "checkout", "media", "billing"]

LINUX_PACKAGES = ["nginx", "openssl", "python3", "nodejs", "java-17-amazon-corretto", "docker",
                  "chrony", "auditd", "fail2ban", "postgresql15", "redis6", "git", "jq",
                  "amazon-efs-utils", "clamav", "osquery", "collectd", "haproxy", "tmux",
                  "htop", "golang", "ruby", "php8.2", "memcached", "rsyslog", "nfs-utils"]
WINDOWS_FEATURES = ["Web-Server", "NET-Framework-45-Core", "RSAT-AD-PowerShell", "Telnet-Client",
                    "Windows-Defender", "SNMP-Service", "Failover-Clustering", "BitLocker"]
VERBS = ["install", "configure", "harden", "tune", "validate"]

AWS_LINUX_COMPONENTS = ["update-linux", "aws-cli-version-2-linux", "amazon-cloudwatch-agent-linux",
                        "reboot-linux", "stig-build-linux-medium", "python-3-linux"]
AWS_WINDOWS_COMPONENTS = ["update-windows", "aws-cli-version-2-windows",
                          "amazon-cloudwatch-agent-windows", "chocolatey", "powershell-windows"]
LINUX_PARENTS = ["amazon-linux-2023-x86", "amazon-linux-2023-arm64", "ubuntu-server-22-lts-x86",
                 "red-hat-enterprise-linux-9-x86"]
WINDOWS_PARENTS = ["windows-server-2022-english-full-base-x86",
                   "windows-server-2019-english-core-base-x86"]
CONTAINER_PARENTS = ["amazonlinux:2023", "public.ecr.aws/docker/library/python:3.12-slim",
                     "public.ecr.aws/docker/library/node:20-bookworm-slim",
                     "public.ecr.aws/amazoncorretto/amazoncorretto:17"]
REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
INSTANCE_TYPES = ["t3.medium", "t3a.medium", "t3.large", "m6i.large", "m6a.large", "c6i.large",
                  "c6i.xlarge", "m7g.large"]
ACCOUNT = "123456789012"


class Ref:
    """A {ref: NAME} directive."""

    def __init__(self, name):
        self.name = name


PLAIN = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9 ._/@:()+,-]*$")
NUMBER = re.compile(r"^[-+]?(0x[0-9a-fA-F]+|0o[0-7]+|[0-9_]*\.?[0-9_]*([eE][-+]?[0-9]+)?)$")
RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Ref):
        return "{ref: %s}" % v.name
    if PLAIN.match(v) and not NUMBER.match(v) and v.lower() not in RESERVED \
            and not v.endswith((" ", ":")) and ": " not in v:
        return v
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(v)


def emit(out, value, indent):
    """Appends the block-style YAML of a dict or list to the lines `out`."""
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and "\n" in v:
                out.append("%s%s: |%s" % (pad, k, "" if v.endswith("\n") else "-"))
                for line in v.rstrip("\n").split("\n"):
                    out.append((pad + "  " + line) if line else "")
            elif isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                emit(out, v, indent + 2)
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s" % (pad, k, scalar(v)))
    else:
        for item in value:
            if isinstance(item, dict) and item:
                sub = []
                emit(sub, item, indent + 2)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            else:
                out.append("%s- %s" % (pad, scalar(item)))


def document(kind, name, spec, tags=None, comment=None):
    lines = []
    if comment:
        lines.append("# " + comment)
    meta = {"name": name}
    if tags:
        meta["tags"] = tags
    emit(lines, {"apiVersion": "ibsync/v1", "kind": kind, "metadata": meta, "spec": spec}, 0)
    return "\n".join(lines) + "\n"


def split_counts(n):
    """Counts per kind summing to n (largest remainder), each at least 1."""
    total = sum(w for _, w in KIND_WEIGHTS)
    exact = [n * w / total for _, w in KIND_WEIGHTS]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:n - sum(counts)]:
        counts[i] += 1
    for i in range(len(counts)):
        if counts[i] == 0:
            counts[counts.index(max(counts))] -= 1
            counts[i] = 1
    return {k: c for (k, _), c in zip(KIND_WEIGHTS, counts)}


class Generator:
    def __init__(self, n, seed, region):
        self.rng = random.Random(seed)
        self.region = region
        self.counts = split_counts(n)
        # About a hundred resources per team; past the named teams, numbered
        # ones (web-2, ...).
        self.teams = [TEAMS[t % len(TEAMS)] + ("-%d" % (t // len(TEAMS) + 1) if t >= len(TEAMS)
                                               else "")
                      for t in range(max(1, (n + 99) // 100))]
        self.names = set()
        self.files = {}  # path -> text
        self.by_team = {}  # (kind, team) -> [resource dicts]
        self.all = {k: [] for k, _ in KIND_WEIGHTS}

    def aws_arn(self, what, name):
        return "arn:aws:imagebuilder:%s:aws:%s/%s/x.x.x" % (self.region, what, name)

    def unique(self, base):
        name = base
        k = 2
        while name in self.names:
            name = "%s-%d" % (base, k)
            k += 1
        self.names.add(name)
        return name

    def team_of(self, i, count):
        # Resources are dealt to teams in blocks, so each team's share of
        # every kind is about the same.
        return self.teams[i * len(self.teams) // count]

    def add(self, kind, team, name, spec, tags=None, extra=None):
        path = os.path.join("teams", team, KIND_DIRS[kind], name + ".yaml")
        all_tags = {"team": team, "cost-center": str(4000 + self.teams.index(team))}
        all_tags.update(tags or {})
        self.files[path] = document(kind, name, spec, all_tags)
        res = {"kind": kind, "team": team, "name": name}
        res.update(extra or {})
        self.by_team.setdefault((kind, team), []).append(res)
        self.all[kind].append(res)
        return res

    def version(self):
        return "%d.%d.%d" % (self.rng.choice([1, 1, 1, 2, 3]), self.rng.randrange(10),
                             self.rng.randrange(5))

    # ---- kinds ---------------------------------------------------------------

    def components(self):
        n = self.counts["Component"]
        for i in range(n):
            team = self.team_of(i, n)
            windows = self.rng.random() < 0.15
            verb = self.rng.choice(VERBS)
            pkg = self.rng.choice(WINDOWS_FEATURES if windows else LINUX_PACKAGES)
            name = self.unique("%s-%s-%s" % (team, verb, pkg.lower().replace(".", "")))
            if windows:
                action = "ExecutePowerShell"
                cmds = ["Install-WindowsFeature -Name %s -IncludeManagementTools" % pkg,
                        "Get-WindowsFeature -Name %s | Format-List" % pkg]
                check = ["if (-not (Get-WindowsFeature -Name %s).Installed) { exit 1 }" % pkg]
            else:
                action = "ExecuteBash"
                cmds = ["dnf install -y %s" % pkg]
                if self.rng.random() < 0.5:
                    cmds.append("systemctl enable %s || true" % pkg)
                if verb in ("configure", "harden", "tune"):
                    cmds.append("install -d -m 0755 /etc/%s/conf.d" % name)
                    cmds.append("echo '# managed by image builder' > /etc/%s/conf.d/10-%s.conf"
                                % (name, team))
                check = ["rpm -q %s" % pkg]
            step = verb.capitalize() + re.sub(r"[^A-Za-z0-9]", "", pkg.title())
            data = ["name: %s" % name,
                    "description: %s %s for the %s team" % (verb.capitalize(), pkg, team),
                    "schemaVersion: 1.0",
                    "phases:",
                    "  - name: build",
                    "    steps:",
                    "      - name: %s" % step,
                    "        action: %s" % action,
                    "        timeoutSeconds: %d" % self.rng.choice([300, 600, 900]),
                    "        onFailure: Abort",
                    "        inputs:",
                    "          commands:"]
            data += ["            - %s" % json.dumps(c) for c in cmds]
            data += ["  - name: validate",
                     "    steps:",
                     "      - name: Check",
                     "        action: %s" % action,
                     "        inputs:",
                     "          commands:"]
            data += ["            - %s" % json.dumps(c) for c in check]
            spec = {
                "semanticVersion": self.version(),
                "platform": "Windows" if windows else "Linux",
                "description": "%s %s (%s team)" % (verb.capitalize(), pkg, team),
                "changeDescription": "Generated by tools/gen_stack.py",
            }
            if not windows and self.rng.random() < 0.6:
                spec["supportedOsVersions"] = ["Amazon Linux 2023"]
            spec["data"] = "\n".join(data) + "\n"
            self.add("Component", team, name, spec, extra={"windows": windows})

    def workflows(self):
        n = self.counts["Workflow"]
        for i in range(n):
            team = self.team_of(i, n)
            wtype = "BUILD" if self.rng.random() < 0.3 else "TEST"
            name = self.unique("%s-%s-workflow" % (team, "build" if wtype == "BUILD" else
                                                   self.rng.choice(["smoke-test", "cis-test",
                                                                    "integration-test"])))
            if wtype == "BUILD":
                data = """name: %s
description: Build, inventory and snapshot (%s team)
schemaVersion: 1.0
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    onFailure: Abort
    inputs:
      waitFor: "ssmAgent"
  - name: ApplyBuildComponents
    action: ExecuteComponents
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
  - name: CreateOutputAMI
    action: CreateImage
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
  - name: TerminateBuildInstance
    action: TerminateInstance
    onFailure: Continue
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
outputs:
  - name: "ImageId"
    value: "$.stepOutputs.CreateOutputAMI.imageId"
""" % (name, team)
            else:
                port = self.rng.choice([80, 443, 8080, 9090])
                data = """name: %s
description: Launch the new image and probe its service (%s team)
schemaVersion: 1.0
steps:
  - name: LaunchTestInstance
    action: LaunchInstance
    onFailure: Abort
    inputs:
      waitFor: "ssmAgent"
  - name: Probe
    action: RunCommand
    onFailure: Abort
    inputs:
      documentName: "AWS-RunShellScript"
      parameters:
        commands:
          - "curl -fsS http://localhost:%d/healthz >/dev/null"
      instanceId.$: "$.stepOutputs.LaunchTestInstance.instanceId"
  - name: TerminateTestInstance
    action: TerminateInstance
    onFailure: Continue
    inputs:
      instanceId.$: "$.stepOutputs.LaunchTestInstance.instanceId"
""" % (name, team, port)
            spec = {"semanticVersion": self.version(), "type": wtype,
                    "description": "%s workflow of the %s team" % (wtype.lower(), team),
                    "data": data}
            self.add("Workflow", team, name, spec, extra={"type": wtype})

    def pick_components(self, team, windows, k):
        """k component refs: the team's own first, then the platform team's."""
        same = [c for c in self.by_team.get(("Component", team), []) if c["windows"] == windows]
        shared = [c for c in self.by_team.get(("Component", self.teams[0]), [])
                  if c["windows"] == windows and c not in same]
        pool = self.rng.sample(same, min(len(same), k))
        if len(pool) < k:
            pool += self.rng.sample(shared, min(len(shared), k - len(pool)))
        if len(pool) < k:
            rest = [c for c in self.all["Component"] if c["windows"] == windows and c not in pool]
            pool += self.rng.sample(rest, min(len(rest), k - len(pool)))
        return [c["name"] for c in pool]

    def image_recipes(self):
        n = self.counts["ImageRecipe"]
        for i in range(n):
            team = self.team_of(i, n)
            windows = self.rng.random() < 0.12
            role = self.rng.choice(["base", "web", "worker", "batch", "bastion", "gpu", "api",
                                    "ci-runner"])
            name = self.unique("%s-%s-%s" % (team, role, "windows" if windows else "al2023"))
            total = self.rng.randint(3, 8)
            managed = self.rng.sample(AWS_WINDOWS_COMPONENTS if windows else AWS_LINUX_COMPONENTS,
                                      self.rng.randint(1, 2))
            refs = self.pick_components(team, windows, total - len(managed))
            while len(managed) + len(refs) < 3:
                extra = [c for c in (AWS_WINDOWS_COMPONENTS if windows else AWS_LINUX_COMPONENTS)
                         if c not in managed]
                managed.append(extra[0])
            comps = [{"componentArn": self.aws_arn("component", managed[0])}]
            comps += [{"componentArn": Ref(r)} for r in refs]
            comps += [{"componentArn": self.aws_arn("component", m)} for m in managed[1:]]
            parent = self.rng.choice(WINDOWS_PARENTS if windows else LINUX_PARENTS)
            spec = {
                "semanticVersion": self.version(),
                "description": "%s image of the %s team" % (role, team),
                "parentImage": self.aws_arn("image", parent),
                "components": comps,
                "blockDeviceMappings": [{
                    "deviceName": "/dev/sda1" if windows else "/dev/xvda",
                    "ebs": {"volumeSize": self.rng.choice([30, 50, 100]) if windows
                            else self.rng.choice([8, 16, 32]),
                            "volumeType": "gp3", "encrypted": True,
                            "deleteOnTermination": True},
                }],
            }
            if not windows:
                spec["workingDirectory"] = "/tmp"
                spec["additionalInstanceConfiguration"] = {
                    "systemsManagerAgent": {"uninstallAfterBuild": self.rng.random() < 0.3}}
            res = self.add("ImageRecipe", team, name, spec,
                           extra={"version": spec["semanticVersion"], "windows": windows})
            res["used"] = False

    def container_recipes(self):
        n = self.counts["ContainerRecipe"]
        for i in range(n):
            team = self.team_of(i, n)
            svc = self.rng.choice(["api", "worker", "scheduler", "gateway", "indexer", "exporter"])
            name = self.unique("%s-%s-container" % (team, svc))
            refs = self.pick_components(team, False, self.rng.randint(2, 5))
            comps = [{"componentArn": Ref(r)} for r in refs]
            comps.append({"componentArn": self.aws_arn("component", "aws-cli-version-2-linux")})
            user = "svc%d" % self.rng.randrange(100)
            spec = {
                "semanticVersion": self.version(),
                "description": "%s service container of the %s team" % (svc, team),
                "containerType": "DOCKER",
                "parentImage": self.rng.choice(CONTAINER_PARENTS),
                "platformOverride": "Linux",
                "components": comps,
                "dockerfileTemplateData": ("FROM {{{ imagebuilder:parentImage }}}\n"
                                           "{{{ imagebuilder:environments }}}\n"
                                           "{{{ imagebuilder:components }}}\n"
                                           "USER %s\nWORKDIR /srv/%s\n" % (user, svc)),
                "targetRepository": {"service": "ECR", "repositoryName": "%s/%s" % (team, name)},
                "workingDirectory": "/tmp",
            }
            res = self.add("ContainerRecipe", team, name, spec,
                           extra={"version": spec["semanticVersion"]})
            res["used"] = False

    def infrastructure(self):
        n = self.counts["InfrastructureConfiguration"]
        for i in range(n):
            team = self.team_of(i, n)
            size = self.rng.choice(["small", "large", "arm", "private", "gpu"])
            name = self.unique("%s-build-%s" % (team, size))
            spec = {
                "description": "%s build instances of the %s team" % (size, team),
                "instanceProfileName": "EC2InstanceProfileForImageBuilder",
                "instanceTypes": self.rng.sample(INSTANCE_TYPES, self.rng.randint(1, 3)),
                "subnetId": "subnet-%017x" % self.rng.getrandbits(68),
                "securityGroupIds": ["sg-%017x" % self.rng.getrandbits(68)],
                "terminateInstanceOnFailure": True,
                "instanceMetadataOptions": {"httpTokens": "required",
                                            "httpPutResponseHopLimit": 2},
                "logging": {"s3Logs": {"s3BucketName": "imagebuilder-logs-%s" % ACCOUNT,
                                       "s3KeyPrefix": "%s/%s" % (team, name)}},
                "resourceTags": {"team": team, "purpose": "image-build"},
            }
            if self.rng.random() < 0.3:
                spec["snsTopicArn"] = "arn:aws:sns:%s:%s:imagebuilder-%s" % (self.region,
                                                                            ACCOUNT, team)
            self.add("InfrastructureConfiguration", team, name, spec)

    def distribution(self):
        n = self.counts["DistributionConfiguration"]
        for i in range(n):
            team = self.team_of(i, n)
            # Every fourth is for containers (ECR); with fewer than four, the
            # last, so that container pipelines have one.
            container = i % 4 == 3 or (1 < n < 4 and i == n - 1)
            regions = [self.region] + self.rng.sample([r for r in REGIONS if r != self.region],
                                                      self.rng.randint(0, 2))
            if container:
                name = self.unique("%s-ecr-%d-regions" % (team, len(regions)))
                dists = [{"region": r, "containerDistributionConfiguration": {
                    "description": "images of the %s team" % team,
                    "containerTags": ["latest"] if j else ["latest", "stable"],
                    "targetRepository": {"service": "ECR",
                                         "repositoryName": "%s/released" % team}}}
                    for j, r in enumerate(regions)]
            else:
                name = self.unique("%s-ami-%d-regions" % (team, len(regions)))
                dists = []
                for r in regions:
                    ami = {"name": "%s-{{ imagebuilder:buildDate }}" % team,
                           "amiTags": {"team": team, "built-by": "image-builder"}}
                    if self.rng.random() < 0.5:
                        ami["launchPermission"] = {
                            "userIds": ["%012d" % self.rng.randrange(10 ** 12)]}
                    dists.append({"region": r, "amiDistributionConfiguration": ami})
            spec = {"description": "Distribution of the %s team to %s" % (team, ", ".join(regions)),
                    "distributions": dists}
            self.add("DistributionConfiguration", team, name, spec,
                     extra={"container": container})

    def pick(self, kind, team, pred=lambda r: True):
        own = [r for r in self.by_team.get((kind, team), []) if pred(r)]
        pool = own or [r for r in self.all[kind] if pred(r)]
        return self.rng.choice(pool) if pool else None

    def pipelines(self):
        n = self.counts["ImagePipeline"]
        for i in range(n):
            team = self.team_of(i, n)
            container = self.all["ContainerRecipe"] and (i % 5 == 4)
            kind = "ContainerRecipe" if container else "ImageRecipe"
            # A recipe not used yet by a pipeline of its team, else any.
            recipe = (self.pick(kind, team, lambda r: not r["used"]) or
                      self.pick(kind, team))
            recipe["used"] = True
            dist = self.pick("DistributionConfiguration", team,
                             lambda r: r["container"] == bool(container))
            if dist is None:
                dist = self.pick("DistributionConfiguration", team)
            infra = self.pick("InfrastructureConfiguration", team)
            cadence = self.rng.choice(["nightly", "weekly", "release"])
            name = self.unique("%s-%s" % (recipe["name"], cadence))
            spec = {"description": "%s build of %s" % (cadence, recipe["name"])}
            if container:
                spec["containerRecipeArn"] = Ref(recipe["name"])
            else:
                spec["imageRecipeArn"] = Ref(recipe["name"])
            spec["infrastructureConfigurationArn"] = Ref(infra["name"])
            spec["distributionConfigurationArn"] = Ref(dist["name"])
            spec["status"] = "ENABLED" if self.rng.random() < 0.9 else "DISABLED"
            if cadence != "release":
                cron = ("cron(0 %d * * ? *)" % self.rng.randrange(24) if cadence == "nightly"
                        else "cron(0 %d ? * %s *)" % (self.rng.randrange(24),
                                                      self.rng.choice(["mon", "wed", "sun"])))
                spec["schedule"] = {
                    "scheduleExpression": cron,
                    "pipelineExecutionStartCondition":
                        "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"}
            spec["imageTestsConfiguration"] = {"imageTestsEnabled": True,
                                               "timeoutMinutes": self.rng.choice([60, 90, 120])}
            test = self.pick("Workflow", team, lambda r: r["type"] == "TEST")
            if not container and test and self.rng.random() < 0.3:
                build = self.pick("Workflow", team, lambda r: r["type"] == "BUILD")
                spec["executionRole"] = "arn:aws:iam::%s:role/ImageBuilderWorkflowRole" % ACCOUNT
                spec["workflows"] = [
                    {"workflowArn": Ref(build["name"]) if build else
                     self.aws_arn("workflow/build", "build-image")},
                    {"workflowArn": Ref(test["name"])}]
            self.add("ImagePipeline", team, name, spec)

    def lifecycle(self):
        n = self.counts["LifecyclePolicy"]
        for i in range(n):
            team = self.team_of(i, n)
            recipes = self.by_team.get(("ImageRecipe", team), []) or self.all["ImageRecipe"]
            container = i % 4 == 3
            keep = self.rng.choice([3, 5, 10])
            if container:
                name = self.unique("%s-container-retention" % team)
                spec = {"description": "Delete %s container images older than 90 days" % team,
                        "resourceType": "CONTAINER_IMAGE",
                        "policyDetails": [{"action": {"type": "DELETE"},
                                           "filter": {"type": "AGE", "value": 90,
                                                      "unit": "DAYS"}}],
                        "resourceSelection": {"tagMap": {"team": team}}}
            else:
                name = self.unique("%s-ami-retention" % team)
                chosen = self.rng.sample(recipes, min(len(recipes), self.rng.randint(1, 3)))
                spec = {"description": "Keep the %d newest %s AMIs, deprecate the rest"
                                       % (keep, team),
                        "resourceType": "AMI_IMAGE",
                        "policyDetails": [{"action": {"type": "DEPRECATE"},
                                           "filter": {"type": "COUNT", "value": keep}}],
                        "resourceSelection": {"recipes": [
                            {"name": r["name"], "semanticVersion": r["version"]}
                            for r in chosen]}}
            spec = {"executionRole": "arn:aws:iam::%s:role/ImageBuilderLifecycleRole" % ACCOUNT,
                    **spec, "status": "ENABLED"}
            self.add("LifecyclePolicy", team, name, spec)

    def run(self):
        # Order matters: recipes pick among the components already made, and
        # so on along the reference graph.
        self.components()
        self.workflows()
        self.image_recipes()
        self.container_recipes()
        self.infrastructure()
        self.distribution()
        self.pipelines()
        self.lifecycle()


def main():
    ap = argparse.ArgumentParser(description="Generate a realistic ibsync stack of N resources.")
    ap.add_argument("n", type=int, help="number of resources (at least 8)")
    ap.add_argument("outdir", help="directory to write (must not exist or be empty)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--stack", default="bench", help="stack name (default bench)")
    ap.add_argument("--region", default="us-east-1", help="region (default us-east-1)")
    args = ap.parse_args()
    if args.n < len(KIND_WEIGHTS):
        ap.error("N must be at least %d (one resource of every kind)" % len(KIND_WEIGHTS))
    if os.path.exists(args.outdir) and os.listdir(args.outdir):
        ap.error("%s exists and is not empty" % args.outdir)

    gen = Generator(args.n, args.seed, args.region)
    gen.run()
    stack = document("Stack", args.stack, {"region": args.region, "prune": True,
                                           "retainVersions": 3,
                                           "tags": {"managed-by": "ibsync"}})
    gen.files["stack.yaml"] = ("# Generated by tools/gen_stack.py %d --seed %d\n"
                               % (args.n, args.seed)) + stack
    for path in sorted(gen.files):
        full = os.path.join(args.outdir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(gen.files[path])
    for kind, _ in KIND_WEIGHTS:
        print("%s %d" % (kind, len(gen.all[kind])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
