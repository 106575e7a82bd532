#!/usr/bin/env python3
"""Generates api/model_gen.c, the EC2 Image Builder API model as C tables.

Inputs (copies kept in api/data/, see api/data/README.md):

  imagebuilder-2019-12-02.model.json       aws-sdk v2 minified model: operations,
                                           HTTP bindings, shapes, required members
  imagebuilder-2019-12-02.paginators.json  pagination keys
  imagebuilder-api-reference.txt           the API reference converted from PDF to
                                           text: data type names, constraints,
                                           errors and their HTTP status

The minified model has anonymous inline shapes, so structures are named after
the reference: a member documented as "Type: [Distribution](#) object" or
"Array of [Distribution](#) objects" names its structure, and operation
inputs and outputs are "<Op>Request" and "<Op>Response". Every other shape
belongs to one member and is named after it: "Distribution.region", list
items "CreateComponentRequest.supportedOsVersions[]", map keys and values
"CreateComponentRequest.tags{key}" and "...{value}".

Where the model and the text disagree on structure (members, types, required)
the model wins; the text only contributes constraints. The PDF conversion
damaged a number of patterns; PATTERN_REPAIRS below repairs them explicitly, and
every pattern is compiled with the system PCRE2 (through ctypes) so that a
pattern PCRE2 rejects fails the generator instead of the service.

Usage: tools/gen_api.py           rewrite api/model_gen.c
       tools/gen_api.py --check   exit 1 if api/model_gen.c is not up to date
       tools/gen_api.py --verbose also list where the text and model disagree

Only the Python standard library is used.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "api", "data")
MODEL = os.path.join(DATA, "imagebuilder-2019-12-02.model.json")
PAGINATORS = os.path.join(DATA, "imagebuilder-2019-12-02.paginators.json")
REFERENCE = os.path.join(DATA, "imagebuilder-api-reference.txt")
OUTPUT = os.path.join(ROOT, "api", "model_gen.c")


class GenError(Exception):
    pass


# ---------------------------------------------------------------------------
# Repairs of the reference text
# ---------------------------------------------------------------------------

# Patterns the PDF-to-text conversion damaged, grouped by the pattern the
# service documents for that kind of value (commented with its name in the
# service model). Damage seen: spaces inserted into character classes or
# between atoms ("[a-z0-9- _]", "] + $"); the space of a class dropped
# ("[-_A-Za-z0-9 ]" -> "[-_A-Za-z0-9]"); "$" doubled, escaped or moved into a
# class; a "+" quantifier lost or a "{n}" quantifier moved into its class
# ("lic-[a-z0-9-_{32}]"); "/" turned into "|" or "\|"
# ("workflow\|(?:build|test|distribution)"); characters added to or lost from
# classes ("[a-z0-9-_.]", "[\x00]" for "[^\x00]", "\u002B", which PCRE2
# rejects); "::" collapsed to ":" and ":(?:" turned into "(?::"; prefixes lost
# ("lce-", "lt-"); parentheses unbalanced.
#
# Every variant is repaired, not only those PCRE2 rejects: a damaged pattern
# that compiles would accept or reject the wrong values. The repaired forms
# are the undamaged occurrences in the reference where there are any, and
# were cross-checked against the patterns of botocore 1.34.22's
# service-2.json for this API version (same 73 operations). Each variant must
# occur in the text (a stale entry fails the generator), and the text is
# looked up verbatim, backticks removed.
PATTERN_REPAIRS = [
    # TagKey: no occurrence is undamaged; "+-=" is a range that the damage
    # turned into "+-." (losing "0-9" and "=") and worse
    (r"^(?!aws:)[a-zA-Z+-=._:/]+$", [
        r"$^(?!aws:)[a-zA-Z+-. _:/]+$",
        r"^(?!aws:)[a-zA-Z+ -= . _ : /] + $",
        r"^(?!aws:)[a-zA-Z+ -=._:/]+$",
        r"^(?!aws:)[a-zA-Z+--._:/]+$",
        r"^(?!aws:)[a-zA-Z+--=._:/]+$",
        r"^(?!aws:)[a-zA-Z+-. _:/]+$",
        r"^(?!aws:)[a-zA-Z+-._: /]+",
        r"^(?!aws:)[a-zA-Z+-._: /]+$",
        r"^(?!aws:)[a-zA-Z+-._:/$]",
        r"^(?!aws:)[a-zA-Z+-._:/$]+",
        r"^(?!aws:)[a-zA-Z+-._:/$]+$",
        r"^(?!aws:)[a-zA-Z+-._:/>]+$",
        r"^(?!aws:)[a-zA-Z+-._:~]+$",
    ]),
    # AccountId
    (r"^[0-9]{12}$", [
        r"^[0-9]{12}$$",
    ]),
    # AmiNameString
    (r"^[-_A-Za-z0-9{][-_A-Za-z0-9\s:{}\.]+[-_A-Za-z0-9}]$", [
        r"^[-_A-Za-z0-9][-_A-Za-z0-9\s: {} \.]+[_A-Za-z0-9]$$",
    ]),
    # ComponentBuildVersionArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_/]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
    ]),
    # ComponentParameterName, WorkflowParameterName
    (r"[^\x00]+", [
        r"[\x00]+",
    ]),
    # ComponentParameterType
    (r"^String|Integer|Boolean|StringList$", [
        r"^String|Integer|Boolean|stringList$",
    ]),
    # ComponentParameterValue, WorkflowParameterValue
    (r"[^\x00]*", [
        r"[\x00]*",
    ]),
    # ComponentVersionArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_\u002B]/[0-9]+\.[0-9]+\.[0-9]+$",
    ]),
    # ComponentVersionArnOrBuildVersionArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_]+/(?:(?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_/]+(?:((?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):component/[a-z0-9-_/]+/(?:((?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x)))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$",
    ]),
    # ContainerRecipeArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):container-recipe/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):container-recipe/[a-z0-9-_/]+/[0-9]+\.[0-9]+\.[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):container-recipe/[a-z0-9-_/][0-9]+\.[0-9]+\.[0-9]+$",
    ]),
    # DistributionConfigurationArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):distribution-configuration/[a-z0-9-_]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):distribution-configuration/[a-z0-9- _]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):distribution-configuration/[a-z0-9-_$]",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):distribution-configuration/[a-z0-9-_$]+",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):distribution-configuration/[a-z0-9-_/]+$",
    ]),
    # ImageBuildVersionArn (no occurrence in the text is undamaged; most add "." to
    # the name class)
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+(?::[0-9]{12}|aws):image/[a-z0-9-_.][0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_-]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_.+[/0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_.]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_.][0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_/]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_/][0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_\]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_{1,99}]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
    ]),
    # ImageBuilderArn: "workflow/(?:build|test|distribution)" became "workflow|",
    # "workflow\|" or "workflow|/", and the optional groups lost their balance
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\/(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))(?:/[0-9]+)?)?$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+(?::[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\|(?:build|test|distribution))/[a-z0-9-_\+](?:/(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+(?::[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_.]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\|(?:(?:build|test|distribution))/[a-z0-9-_\|]+(?:/(?:(?:x|[0-9]+)\|(?:x|[0-9]+)\|(?:x|[0-9]+))/?|[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\|(?:build|test|distribution))/[a-z0-9-_.]+(?:/(?:((?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))|(?:/[0-9]+)?))?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\|(?:build|test|distribution))/[a-z0-9-_\+](?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow\|(?:build|test|distribution))/[a-z0-9-_\]+(?:/(?:((?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))|(?:/[0-9]+)?))?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution)))/[a-z0-9-_\+](?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_.]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_\+](?:/(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_\]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:((?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))|(?:[0-9]+)?))?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|(?:(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|/(?!(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|/(?!(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|/(?:(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):(?:image-recipe|container-recipe|infrastructure-configuration|distribution-configuration|component|image|image-pipeline|lifecycle-policy|workflow|/(?:build|test|distribution))/[a-z0-9-_]+(?:/(?:(?:x|[0-9]+)\.(?:x|[0-9]+)\.(?:x|[0-9]+))?(?:/[0-9]+)?)?$",
    ]),
    # ImagePipelineArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+(?::[0-9]{12}|aws):image-pipeline/[a-z0-9-_-]+/$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_$]+",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_.]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_/]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_\+] +$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline/[a-z0-9-_\+]+$",
    ]),
    # ImageRecipeArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-recipe/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+(?::[0-9]{12}|aws):image-recipe/[a-z0-9-_-]+/[0-9]+\.[0-9]+\.[0-9]+/$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-recipe/[a-z0-9-_.]+/[0-9]+\.[0-9]+\.[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-recipe/[a-z0-9-_\+]/[0-9]+\.[0-9]+\.[0-9]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-recipe/[a-z0-9-_\+]/[0-9]+\.[0-9]+\.[0-9]+\$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-recipe/[a-z0-9-_\u002B]+/[0-9]+\.[0-9]+\.[0-9]+$",
    ]),
    # ImageVersionArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_/][0-9]+\.[0-9]+\.[0-9]+$",
    ]),
    # ImageVersionArnOrBuildVersionArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_]+/(?:(?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image/[a-z0-9-_.]+/(?:((?:[0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+))$",
    ]),
    # InfrastructureConfigurationArn
    (r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):infrastructure-configuration/[a-z0-9-_]+$", [
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):infrastructure-configuration/[a-z0-9- _]+$",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):infrastructure-configuration/[a-z0-9-_$]+",
        r"^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):infrastructure-configuration/[a-z0-9-_\+]\$",
    ]),
    # InstanceProfileNameType
    (r"^[\w+=,.@-]+$", [
        r"^[\\w+=, .@-]+$",
        r"^[\w+=, .@-]+$",
    ]),
    # LaunchTemplateId
    (r"^lt-[a-z0-9-_]{17}$", [
        r"^[t-][a-z0-9-_{17}]$",
        r"^lt-[a-z0-9-_{17}]$",
    ]),
    # LicenseConfigurationArn
    (r"^arn:aws[^:]*:license-manager:[^:]+:[0-9]{12}:license-configuration:lic-[a-z0-9-_]{32}$", [
        r"^arn:aws[^:]*:license-manager:[^:]+:[0-9]{12}:license-configuration:lic-[a-z0-9-_{32}]$",
    ]),
    # LifecycleExecutionId
    (r"^lce-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", [
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        r"^[1ce-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}]$",
        r"^[lce-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}]$",
    ]),
    # LifecyclePolicyArn: the region part is "(?:-[a-z]+)+" in the undamaged
    # occurrences; without the "+" no region with two dashes (us-gov-west-1) matches
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):lifecycle-policy/[a-z0-9-_]+$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+(?::[0-9]{12}|aws):lifecycle-policy/[a-z0-9-_\]+$",
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+(?:[0-9]{12}|aws):lifecycle-policy/[a-z0-9-_]+$",
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):lifecycle-policy/[a-z0-9-_]+$",
    ]),
    # OrganizationArn
    (r"^arn:aws[^:]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$", [
        r"^arn:aws[^:]*:organizations:[0-9]{12}:organization/o-[a-z0-9]{10,32}$",
    ]),
    # OrganizationalUnitArn
    (r"^arn:aws[^:]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}", [
        r"^arn:aws[^:]*:organizations:[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}",
    ]),
    # ParallelGroup
    (r"^[A-Za-z0-9][A-Za-z0-9-_+#]{0,99}$", [
        r"^[A-Za-z0-9][A-Za-z0-9-_{0,99}]$",
    ]),
    # ResourceName: no occurrence keeps the space of the middle class, so names
    # with spaces, which the service accepts, would be rejected
    (r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$", [
        r"^[-_A-Za-z-0-9][-_A-Za-z0-9]{1,126}[-_A-Za-z-0-9]$",
        r"^[-_A-Za-z-0-9][-_A-Za-z0-9]{1,126}[-_A-Za-z-0-9]\$",
        r"^[-_A-Za-z-0-9][-_A-Za-z0-9]{1,126}[_A-Za-z-0-9]$",
        r"^[-_A-Za-z0-9][-_A-Za-z0-9]{1,126}[-_A-Za-z0-9]$",
        r"^[-_A-Za-z0-9][-_A-Za-z0-9]{1,126}[_A-Za-z0-9]$",
        r"^[_A-Za-z-0-9][_A-Za-z0-9]{1,126}[_A-Za-z-0-9]$",
    ]),
    # RoleNameOrArn
    (r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.@\-_/]+$", [
        r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@-_/\]+$",
        r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@-_/]+$",
        r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_/-]+",
        r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_/\]+$",
        r"^(?:arn:aws(?:-[a-z]+)*:iam:[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@\\-_/]+$",
        r"^(?:arn:aws(?:-[a-z]+)*:iam:[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_-/_]+",
        r"^(?:arn:aws(?:-[a-z]+)*:iam:[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_/-]+/$",
        r"^(?:arn:aws(?:-[a-z]+)*:iam:[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_/_]+",
        r"^(?:arn:aws(?:-[a-z]+)*:iam:[0-9]{12}:role/)?[a-zA-Z_0-9+=,.\@_/_]+$",
    ]),
    # SnsTopicArn
    (r"^arn:aws[^:]*:sns:[^:]+:[0-9]{12}:[a-zA-Z0-9-_]{1,256}$", [
        r"^arn:aws[^:]*:sns:[^:]+:[0-9]{12}:[a-zA-Z0-9-_{1,256}]$",
    ]),
    # Timezone: "(?:\/" became "(:|\/|"
    (r"[a-zA-Z0-9]{2,}(?:\/[a-zA-z0-9-_+]+)*", [
        r"[a-zA-Z0-9]{2,}(:|\/|[a-zA-z0-9-+_]+)*",
    ]),
    # WorkflowBuildVersionArn and the other workflow ARNs: "(?:-[a-z]+)+" lost its
    # "+" as in LifecyclePolicyArn
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+(?::[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_/]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$",
    ]),
    # WorkflowNameArn
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/x\.x\.x$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-]+/x\.x\.x$",
    ]),
    # WorkflowStepAction, WorkflowStepName
    (r"^[A-Za-z][A-Za-z0-9-_]{1,99}$", [
        r"^[A-Za-z][A-Za-z0-9-_{1,99}]$",
    ]),
    # WorkflowVersionArn
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/[0-9]+\.[0-9]+\.[0-9]+$",
    ]),
    # WorkflowVersionArnOrBuildVersionArn
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/(?:(?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/(?:((?:[0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|((?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$",
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/(?:([0-9]+|x)\.([0-9]+|x)\.([0-9]+|x))|(?:[0-9]+\.[0-9]+\.[0-9]+/[0-9]+))$",
    ]),
    # WorkflowWildcardVersionArn
    (r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)+-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/(?:[0-9]+|x)\.(?:[0-9]+|x)\.(?:[0-9]+|x)$", [
        r"^arn:aws(?:-[a-z]+)*:imagebuilder:[a-z]{2,}(?:-[a-z]+)-[0-9]+:(?:[0-9]{12}|aws):workflow/(build|test|distribution)/[a-z0-9-_]+/(?:[0-9]+|x)\.(?:[0-9]+|x)\.(?:[0-9]+|x)$",
    ]),
]

PATTERN_FIXES = {}
for _good, _variants in PATTERN_REPAIRS:
    for _bad in _variants:
        assert _bad not in PATTERN_FIXES, _bad
        PATTERN_FIXES[_bad] = _good


# Parts of the reference the conversion lost. The heading, request syntax and
# URI parameters of ListTagsForResource are missing; its response elements
# and errors follow the "See Also" of ListLifecyclePolicies.
ORPHAN_SECTIONS = {"ListLifecyclePolicies": "ListTagsForResource"}

# Members whose documentation is missing from the text, documented like the
# member named on the right (same data type in the service model).
BORROWED_MEMBERS = {
    ("ListTagsForResourceRequest", "resourceArn"): ("TagResourceRequest", "resourceArn"),
}


# ---------------------------------------------------------------------------
# PCRE2 (through ctypes, so that the generator needs no third-party module)
# ---------------------------------------------------------------------------

class Pcre2:
    UTF = 0x00080000

    def __init__(self):
        name = ctypes.util.find_library("pcre2-8")
        candidates = [name] if name else []
        candidates += ["libpcre2-8.so.0", "libpcre2-8.so", "libpcre2-8.0.dylib"]
        self.lib = None
        for cand in candidates:
            try:
                self.lib = ctypes.CDLL(cand)
                break
            except OSError:
                continue
        if self.lib is None:
            raise GenError("cannot load libpcre2-8 to check the patterns")
        self.compile = self.lib.pcre2_compile_8
        self.compile.restype = ctypes.c_void_p
        self.compile.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                 ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t),
                                 ctypes.c_void_p]
        self.free = self.lib.pcre2_code_free_8
        self.free.argtypes = [ctypes.c_void_p]
        self.message = self.lib.pcre2_get_error_message_8
        self.message.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]

    def check(self, pattern):
        """None if `pattern` compiles, else PCRE2's error message."""
        data = pattern.encode("utf-8")
        err = ctypes.c_int(0)
        off = ctypes.c_size_t(0)
        code = self.compile(data, len(data), self.UTF, ctypes.byref(err), ctypes.byref(off), None)
        if code:
            self.free(code)
            return None
        buf = ctypes.create_string_buffer(256)
        self.message(err.value, buf, len(buf))
        return "%s at offset %d" % (buf.value.decode(), off.value)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class MShape:
    def __init__(self, node, ref=None):
        self.ref = ref
        self.type = node.get("type", "string")
        self.required = set(node.get("required", []))
        self.members = []  # MMember, model order
        self.item = self.key = self.value = None


