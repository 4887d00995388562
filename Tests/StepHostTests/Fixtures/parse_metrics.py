#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with prometheus_client's own parser (as a Prometheus scrape would
read it) and prints every sample as one JSON line: {"family", "type", "name", "labels", "value"}. A text that does
not parse exits 1 with the parser's error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            print(json.dumps({
                "family": family.name, "type": family.type, "name": sample.name,
                "labels": sample.labels, "value": sample.value,
            }))
except Exception as error:  # the parser raises ValueError and others
    print(f"not Prometheus text: {error}", file=sys.stderr)
    sys.exit(1)
