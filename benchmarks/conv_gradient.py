"""The transformer's depthwise convolution, forward and backward: its written-out gradient
(`eqdd.denoisers.transformer.depthwise_correlation`) against JAX's differentiation of the same
shifted sum, on the text8 default's shapes.

    python benchmarks/conv_gradient.py                     # batch 8 x 250 positions x 128 channels, width 7
    python benchmarks/conv_gradient.py --batch 16 --channels 192

Prints a table: milliseconds per forward-and-backward pass of each form (best of `--repeats`, each
the mean of `--calls` calls), the largest difference between their gradients, and the ratio
measured in the same run.
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from eqdd.denoisers.transformer import _shifted_sum, depthwise_correlation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scripts import seconds_per_call  # noqa: E402


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="sequences (default: %(default)s)")
    parser.add_argument("--length", type=int, default=250, help="positions (default: %(default)s)")
    parser.add_argument("--channels", type=int, default=128, help="channels (default: %(default)s)")
    parser.add_argument("--width", type=int, default=7, help="odd filter width (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=50, help="calls per measurement (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="best of (default: %(default)s)")
    args = parser.parse_args(argv)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    h = jax.random.normal(keys[0], (args.batch, args.length, args.channels))
    kernel = jax.random.normal(keys[1], (args.channels, args.width))
    cotangent = jax.random.normal(keys[2], h.shape)

    def pass_of(correlation):
        def forward_backward(h, kernel, cotangent):
            out, pullback = jax.vjp(jax.vmap(correlation, (0, None)), h, kernel)
            return out, *pullback(cotangent)

        return jax.jit(forward_backward)

    forms = {"JAX's differentiation": pass_of(_shifted_sum), "written out": pass_of(depthwise_correlation)}
    inputs = (h, kernel, cotangent)
    times = {name: seconds_per_call(form, inputs, args.calls, args.repeats) for name, form in forms.items()}
    reference, written = (form(*inputs) for form in forms.values())
    difference = max(float(jnp.abs(a - b).max()) for a, b in zip(reference, written, strict=True))
    print(
        f"depthwise convolution of width {args.width}, {args.batch} x {args.length} x {args.channels}; "
        f"forward and backward; mean of {args.calls} calls, best of {args.repeats}"
    )
    print(f"{'gradient':>22} | {'ms/pass':>8}")
    print("-" * 33)
    for name, seconds in times.items():
        print(f"{name:>22} | {seconds * 1e3:8.3f}")
    autodiff, manual = times.values()
    print(f"written out: {autodiff / manual:.2f}x faster; largest difference in the outputs {difference:.1e}")
    return {"autodiff": autodiff, "written": manual, "difference": difference}


if __name__ == "__main__":
    main()