class MMember:
    def __init__(self, name, node, shape):
        self.name = name
        self.shape = shape
        self.location = node.get("location")
        self.location_name = node.get("locationName")
        self.idempotency_token = bool(node.get("idempotencyToken"))


class Model:
    def __init__(self, path, paginators_path):
        with open(path, encoding="utf-8") as f:
            self.json = json.load(f)
        with open(paginators_path, encoding="utf-8") as f:
            self.paginators = json.load(f)["pagination"]
        self.refs = {}
        self.ops = {}
        for name, op in self.json["operations"].items():
            self.ops[name] = {
                "method": op["http"].get("method", "POST"),
                "uri": op["http"]["requestUri"],
                "input": self.resolve(op["input"]) if "input" in op else None,
                "output": self.resolve(op["output"]) if "output" in op else None,
            }

    def resolve(self, node):
        if "shape" in node:
            ref = node["shape"]
            if ref not in self.refs:
                self.refs[ref] = MShape(self.json["shapes"][ref], ref)
                self._fill(self.refs[ref], self.json["shapes"][ref])
            return self.refs[ref]
        shape = MShape(node)
        self._fill(shape, node)
        return shape

    def _fill(self, shape, node):
        if shape.type == "structure":
            for name, mnode in node.get("members", {}).items():
                shape.members.append(MMember(name, mnode, self.resolve(mnode)))
        elif shape.type == "list":
            shape.item = self.resolve(node["member"])
        elif shape.type == "map":
            shape.key = self.resolve(node["key"])
            shape.value = self.resolve(node["value"])


