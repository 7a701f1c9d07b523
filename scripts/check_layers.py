#!/usr/bin/env python3
"""Checks the layering of docs/architecture.md: squadron/<component> may include only
components of a lower layer (or itself). Prints each violation; exit 1 if any."""
import os, re, sys

# layer of each component; siblings of one layer do not include each other
LAYERS = {'core': 0, 'http': 1, 'registry': 1, 'resilience': 1, 'supervisor': 2, 'gateway': 2, 'service': 2,
          'cluster': 3, 'control': 4}
# Edges forbidden although the layers would allow them: the control plane reaches the gateway
# only through the watch snapshot and the gateway's /metrics.json (core/latency.hpp), never its code.
FORBIDDEN = {('control', 'gateway'), ('cluster', 'gateway')}
# Headers of a lower layer that are all a component may see of it: the gateway knows the registry
# only by the watch contract (and the instance codec it builds on), never the registry itself.
ONLY = {('gateway', 'registry'): {'watch.hpp', 'instance.hpp'}}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'squadron')
include = re.compile(r'#include\s+"squadron/([a-z_]+)/([a-z_/]+\.hpp)"')
bad = 0
for comp in sorted(os.listdir(root)):
    path = os.path.join(root, comp)
    if not os.path.isdir(path):
        continue
    if comp not in LAYERS:
        print('check_layers: squadron/%s has no layer: add it to scripts/check_layers.py and docs/architecture.md' % comp)
        bad = 1
        continue
    for dirpath, _, files in os.walk(path):
        for f in files:
            if not f.endswith(('.cpp', '.hpp')):
                continue
            for n, line in enumerate(open(os.path.join(dirpath, f)), 1):
                m = include.search(line)
                if not m or m.group(1) == comp:
                    continue
                dep = m.group(1)
                only = ONLY.get((comp, dep))
                if only is not None and m.group(2) not in only:
                    print('check_layers: %s:%d: squadron/%s sees squadron/%s only through %s' %
                          (os.path.relpath(os.path.join(dirpath, f)), n, comp, dep,
                           ', '.join(sorted(only))))
                    bad = 1
                if dep not in LAYERS or LAYERS[dep] >= LAYERS[comp] or (comp, dep) in FORBIDDEN:
                    print('check_layers: %s:%d: squadron/%s may not include squadron/%s' %
                          (os.path.relpath(os.path.join(dirpath, f)), n, comp, dep))
                    bad = 1
sys.exit(bad)
