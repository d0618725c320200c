#!/usr/bin/env python3
"""Times PyTorch's dropout and a Triton seeded dropout on the GPU, beside the WebGPU suite.

Run by bench/gpu/run.sh (the GPU recipe, bench/README.md) on a machine with an NVIDIA GPU, where
it needs Python 3 with PyTorch (CUDA) and Triton. For every size 2^min..2^max and fp32/fp16 it
times, with CUDA events around many launches captured in one CUDA graph (so small sizes measure
the GPU, not Python's launch rate, as the WebGPU suite's many dispatches in one submit do; eager
launches where capture fails), median of samples:
  torch.copy     y.copy_(x), the copy roofline over the same bytes
  torch.dropout  torch.nn.functional.dropout(x, p, training=True) (forward: output + 1-byte mask)
  torch.dropout_backward  aten.native_dropout_backward(dy, mask, scale) (reads the stored mask)
  triton.randint4x  our mask contract in Triton: one tl.randint4x(seed, g) per 4 elements,
                    element 4g+k kept iff word k >= round(p 2^32) (the contract's words for stream 0)
  triton.rand       Triton's tutorial seeded dropout: tl.rand(seed, offset) per element, keep iff > p
Writes JSON, and with --ours (the WebGPU suite's JSON from the same machine) a Markdown table
comparing time per element.
"""
import argparse
import json
import os
import statistics
import sys

import torch
import triton
import triton.language as tl

P = 0.5
SEED = 0x5EED


@triton.jit
def dropout_randint4x(x_ptr, y_ptr, n, threshold, scale, seed, GROUPS: tl.constexpr):
    # One Philox call per 4 elements: group g holds elements 4g..4g+3, element 4g+k uses word k.
    g = tl.program_id(0) * GROUPS + tl.arange(0, GROUPS)
    w0, w1, w2, w3 = tl.randint4x(seed, g)
    # [GROUPS, 4] in element order (join(join(w0, w2), join(w1, w3)) flattens to w0, w1, w2, w3),
    # so each row is 4 contiguous elements and the loads and stores stay wide.
    words = tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), (GROUPS, 4))
    e = 4 * g[:, None] + tl.arange(0, 4)[None, :]
    inside = e < n
    x = tl.load(x_ptr + e, mask=inside)
    keep = words.to(tl.int64) >= threshold  # words are uint32: compare in int64, no sign trouble
    y = tl.where(keep, x.to(tl.float32) * scale, 0.0)
    tl.store(y_ptr + e, y.to(x.dtype), mask=inside)


@triton.jit
def dropout_rand(x_ptr, y_ptr, n, p, seed, BLOCK: tl.constexpr):
    # The Triton tutorial's seeded dropout ("low-memory dropout"): one tl.rand per element.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    x = tl.load(x_ptr + offs, mask=inside)
    keep = tl.rand(seed, offs) > p
    y = tl.where(keep, x.to(tl.float32) / (1 - p), 0.0)
    tl.store(y_ptr + offs, y.to(x.dtype), mask=inside)


def philox4x32_10(c, k):
    """Reference Philox4x32-10 (Random123), for checking the Triton kernel against the contract."""
    m0, m1, w0, w1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    c0, c1, c2, c3 = c
    k0, k1 = k
    for r in range(10):
        if r:
            k0, k1 = (k0 + w0) & 0xFFFFFFFF, (k1 + w1) & 0xFFFFFFFF
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & 0xFFFFFFFF, p1 & 0xFFFFFFFF, ((p0 >> 32) ^ c3 ^ k1) & 0xFFFFFFFF, p0 & 0xFFFFFFFF
    return c0, c1, c2, c3


def launch_randint4x(x, y, groups=512):
    n = x.numel()
    threshold = round(P * 2**32)
    grid = (triton.cdiv(triton.cdiv(n, 4), groups),)
    dropout_randint4x[grid](x, y, n, threshold, 1.0 / (1.0 - P), SEED, GROUPS=groups)


def launch_rand(x, y, block=1024):
    n = x.numel()
    dropout_rand[(triton.cdiv(n, block),)](x, y, n, P, SEED, BLOCK=block)


