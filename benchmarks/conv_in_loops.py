"""Convolutions inside loops: XLA's convolution against shifted matrix products (`eqdd.denoisers.
convolution.convolve`), called plainly and from a `lax.scan` as the samplers call their networks.

    python benchmarks/conv_in_loops.py                   # the WaveNet's block convolution, 16 calls
    python benchmarks/conv_in_loops.py --calls 64 --length 4096

Prints a table: milliseconds per call for each form, plain and in a scan, and the ratios measured in
the same run.
"""

import argparse
import sys
from pathlib import Path

import equinox as eqx
import jax

from eqdd.denoisers.convolution import convolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import seconds_per_call  # noqa: E402


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=64, help="input channels (default: %(default)s)")
    parser.add_argument("--length", type=int, default=2048, help="samples (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=4, help="clips per call (default: %(default)s)")
    parser.add_argument("--dilation", type=int, default=4, help="dilation (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=16, help="calls per measurement (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="best of (default: %(default)s)")
    args = parser.parse_args(argv)
    keys = jax.random.split(jax.random.PRNGKey(0))
    channels = args.channels
    conv = eqx.nn.Conv1d(
        channels, 2 * channels, 3, dilation=args.dilation, padding=args.dilation, key=keys[0]
    )
    x = jax.random.normal(keys[1], (args.batch, channels, args.length))
    forms = {
        "XLA convolution": lambda h: jax.vmap(conv)(h),
        "shifted products": jax.vmap(lambda h: convolve(conv, h)),
    }
    rows = {}
    for name, form in forms.items():
        plain = jax.jit(form)

        def body(h, _, form=form):
            return h + 1e-3 * form(h)[:, :channels], None

        looped = jax.jit(lambda h, body=body: jax.lax.scan(body, h, None, length=args.calls)[0])
        one = seconds_per_call(plain, (x,), repeats=args.repeats)
        loop = seconds_per_call(looped, (x,), repeats=args.repeats) / args.calls
        rows[name] = (one, loop)
    print(
        f"width-3 convolution, {channels} -> {2 * channels} channels, dilation {args.dilation}, "
        f"{args.batch} x {args.length} samples; {args.calls} calls in the scan; best of {args.repeats}"
    )
    print(f"{'form':>18} | {'plain ms/call':>13} | {'in a scan ms/call':>17} | {'scan / plain':>12}")
    print("-" * 70)
    for name, (one, loop) in rows.items():
        print(f"{name:>18} | {one * 1e3:13.2f} | {loop * 1e3:17.2f} | {loop / one:11.1f}x")
    (conv_plain, conv_loop), (shift_plain, shift_loop) = rows.values()
    print(
        f"in a scan, shifted products are {conv_loop / shift_loop:.1f}x faster than XLA's convolution; "
        f"plainly, {conv_plain / shift_plain:.2f}x"
    )
    return {
        "conv_plain": conv_plain,
        "conv_loop": conv_loop,
        "shift_plain": shift_plain,
        "shift_loop": shift_loop,
    }


if __name__ == "__main__":
    main()
