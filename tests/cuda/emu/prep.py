"""Rewrites a .cu file for host emulation: every kernel<<<grid, block, shmem, stream>>>(args) becomes
(emu_args_on_device("kernel", args), emu_launch(grid, block, coop, [&]() { kernel(args); })): the
pointer arguments checked against the calling thread's device (cuemu.h), then the kernel run; coop
is 1 for kernels whose bodies synchronise or shuffle (each CUDA thread of their blocks runs as a fiber). Usage: prep.py in.cu out.cpp"""
import re, sys
src = open(sys.argv[1]).read()
coop_markers = ["__syncthreads", "kt_cu_warp_", "__shfl"]
def body(m):
    i = src.index('{', m.end())
    depth, j = 0, i
    while True:
        if src[j] == '{': depth += 1
        elif src[j] == '}':
            depth -= 1
            if depth == 0: break
        j += 1
    return src[i:j]
# device helpers that cooperate (directly or through another helper) mark their callers too
helpers = {m.group(1): body(m) for m in re.finditer(r'__device__[^;{(]*?\b(\w+)\(', src)}
grew = True
while grew:
    grew = False
    for name, b in helpers.items():
        if name + '(' not in coop_markers and any(k in b for k in coop_markers):
            coop_markers.append(name + '(')
            grew = True
# find kernels whose bodies use cooperation
coop = set()
for m in re.finditer(r'__global__ void (\w+)\(', src):
    if any(k in body(m) for k in coop_markers): coop.add(m.group(1))
out, pos = [], 0
pat = re.compile(r'(\w+)(<[^<>;]*>)?<<<')
while True:
    m = pat.search(src, pos)
    if not m: break
    out.append(src[pos:m.start()])
    k = src.index('>>>', m.end())
    cfg = src[m.end():k]
    parts = [p.strip() for p in re.split(r',(?![^()]*\))', cfg)]
    p = k + 3
    assert src[p] == '(', src[p:p+20]
    depth, q = 0, p
    while True:
        if src[q] == '(': depth += 1
        elif src[q] == ')':
            depth -= 1
            if depth == 0: break
        q += 1
    args = src[p+1:q]
    name = m.group(1)
    # the pointer arguments checked against the calling thread's device first (cuemu.h)
    check = 'emu_args_on_device("%s", %s), ' % (name, args) if args.strip() else ''
    out.append('(%semu_launch(%s, %s, %d, [&]() { %s%s(%s); }))' % (check, parts[0], parts[1], 1 if name in coop else 0, name, m.group(2) or '', args))
    pos = q + 1
out.append(src[pos:])
open(sys.argv[2], 'w').write(''.join(out))
print(sys.argv[1], 'coop kernels:', sorted(coop), file=sys.stderr)