def check_contract():
    """The Triton kernel's keep decisions equal the contract's (seed, stream 0, index) words."""
    n = 4096
    x = torch.ones(n, device="cuda", dtype=torch.float32)
    y = torch.empty_like(x)
    launch_randint4x(x, y)
    got = (y != 0).cpu().tolist()
    threshold = round(P * 2**32)
    key = (SEED & 0xFFFFFFFF, SEED >> 32)
    for i in list(range(64)) + list(range(n - 64, n)):
        word = philox4x32_10((i // 4, 0, 0, 0), key)[i % 4]
        if got[i] != (word >= threshold):
            return False
    return True


def graphed(fn, reps):
    """`reps` calls of fn captured in one CUDA graph (warmed up on a side stream first, as capture
    requires), returned as a replay function; None where capture fails."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(reps):
                fn()
        torch.cuda.synchronize()
        return graph.replay
    except Exception as e:  # fall back to eager launches, and say so in the row
        print(f"  CUDA graph capture failed ({type(e).__name__}: {e}); timing eager launches", flush=True)
        torch.cuda.synchronize()
        return None


def time_cuda(fn, budget_ms, min_samples=5, max_samples=30):
    """Median ms of one call: CUDA events around `reps` calls (one graph replay, or back-to-back
    eager launches), reps sized to about 2 ms. Returns (ms, samples, reps, method)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    once = max(start.elapsed_time(end), 1e-3)
    reps = max(1, min(1000, round(2.0 / once)))
    replay = graphed(fn, reps)
    method = "cuda graph" if replay else "eager"
    if replay is None:
        def replay():
            for _ in range(reps):
                fn()
    replay()
    torch.cuda.synchronize()
    start.record()
    replay()
    end.record()
    end.synchronize()
    per_rep = max(start.elapsed_time(end), 1e-3)
    samples = max(min_samples, min(max_samples, int(budget_ms / per_rep)))
    times = []
    for _ in range(samples):
        start.record()
        replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return statistics.median(times), samples, reps, method


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min", type=int, default=20)
    ap.add_argument("--max", type=int, default=28)
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--budget-ms", type=float, default=300)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--ours", help="the WebGPU suite's JSON from the same machine, for the comparison table")
    ap.add_argument("--md", help="Markdown file for the comparison table")
    args = ap.parse_args()

    gpu = torch.cuda.get_device_name()
    errors = []
    try:
        contract_ok = check_contract()
    except Exception as e:
        contract_ok = None
        errors.append(f"contract check: {type(e).__name__}: {e}")
    print(f"{gpu}: torch {torch.__version__}, triton {triton.__version__}; Triton mask == contract words: {contract_ok}", flush=True)
    rows = []

    def save():
        # Rewritten after every size, so a timeout keeps the sizes already measured.
        result = {"gpu": gpu, "torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda, "p": P,
                  "timing": "CUDA events around many calls in one CUDA graph replay (per row: method), median",
                  "triton_matches_contract": contract_ok, "errors": errors, "rows": rows}
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        return result

    for log2 in range(args.min, args.max + 1, args.step):
        n = 2**log2
        for dtype in (torch.float32, torch.float16):
            x = torch.randn(n, device="cuda", dtype=dtype)
            y = torch.empty_like(x)
            out, mask = torch.ops.aten.native_dropout(x, P, True)
            impls = {
                "torch.copy": lambda: y.copy_(x),
                "torch.dropout": lambda: torch.nn.functional.dropout(x, P, training=True),
                "torch.dropout_backward": lambda: torch.ops.aten.native_dropout_backward(x, mask, 1.0 / (1.0 - P)),
                "triton.randint4x": lambda: launch_randint4x(x, y),
                "triton.rand": lambda: launch_rand(x, y),
            }
            for name, fn in impls.items():
                try:
                    ms, samples, reps, method = time_cuda(fn, args.budget_ms)
                except Exception as e:  # one failing implementation must not lose the others
                    errors.append(f"{name} {dtype} 2^{log2}: {type(e).__name__}: {e}")
                    print(errors[-1], flush=True)
                    continue
                moved = 2 * x.element_size() + (1 if name.startswith("torch.dropout") else 0)  # + the bool mask
                row = {"impl": name, "dtype": str(dtype).replace("torch.", ""), "log2": log2, "n": n, "ms": ms,
                       "ns_per_element": ms * 1e6 / n, "gb_per_s": moved * n / (ms * 1e6), "samples": samples, "reps": reps, "method": method}
                rows.append(row)
                print(f"2^{log2} {row['dtype']:8} {name:24} {ms * 1e3:10.1f} us  {row['gb_per_s']:7.0f} GB/s  ({method})", flush=True)
            del x, y, out, mask, impls
            torch.cuda.empty_cache()
        save()

    result = save()
    if args.ours and args.md:
        # A suite cut short leaves only its per-op partial file (<name>.partial.json).
        ours = args.ours if os.path.exists(args.ours) else args.ours[: -len(".json")] + ".partial.json"
        if not os.path.exists(ours):
            print(f"no comparison table: {args.ours} was not written (see log.txt)", flush=True)
            return 1
        write_comparison(result, ours, args.md)
    return 1 if errors else 0


def write_comparison(result, ours_path, md_path):
    with open(ours_path) as f:
        ours = json.load(f)
    by = {(r["impl"], r["dtype"], r["log2"]): r for r in result["rows"]}
    ours_cells = {}
    for op in ours["ops"]:
        for c in op["cells"]:
            ours_cells[(op["id"], c["log2"])] = c
    lines = [f"# Dropout on {result['gpu']}: webgpu-dropout (Dawn/Vulkan) vs PyTorch and Triton (CUDA)", "",
             f"torch {result['torch']}, triton {result['triton']}, CUDA {result['cuda']}; p = {result['p']}; "
             f"WebGPU adapter: {ours['adapter']['name']}; commit {ours['commit']}{' (suite cut short: the ops it finished)' if ours.get('partial') else ''}. "
             f"Triton randint4x mask equals the contract's words: {result['triton_matches_contract']}.", "",
             "Median time of one call (µs). 'x torch' = torch time / ours (> 1: ours is faster per element).", "",
             "Memory kept between forward and backward, per element: torch keeps its 1-byte bool mask; ours keeps "
             "nothing when the backward regenerates the mask ('ours fwd', 'ours bwd'), or 1/8 byte with the bit mask "
             "('ours fwd+mask', 'ours bwd from bits'). torch's forward also writes its mask, so 'ours fwd+mask' is the "
             "like-for-like forward and 'ours bwd from bits' the like-for-like backward (both read a stored mask).", ""]
    for dtype, ours_dtype in (("float32", "f32"), ("float16", "f16")):
        lines += [f"## {dtype}", "",
                  "| elements | ours fwd | ours fwd of copy | ours fwd+mask | ours bwd | ours bwd from bits | torch fwd | torch bwd | triton randint4x | triton rand | torch copy | x torch fwd | x torch bwd | x torch bwd (from bits) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for log2 in sorted({r["log2"] for r in result["rows"]}):
            fwd = ours_cells.get((f"dropout.forward.{ours_dtype}", log2))
            bwd = ours_cells.get((f"dropout.backward.{ours_dtype}", log2))
            fwd_mask = ours_cells.get((f"dropout.forward+mask.{ours_dtype}", log2))
            bwd_bits = ours_cells.get((f"dropout.backward+mask.{ours_dtype}", log2))
            t = {k: by.get((k, dtype, log2)) for k in ("torch.dropout", "torch.dropout_backward", "triton.randint4x", "triton.rand", "torch.copy")}
            us = lambda r, key="ms": f"{r[key] * 1e3:.1f}" if r else "-"
            ours_us = lambda c: f"{c['ns'] / 1e3:.1f}" if c else "-"
            ratio = lambda r, c: f"{r['ms'] * 1e6 / c['ns']:.2f}" if r and c else "-"
            of_copy = f"{fwd['ofCopy'] * 100:.0f}%" if fwd and fwd.get("ofCopy") else "-"
            lines.append(f"| 2^{log2} | {ours_us(fwd)} | {of_copy} | {ours_us(fwd_mask)} | {ours_us(bwd)} | {ours_us(bwd_bits)} | {us(t['torch.dropout'])} | {us(t['torch.dropout_backward'])} | "
                         f"{us(t['triton.randint4x'])} | {us(t['triton.rand'])} | {us(t['torch.copy'])} | "
                         f"{ratio(t['torch.dropout'], fwd)} | {ratio(t['torch.dropout_backward'], bwd)} | {ratio(t['torch.dropout_backward'], bwd_bits)} |")
        lines.append("")
    lines += comparison_targets(by, ours_cells, sorted({r["log2"] for r in result["rows"]}))
    lines.append("")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


# The GPU targets judged against the peers (bench/run.ts judges the "of copy" ones): (label, peer
# impl, our op, goal for peer time / our time, sizes it applies to).
PEER_TARGETS = (
    ("forward >= 1.1x torch forward", "torch.dropout", "dropout.forward", 1.1, lambda k: k >= 24),
    ("backward (mask regenerated) >= 1.0x torch backward", "torch.dropout_backward", "dropout.backward", 1.0, lambda k: k >= 24),
    ("backward from bits >= 1.0x torch backward", "torch.dropout_backward", "dropout.backward+mask", 1.0, lambda k: k >= 24),
    ("forward >= 0.95x Triton randint4x (the same masks, CUDA)", "triton.randint4x", "dropout.forward", 0.95, lambda k: k >= 24),
    ("forward >= 1.0x torch forward at 2^20 and 2^22", "torch.dropout", "dropout.forward", 1.0, lambda k: k in (20, 22)),
)


def comparison_targets(by, ours_cells, sizes):
    lines = ["## Targets against the peers", "", "| dtype | elements | target | peer / ours | met |", "| --- | --- | --- | --- | --- |"]
    for dtype, ours_dtype in (("float32", "f32"), ("float16", "f16")):
        for label, impl, op, goal, applies in PEER_TARGETS:
            for log2 in (k for k in sizes if applies(k)):
                r, c = by.get((impl, dtype, log2)), ours_cells.get((f"{op}.{ours_dtype}", log2))
                if not r or not c:
                    lines.append(f"| {dtype} | 2^{log2} | {label} | not measured | n/a |")
                    continue
                x = r["ms"] * 1e6 / c["ns"]
                lines.append(f"| {dtype} | 2^{log2} | {label} | {x:.2f} | {'yes' if x >= goal else '**no**'} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