# ---------------------------------------------------------------------------
# The reference text
# ---------------------------------------------------------------------------

SUBSECTIONS = ["Request Syntax", "URI Request Parameters", "Request Body", "Response Syntax",
               "Response Elements", "Errors", "See Also"]

_BOUND = re.compile(r"(Minimum|Maximum|Fixed) (?:length|value|number) of (-?[0-9]+)(?:\.[0-9]+)?"
                    r" ?(?:items?)?\.?")


def parse_bounds(text):
    """(min, max) from 'Minimum length of 1. Maximum length of 1024.'; None when absent."""
    lo = hi = None
    rest = text.strip()
    pos = 0
    while pos < len(rest):
        m = _BOUND.match(rest, pos)
        if not m:
            raise GenError("cannot parse constraint %r" % text)
        val = int(m.group(2))
        if m.group(1) == "Minimum":
            lo = val
        elif m.group(1) == "Maximum":
            hi = val
        else:
            lo = hi = val
        pos = m.end()
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
    return (lo, hi)


def parse_pattern(text):
    raw = text.strip()
    if len(raw) >= 2 and raw.startswith("`") and raw.endswith("`"):
        raw = raw[1:-1]
    return PATTERN_FIXES.get(raw, raw), raw


def parse_enums(text):
    vals = [v.strip().strip("`").strip() for v in text.replace("`", " ").split("|")]
    return [v for v in vals if v]


