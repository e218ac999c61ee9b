"""Tests of the inverse autoregressive flow posterior (vae/flows.py)."""

import math
import os
import tempfile

import numpy as np
import tensorflow as tf

from vae import flows
from vae import models

# A two-step IAF posterior on a 2-d latent space of a tiny MLP VAE.
_IAF_MLP = models.ModelConfig(
    architecture="mlp",
    image_shape=(4,),
    latent_dim=2,
    hidden_units=(5,),
    posterior_flow="iaf",
    flow_steps=2,
    flow_hidden_units=(6,),
)


def _randomise(module, seed):
    """Replaces every variable with a random value, so no step is near the
    identity and a wrong log-determinant could not pass by accident."""
    rng = np.random.default_rng(seed)
    for variable in module.trainable_variables:
        variable.assign(rng.normal(scale=0.7, size=variable.shape))


def test_log_det_is_the_autodiff_jacobians():
    # Three steps: both variable orderings, and a sum over steps.
    flow = flows.InverseAutoregressiveFlow(
        latent_dim=3, context_dim=2, num_steps=3, hidden_units=(8,)
    )
    _randomise(flow, 3)
    z = tf.constant(np.random.default_rng(0).normal(size=(4, 3)), tf.float32)
    context = tf.constant(np.random.default_rng(1).normal(size=(4, 2)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        outputs, log_det = flow(z, context)
    jacobian = tape.batch_jacobian(outputs, z).numpy()  # [4, 3, 3]
    _, expected = np.linalg.slogdet(jacobian.astype(np.float64))
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-4, atol=1e-4)
    # Autoregressive in the input: each step's Jacobian is triangular, and
    # the flow is not the identity.
    assert np.abs(outputs.numpy() - z.numpy()).max() > 1e-2


def test_flow_posterior_log_density_is_base_less_log_det():
    model = models.VAE(_IAF_MLP)
    _randomise(model.flow, 3)
    assert not model.has_analytic_kl
    images = tf.constant([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    posterior = model.encode(images)
    noise = tf.constant(np.random.default_rng(4).normal(size=(3, 2, 2)), tf.float32)
    latents, log_q = model.posterior_latents(posterior, noise)
    loc = posterior.loc.numpy()
    scale = posterior.scale.diag_part().numpy()
    base = loc + scale * noise.numpy()
    log_base = np.sum(
        -0.5 * math.log(2 * math.pi) - np.log(scale) - 0.5 * noise.numpy() ** 2, axis=-1
    )
    context = np.concatenate([loc, np.log(scale)], axis=-1)
    with tf.GradientTape() as tape:
        base_tensor = tf.constant(base.reshape(6, 2), tf.float32)
        tape.watch(base_tensor)
        flowed, _ = model.flow(
            base_tensor,
            tf.constant(np.broadcast_to(context, (3, 2, 4)).reshape(6, 4), tf.float32),
        )
    jacobian = tape.batch_jacobian(flowed, base_tensor).numpy()
    _, log_det = np.linalg.slogdet(jacobian.astype(np.float64))
    np.testing.assert_allclose(
        latents.numpy().reshape(6, 2), flowed.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        log_q.numpy(), log_base - log_det.reshape(3, 2), rtol=1e-4, atol=1e-4
    )


def test_flow_variables_exist_at_construction_and_train():
    model = models.VAE(_IAF_MLP)
    flow_variables = model.flow.trainable_variables
    assert flow_variables  # Built before any call.
    assert all(any(v is w for w in model.trainable_variables) for v in flow_variables)
    images = tf.constant([[0.0, 1.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        terms = model.importance_terms(images, noise=tf.ones([2, 1, 2]))
        loss = -tf.reduce_sum(terms.log_weights())
    gradients = tape.gradient(loss, flow_variables)
    assert all(g is not None for g in gradients)


def test_flow_model_checkpoint_round_trip():
    model = models.VAE(_IAF_MLP)
    _randomise(model, 5)
    path = tf.train.Checkpoint(model=model).save(os.path.join(tempfile.mkdtemp(), "ckpt"))
    restored = models.VAE(_IAF_MLP)
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    for a, b in zip(model.trainable_variables, restored.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
