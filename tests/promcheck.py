#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""promcheck.py -- read Prometheus text on stdin and parse it with
prometheus_client's parser, as a scraper would (tests/i_admin runs it on
what /metrics served). Prints every family as "# family NAME TYPE" and
every sample as NAME{k="v",...} VALUE, labels sorted, integral values
without a fraction; exits 0, 1 when the text does not parse, 77 when
prometheus_client is missing (Debian: python3-prometheus-client)."""
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit(77)

text = sys.stdin.read()
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError and others
    print("parse error: %s" % e)
    sys.exit(1)
for f in families:
    print("# family %s %s" % (f.name, f.type))
    for s in f.samples:
        labels = ",".join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
        v = s.value
        value = str(int(v)) if v == int(v) else repr(v)
        print("%s{%s} %s" % (s.name, labels, value))