class MemberDoc:
    """Type and constraints of one member, from its block in the text."""

    def __init__(self, name):
        self.name = name
        self.type_text = None
        self.required = None
        self.c = {}  # constraint name -> value


CONSTRAINT_KEYS = {
    "Length Constraints": "length",
    "Valid Range": "range",
    "Array Members": "items",
    "Map Entries": "entries",
    "Key Length Constraints": "key_length",
    "Value Length Constraints": "value_length",
}


def parse_member_block(name, lines):
    doc = MemberDoc(name)
    joined = []
    for line in lines:
        s = line.strip()
        if s.startswith("```"):
            continue
        if joined and joined[-1].endswith("|") and s:
            joined[-1] += " " + s
            continue
        joined.append(s)
    for s in joined:
        key, sep, val = s.partition(": ")
        if not sep:
            continue
        if key == "Type" and doc.type_text is None:
            doc.type_text = val.strip()
        elif key == "Required":
            doc.required = val.strip() == "Yes"
        elif key in CONSTRAINT_KEYS:
            doc.c[CONSTRAINT_KEYS[key]] = parse_bounds(val)
        elif key in ("Pattern", "Key Pattern", "Value Pattern"):
            doc.c[{"Pattern": "pattern", "Key Pattern": "key_pattern",
                   "Value Pattern": "value_pattern"}[key]] = parse_pattern(val)[0]
        elif key == "Valid Values":
            doc.c["enums"] = parse_enums(val)
    return doc


