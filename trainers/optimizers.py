"""Optimisers by name.

We use the Keras 2 optimisers from tf-keras (a dependency of TensorFlow
Probability anyway): they update plain `tf.Variable`s of `tf.Module`s, are
tracked by `tf.train.Checkpoint`, and aggregate gradients across replicas
under `tf.distribute` strategies, which a home-made optimiser would have to
reimplement.
"""

import math

import tf_keras

OPTIMIZER_NAMES = ("adam", "rmsprop", "sgd")


def check_settings(
    name: str, learning_rate: float, what: str = "The learning rate"
) -> None:
    """Raises ValueError unless `name` is an optimiser we make and
    `learning_rate` (the flag or field `what`) a positive finite number."""
    if name not in OPTIMIZER_NAMES:
        raise ValueError(
            f"Unknown optimizer {name!r}; expected one of {OPTIMIZER_NAMES}."
        )
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"{what} must be positive and finite, got {learning_rate}.")


def make_optimizer(name: str, learning_rate: float, cosine_decay_steps: int = 0):
    """A tf-keras optimiser with the library defaults besides the rate.

    Args:
      name: "adam" (beta1 0.9, beta2 0.999, epsilon 1e-7), "rmsprop" (rho 0.9,
        epsilon 1e-7, as Keras's "rmsprop" string) or "sgd".
      learning_rate: a positive step size.
      cosine_decay_steps: 0 keeps the rate constant; N > 0 lowers it along a
        half cosine from `learning_rate` to 0 over the optimiser's first N
        updates (Loshchilov and Hutter, 2017, without restarts). The schedule
        reads the optimiser's own update counter, which checkpoints hold, so a
        resumed run continues on the same curve.
    """
    check_settings(name, learning_rate)
    if cosine_decay_steps < 0:
        raise ValueError(
            f"cosine_decay_steps must be 0 (constant rate) or "
            f"positive, got {cosine_decay_steps}."
        )
    if cosine_decay_steps:
        learning_rate = tf_keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=cosine_decay_steps
        )
    if name == "adam":
        return tf_keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return tf_keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        return tf_keras.optimizers.SGD(learning_rate)
    raise ValueError(f"Unknown optimiser {name!r}; expected one of {OPTIMIZER_NAMES}.")
