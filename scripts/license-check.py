#!/usr/bin/env python3
"""license-check.py - fails when any crate in the dependency graph (normal, build and dev
dependencies of every workspace member, all features) is licensed only under GPL, AGPL
or LGPL (or has no license expression at all). An `OR` alternative that is permissive is
fine. Ends with "license-check: N passed, N failed" (N = crates)."""
import json
import re
import subprocess
import sys

COPYLEFT = re.compile(r"\b(A?GPL|LGPL)-", re.I)

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
    check=True, capture_output=True, text=True).stdout)
workspace = set(meta["workspace_members"])
bad = []
ok = 0
for p in meta["packages"]:
    if p["id"] in workspace:
        continue
    lic = p.get("license") or ""
    if not lic:
        bad.append(f'{p["name"]} {p["version"]}: no license expression (license_file: {p.get("license_file")})')
        continue
    # Acceptable when at least one OR-alternative carries no copyleft license.
    alternatives = [a.strip(" ()") for a in re.split(r"\bOR\b|/", lic)]
    if all(COPYLEFT.search(a) for a in alternatives):
        bad.append(f'{p["name"]} {p["version"]}: {lic}')
    else:
        ok += 1
for b in bad:
    print("copyleft or unknown license:", b)
print(f"license-check: {ok} passed, {len(bad)} failed")
sys.exit(1 if bad else 0)