def parse_members(lines, names):
    """MemberDoc for every member of `names` documented in `lines`."""
    starts = []
    for i, line in enumerate(lines):
        s = line.strip()
        m = re.fullmatch(r"\[\**(\w+)\**\]\(#\)", s)
        name = m.group(1) if m else s
        if name in names:
            starts.append((i, name))
    docs = {}
    for n, (i, name) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        if name in docs:
            raise GenError("member %s documented twice" % name)
        docs[name] = parse_member_block(name, lines[i + 1:end])
    return docs


def parse_errors(lines):
    errors = []
    current = None
    for line in lines:
        s = line.strip()
        if re.fullmatch(r"[A-Z][A-Za-z0-9]+", s):
            current = s
            continue
        m = re.fullmatch(r"HTTP Status Code: ([0-9]{3})", s)
        if m and current:
            errors.append((current, int(m.group(1))))
            current = None
    return errors


class Reference:
    def __init__(self, path, model):
        with open(path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        lines = self.lines
        actions = self._heading("Actions", "The following actions are supported:", 0)
        types = self._heading("Data Types", "The EC2 Image Builder API contains several data types",
                              actions)
        params = self._heading("Common Parameters", "The following list contains", types)
        errors = self._heading("Common Errors", "This section lists the errors", params)

        # Operations: heading line, then subsections in SUBSECTIONS order.
        self.ops = {}
        heads = [(i, lines[i]) for i in range(actions + 1, types) if lines[i] in model.ops]
        for n, (start, op) in enumerate(heads):
            end = heads[n + 1][0] if n + 1 < len(heads) else types
            if op in self.ops:
                raise GenError("operation %s documented twice" % op)
            self.ops.setdefault(op, {})
            target = op
            last = -1
            sub = None
            for line in lines[start + 1:end]:
                if line in SUBSECTIONS:
                    idx = SUBSECTIONS.index(line)
                    if idx <= last:
                        if op not in ORPHAN_SECTIONS or target != op:
                            raise GenError("%s: unexpected %r" % (op, line))
                        target = ORPHAN_SECTIONS[op]
                        self.ops.setdefault(target, {})
                    last = idx
                    sub = self.ops[target].setdefault(line, [])
                elif sub is not None:
                    sub.append(line)
        for op in model.ops:
            if op not in self.ops:
                raise GenError("operation %s is not documented" % op)

        # Data types: the index after "The following data types are supported:".
        self.types = {}
        names = []
        i = types + 1
        while i < params and lines[i] != "The following data types are supported:":
            i += 1
        i += 1
        while i < params and (not lines[i].strip() or lines[i].startswith("- [")):
            m = re.fullmatch(r"- \[(\w+)\]\(#\)", lines[i])
            if m:
                names.append(m.group(1))
            i += 1
        index_end = i
        heads = [(j, lines[j]) for j in range(index_end, params) if lines[j] in names]
        for n, (start, name) in enumerate(heads):
            end = heads[n + 1][0] if n + 1 < len(heads) else params
            body = lines[start + 1:end]
            if "Contents" not in body:
                raise GenError("data type %s has no Contents" % name)
            if name in self.types:
                raise GenError("data type %s documented twice" % name)
            self.types[name] = body[body.index("Contents") + 1:]
        missing = [n for n in names if n not in self.types]
        if missing:
            raise GenError("data types without a section: %s" % ", ".join(missing))

        self.common_errors = parse_errors(lines[errors + 1:])

        self.raw_patterns = set()
        for line in lines:
            m = re.match(r"(?:Key |Value )?Pattern: (.*)$", line.strip())
            if m:
                self.raw_patterns.add(parse_pattern(m.group(1))[1])

    def _heading(self, title, following, start):
        for i in range(start, len(self.lines) - 2):
            if self.lines[i] == title:
                nxt = next((l for l in self.lines[i + 1:i + 4] if l.strip()), "")
                if nxt.startswith(following):
                    return i
        raise GenError("reference text has no %r section" % title)


# ---------------------------------------------------------------------------
# Building the C shapes
# ---------------------------------------------------------------------------

C_TYPES = {
    "string": "IBS_API_STRING",
    "integer": "IBS_API_INTEGER",
    "long": "IBS_API_LONG",
    "double": "IBS_API_DOUBLE",
    "boolean": "IBS_API_BOOLEAN",
    "timestamp": "IBS_API_TIMESTAMP",
    "list": "IBS_API_LIST",
    "map": "IBS_API_MAP",
    "structure": "IBS_API_STRUCTURE",
}

TEXT_TYPES = {
    "string": "String",
    "integer": "Integer",
    "long": "Long",
    "double": "Double",
    "boolean": "Boolean",
    "timestamp": "Timestamp",
}

C_LOCATIONS = {
    None: "IBS_API_LOC_BODY",
    "uri": "IBS_API_LOC_URI",
    "querystring": "IBS_API_LOC_QUERYSTRING",
    "header": "IBS_API_LOC_HEADER",
}


class GShape:
    def __init__(self, name, mtype):
        self.name = name
        self.type = mtype
        self.min = self.max = None
        self.pattern = None
        self.enums = None
        self.item = self.key = None
        self.members = []

    @property
    def cname(self):
        s = self.name.replace("[]", "_item").replace("{key}", "_key").replace("{value}", "_value")
        return "S_" + re.sub(r"[^A-Za-z0-9_]", "_", s)


class GMember:
    def __init__(self, mm, shape, required):
        self.name = mm.name
        self.shape = shape
        self.required = required
        self.idempotency_token = mm.idempotency_token
        self.location = mm.location
        self.location_name = mm.location_name


class Builder:
    def __init__(self, model, ref, pcre):
        self.model = model
        self.ref = ref
        self.pcre = pcre
        self.shapes = {}
        self.struct_src = {}
        self.problems = []  # fatal, reported together
        self.notes = []  # text/model disagreements (the model wins)
        self.type_docs = {}
        self.ops = []
        self.errors = {}

    # -- shapes --

    def new(self, name, mtype):
        if name in self.shapes:
            raise GenError("two shapes named %s" % name)
        g = GShape(name, mtype)
        self.shapes[name] = g
        return g

    def docs_of_type(self, name, ms):
        if name not in self.type_docs:
            if name not in self.ref.types:
                self.problems.append("data type %s has no section in the reference" % name)
                self.type_docs[name] = {}
            else:
                names = {m.name for m in ms.members}
                self.type_docs[name] = parse_members(self.ref.types[name], names)
        return self.type_docs[name]

    def struct(self, name, ms, docs):
        if name in self.shapes:
            prev = self.struct_src[name]
            if prev is not ms and [m.name for m in prev.members] != [m.name for m in ms.members]:
                self.problems.append("the model has two different structures named %s" % name)
            return self.shapes[name]
        g = self.new(name, "structure")
        self.struct_src[name] = ms
        for mm in ms.members:
            doc = docs.get(mm.name)
            path = "%s.%s" % (name, mm.name)
            if doc is None:
                self.notes.append("%s: not documented in the reference" % path)
            elif doc.required is not None and doc.required != (mm.name in ms.required):
                self.notes.append("%s: the reference says required=%s" % (path, doc.required))
            shape = self.member_shape(path, mm.shape, doc)
            g.members.append(GMember(mm, shape, mm.name in ms.required))
        return g

    def struct_name(self, path, doc, array):
        text = doc.type_text if doc else None
        rx = r"Array of \[(\w+)\]\(#\) objects" if array else r"\[(\w+)\]\(#\) object"
        m = re.fullmatch(rx, text or "")
        if not m:
            self.problems.append("%s: cannot name the structure from type %r" % (path, text))
            return path
        return m.group(1)

    def member_shape(self, path, ms, doc):
        c = doc.c if doc else {}
        t = ms.type
        if t == "structure":
            name = self.struct_name(path, doc, False)
            return self.struct(name, ms, self.docs_of_type(name, ms))
        if t == "list":
            g = self.new(path, "list")
            g.min, g.max = c.get("items", (None, None))
            if ms.item.type == "structure":
                name = self.struct_name(path, doc, True)
                g.item = self.struct(name, ms.item, self.docs_of_type(name, ms.item))
            elif ms.item.type in ("list", "map"):
                self.problems.append("%s: nested collections are not supported" % path)
            else:
                self.expect_type(path, doc, "Array of %ss" % TEXT_TYPES[ms.item.type].lower())
                g.item = self.scalar(path + "[]", ms.item, c)
            return g
        if t == "map":
            g = self.new(path, "map")
            g.min, g.max = c.get("entries", (None, None))
            g.key = self.scalar(path + "{key}", ms.key,
                                {"length": c.get("key_length"), "pattern": c.get("key_pattern")})
            if ms.value.type == "structure":
                self.problems.append("%s: maps of structures are not supported" % path)
            else:
                self.expect_type(path, doc, "String to string map")
                g.item = self.scalar(path + "{value}", ms.value,
                                     {"length": c.get("value_length"),
                                      "pattern": c.get("value_pattern")})
            return g
        self.expect_type(path, doc, TEXT_TYPES[t])
        return self.scalar(path, ms, c)

    def expect_type(self, path, doc, text):
        if doc and doc.type_text and doc.type_text != text:
            self.notes.append("%s: the reference says type %r, the model %r"
                              % (path, doc.type_text, text))

    def scalar(self, path, ms, c):
        g = self.new(path, ms.type)
        if ms.type == "string":
            g.min, g.max = c.get("length") or (None, None)
            g.pattern = c.get("pattern")
            g.enums = c.get("enums")
            if g.pattern is not None:
                err = self.pcre.check(g.pattern)
                if err:
                    self.problems.append("%s: PCRE2 cannot compile pattern %s: %s"
                                         % (path, g.pattern, err))
        elif ms.type in ("integer", "long", "double"):
            g.min, g.max = c.get("range") or (None, None)
        for k in ("length", "pattern", "enums", "range"):
            if c.get(k) and not self.applies(ms.type, k):
                self.notes.append("%s: %s given for a %s" % (path, k, ms.type))
        return g

    @staticmethod
    def applies(mtype, key):
        if key == "range":
            return mtype in ("integer", "long", "double")
        return mtype == "string"

    # -- operations --

    def op_docs(self, op, struct, sections):
        ms = self.model.ops[op]["input" if struct.endswith("Request") else "output"]
        names = {m.name for m in ms.members}
        docs = {}
        for sec in sections:
            docs.update(parse_members(self.ref.ops[op].get(sec, []), names))
        return docs

    def build(self):
        docs = {}
        for op in sorted(self.model.ops):
            docs[op + "Request"] = self.op_docs(op, op + "Request",
                                                ["URI Request Parameters", "Request Body"])
            docs[op + "Response"] = self.op_docs(op, op + "Response", ["Response Elements"])
        for (struct, member), (src, src_member) in sorted(BORROWED_MEMBERS.items()):
            if member in docs[struct]:
                raise GenError("%s.%s is documented now; drop it from BORROWED_MEMBERS"
                               % (struct, member))
            docs[struct][member] = docs[src][src_member]

        for op in sorted(self.model.ops):
            mo = self.model.ops[op]
            ro = self.ref.ops[op]
            self.check_request_line(op, mo, ro.get("Request Syntax", []))
            if re.search(r"\?|\{[^}]*\}.*\{", mo["uri"]):
                raise GenError("%s: URI %s has a query or several labels" % (op, mo["uri"]))
            inp = self.struct(op + "Request", mo["input"], docs[op + "Request"])
            out = self.struct(op + "Response", mo["output"], docs[op + "Response"])
            errors = parse_errors(ro.get("Errors", []))
            if not errors:
                self.problems.append("%s: no errors documented" % op)
            for code, status in errors:
                self.add_error(code, status)
            pag = self.model.paginators.get(op)
            if pag:
                for key, owner in (("input_token", inp), ("limit_key", inp),
                                   ("output_token", out), ("result_key", out)):
                    val = pag.get(key)
                    if val is not None and (not isinstance(val, str)
                                            or val not in [m.name for m in owner.members]):
                        raise GenError("%s: pagination %s %r is not a member" % (op, key, val))
            self.ops.append({"name": op, "method": mo["method"], "uri": mo["uri"],
                             "input": inp, "output": out, "errors": errors, "pagination": pag})
        for code, status in self.ref.common_errors:
            self.add_error(code, status)
        for bad in sorted(set(PATTERN_FIXES) - self.ref.raw_patterns):
            self.problems.append("PATTERN_REPAIRS lists %s, which the reference does not have"
                                 % bad)
        for good, _ in PATTERN_REPAIRS:
            err = self.pcre.check(good)
            if err:
                self.problems.append("PCRE2 cannot compile repaired pattern %s: %s" % (good, err))
        if self.problems:
            raise GenError("\n".join(self.problems))

    def add_error(self, code, status):
        if self.errors.setdefault(code, status) != status:
            self.problems.append("error %s has HTTP status %d and %d"
                                 % (code, self.errors[code], status))

    def check_request_line(self, op, mo, lines):
        for line in lines:
            m = re.match(r"(GET|PUT|POST|DELETE|PATCH) (\S+)(?: HTTP/1\.1)?$", line.strip())
            if not m:
                continue
            path = m.group(2).split("?")[0]
            want = mo["uri"].replace("{", "").replace("}", "")
            if m.group(1) != mo["method"] or path != want:
                self.notes.append("%s: the reference says %s %s, the model %s %s"
                                  % (op, m.group(1), path, mo["method"], mo["uri"]))
            return
        self.notes.append("%s: no request line in the reference" % op)


# ---------------------------------------------------------------------------
# C output
# ---------------------------------------------------------------------------

def c_string(s):
    if s is None:
        return "NULL"
    out = []
    prev = ""
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "?" and prev == "?":
            out.append("\\?")  # no trigraphs in -std=c11
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.extend("\\%03o" % b for b in ch.encode("utf-8"))
        prev = ch
    return '"' + "".join(out) + '"'


def c_bound(v):
    return "IBS_API_NONE" if v is None else "%d" % v


def c_bool(v):
    return "true" if v else "false"


HEADER = """\
/*
 * The EC2 Image Builder API model (2019-12-02) as C tables.
 *
 * GENERATED by tools/gen_api.py from api/data/ (the aws-sdk model and
 * paginators, and the API reference text); do not edit. Regenerate with
 * `python3 tools/gen_api.py`; ctest api/generated-up-to-date checks it.
 */
#include "api/model_gen.h"

#include <stddef.h>

/* clang-format off */
"""


def emit(builder):
    shapes = sorted(builder.shapes.values(), key=lambda g: g.name)
    cnames = {}
    for g in shapes:
        if g.cname in cnames:
            raise GenError("C name %s used by %s and %s" % (g.cname, cnames[g.cname], g.name))
        cnames[g.cname] = g.name
    out = [HEADER]

    out.append("/* Shapes, declared first because they point at each other. */\n")
    for g in shapes:
        out.append("static const struct ibs_api_shape %s;\n" % g.cname)

    enums = {}
    out.append("\n/* Valid values. */\n")
    for g in shapes:
        if g.enums and tuple(g.enums) not in enums:
            ename = "E" + g.cname[1:]
            enums[tuple(g.enums)] = ename
            vals = ", ".join(c_string(v) for v in g.enums)
            out.append("static const char *const %s[] = {%s, NULL};\n" % (ename, vals))

    out.append("\n/* Structure members. */\n")
    for g in shapes:
        if g.type != "structure" or not g.members:
            continue
        out.append("static const struct ibs_api_member M%s[] = {\n" % g.cname[1:])
        for m in g.members:
            out.append("    {%s, &%s, %s, %s, %s, %s},\n"
                       % (c_string(m.name), m.shape.cname, c_bool(m.required),
                          c_bool(m.idempotency_token), C_LOCATIONS[m.location],
                          c_string(m.location_name)))
        out.append("};\n")

    out.append("\n/* Shapes. */\n")
    for g in shapes:
        members = ("M%s" % g.cname[1:]) if g.members else "NULL"
        out.append("static const struct ibs_api_shape %s = {%s, %s, %s, %s, %s, %s, %s, %s, %s, %d};\n"
                   % (g.cname, c_string(g.name), C_TYPES[g.type], c_bound(g.min), c_bound(g.max),
                      c_string(g.pattern), enums[tuple(g.enums)] if g.enums else "NULL",
                      "&" + g.item.cname if g.item else "NULL",
                      "&" + g.key.cname if g.key else "NULL", members, len(g.members)))

    out.append("\n/* Errors of each operation, as the reference lists them. */\n")
    for op in builder.ops:
        out.append("static const struct ibs_api_error ERR_%s[] = {\n" % op["name"])
        for code, status in op["errors"]:
            out.append("    {%s, %d},\n" % (c_string(code), status))
        out.append("    {NULL, 0},\n};\n")

    out.append("\nconst struct ibs_api_operation ibs_api_gen_operations[] = {\n")
    for op in builder.ops:
        pag = op["pagination"] or {}
        out.append("    {%s, %s, %s,\n" % (c_string(op["name"]), c_string(op["method"]),
                                           c_string(op["uri"])))
        out.append("     &%s, &%s, ERR_%s,\n" % (op["input"].cname, op["output"].cname,
                                                  op["name"]))
        out.append("     %s, %s, %s, %s},\n"
                   % tuple(c_string(pag.get(k)) for k in ("input_token", "output_token",
                                                            "limit_key", "result_key")))
    out.append("};\n")
    out.append("const size_t ibs_api_gen_noperations = %d;\n" % len(builder.ops))

    out.append("\n/* Every shape, sorted by name (strcmp order). */\n")
    out.append("const struct ibs_api_shape *const ibs_api_gen_shapes[] = {\n")
    for g in shapes:
        out.append("    &%s,\n" % g.cname)
    out.append("};\n")
    out.append("const size_t ibs_api_gen_nshapes = %d;\n" % len(shapes))

    out.append("\n/* Every error code of the reference with its HTTP status, sorted by code. */\n")
    out.append("const struct ibs_api_error ibs_api_gen_errors[] = {\n")
    for code in sorted(builder.errors):
        out.append("    {%s, %d},\n" % (c_string(code), builder.errors[code]))
    out.append("};\n")
    out.append("const size_t ibs_api_gen_nerrors = %d;\n" % len(builder.errors))
    out.append("/* clang-format on */\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with api/model_gen.c instead of writing it")
    ap.add_argument("--verbose", action="store_true",
                    help="list where the reference text and the model disagree")
    args = ap.parse_args()
    try:
        model = Model(MODEL, PAGINATORS)
        ref = Reference(REFERENCE, model)
        builder = Builder(model, ref, Pcre2())
        builder.build()
        text = emit(builder)
    except GenError as e:
        print("gen_api.py: error: %s" % e, file=sys.stderr)
        return 2
    if args.verbose:
        for note in builder.notes:
            print("note: %s" % note, file=sys.stderr)
    if args.check:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            print("gen_api.py: %s" % e, file=sys.stderr)
            return 1
        if current != text:
            print("gen_api.py: api/model_gen.c is out of date; run tools/gen_api.py",
                  file=sys.stderr)
            return 1
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
