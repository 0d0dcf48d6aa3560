"""The image U-Net: shapes (odd sizes too), the flat form, and what its inputs change."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from eqdd.denoisers.unet import UNet

SHAPE = (5, 3, 2)  # odd height and width, two channels
D = 5 * 3 * 2


def _unet(num_stages=1, num_classes=11):
    return UNet(SHAPE, 12, num_classes, 16, 1, D * num_stages, num_stages, key=jax.random.PRNGKey(0))


def _perturbed(model):
    """The model with every parameter nudged, so that zero-initialised layers also pass signal."""
    params, static = eqx.partition(model, eqx.is_array)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    leaves = [leaf + 0.1 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys, strict=True)]
    return eqx.combine(jax.tree.unflatten(tree, leaves), static)


def test_image_and_flat_forms_agree_for_odd_sizes():
    model = _perturbed(_unet())
    image = jax.random.randint(jax.random.PRNGKey(2), SHAPE, 0, 12)
    revealed = image != 11
    logits = eqx.filter_jit(lambda m: m.image_logits(image, 3, revealed))(model)  # jitted: faster than eager
    assert logits.shape == (*SHAPE, 11) and jnp.isfinite(logits).all()
    flat = eqx.filter_jit(lambda m: m(image.reshape(-1), 3))(model)
    np.testing.assert_allclose(flat, logits.reshape(D, 11), rtol=1e-6)


def test_every_input_matters():
    model = _perturbed(_unet(num_stages=3))
    tokens = jax.random.randint(jax.random.PRNGKey(3), (D,), 0, 12)
    revealed = jnp.arange(D) % 2 == 0
    base = model(tokens, 4, revealed, 1)
    assert not np.allclose(base, model(tokens, 9, revealed, 1))  # the step
    assert not np.allclose(base, model(tokens, 4, ~revealed, 1))  # the mask channels
    assert not np.allclose(base, model(tokens, 4, revealed, 2))  # the stage channels
    assert not np.allclose(
        base[0], model(tokens.at[-1].set(0), 4, revealed, 1)[0]
    )  # far pixels, via attention


def test_a_fresh_network_starts_from_identity_blocks():
    # The last convolution of every ResBlock and the attention's output start at zero.
    model = _unet()
    for block in (*model.down, model.middle[0], model.middle[2], *model.up):
        assert not np.any(block.conv2.weight)
    assert not np.any(model.middle[1].out.weight)


def test_bad_inputs_are_refused():
    model = _unet()
    with pytest.raises(TypeCheckError):
        model(jnp.zeros(D, jnp.float32), 0)
    with pytest.raises(TypeCheckError):
        model.image_logits(jnp.zeros((5, 3, 2), jnp.int32), 0, jnp.zeros((5, 3, 3), bool))
    with pytest.raises(ValueError, match="multiple of 4"):
        UNet(SHAPE, 12, 11, 18, 1, D, key=jax.random.PRNGKey(0))
