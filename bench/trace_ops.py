"""Per-op self time from Chrome traces (LibTorch's RecordProfile, torch's
profiler export): `trace_ops.py ours.json peer.json [N]` prints the N ops
with the most self time on either side: ms per traced run and % of that side's
total (the shares compare across runs on a loaded machine; the ms do not)."""
import json
import sys
from collections import defaultdict


def self_times(path):
    ev = json.load(open(path))
    ev = ev['traceEvents'] if isinstance(ev, dict) else ev
    spans = sorted((float(e['ts']), float(e['dur']), e['name'], e.get('tid', 0)) for e in ev
                   if e.get('ph') == 'X' and 'dur' in e)
    out = defaultdict(float)
    stacks = defaultdict(list)  # per thread: [end, name, child time]
    def pop(stack):
        end, name, child, dur = stack.pop()
        out[name] += (dur - child) / 1000.0
    for ts, dur, name, tid in spans:
        st = stacks[tid]
        while st and st[-1][0] <= ts:
            pop(st)
        if st:
            st[-1][2] += dur
        st.append([ts + dur, name, 0.0, dur])
    for st in stacks.values():
        while st:
            pop(st)
    return out


def main():
    ours, peer = self_times(sys.argv[1]), self_times(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    names = sorted(set(ours) | set(peer), key=lambda k: -max(ours.get(k, 0), peer.get(k, 0)))[:n]
    to, tp = sum(ours.values()), sum(peer.values())
    print('| op | ours ms | ours % | peer ms | peer % |\n| --- | --: | --: | --: | --: |')
    for k in names:
        o, p = ours.get(k, 0.0), peer.get(k, 0.0)
        print(f'| {k} | {o:.0f} | {100 * o / to:.1f} | {p:.0f} | {100 * p / tp:.1f} |')
    print(f'| **total (self)** | {to:.0f} | 100 | {tp:.0f} | 100 |')


if __name__ == '__main__':
    main()
