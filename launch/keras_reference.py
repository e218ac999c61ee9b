"""The same models written the way Keras users write them, for the benchmark.

`launch/benchmark.py` measures the framework's training throughput against
what a researcher would otherwise write: a `keras.Model` subclass with a
custom `train_step`, compiled with Keras' defaults and driven by `fit`, as in
the Keras VAE and GAN examples. The networks here are built from the same
config objects as the framework's (`vae.models.ModelConfig`,
`vae.vaegan.VaeGanConfig`), layer for layer, with the same losses, optimiser
and batch size, so the two differ only in how the loop is run. The benchmark
prints both parameter counts, which must agree.

Nothing in the framework imports this module: it is a measuring stick.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from vae import models
from vae import vaegan

# vae.layers' "leaky_relu" slope; Keras' own default is 0.3.
_LEAKY_SLOPE = 0.2


def _activation(name: str | None):
    """A Keras activation argument, or a layer for leaky ReLU."""
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=_LEAKY_SLOPE)
    return keras.layers.Activation(name or "linear")


def make_optimizer(name: str, learning_rate: float):
    return {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[name](learning_rate=learning_rate)


def _with_label(inputs, labels):
    return inputs if labels is None else keras.layers.Concatenate()([inputs, labels])


def num_parameters(model) -> int:
    """Trainable weights of a `KerasVae` or `KerasVaeGan`'s networks, for
    comparison with `vae.models.num_parameters` of the framework's model."""
    return sum(
        int(math.prod(weight.shape))
        for network in model.networks
        for weight in network.trainable_weights
    )


# ------------------------------------------------------------------ VAE
def _dense_block(x, units: int, activation: str, config: models.ModelConfig):
    """Dense -> activation -> [BatchNorm] -> [Dropout], as vae.networks."""
    x = _activation(activation)(keras.layers.Dense(units)(x))
    if config.hidden_batch_norm:
        x = keras.layers.BatchNormalization(epsilon=1e-3)(x)
    if config.hidden_dropout_rate:
        x = keras.layers.Dropout(config.hidden_dropout_rate)(x)
    return x


def _vae_networks(config: models.ModelConfig):
    """Encoder and decoder as functional Keras models, mirroring
    `vae.networks`."""
    conditional = config.num_classes > 0
    images = keras.Input(config.image_shape)
    labels = keras.Input((config.num_classes,)) if conditional else None
    x = images
    if config.architecture == "mlp":
        x = _with_label(keras.layers.Flatten()(x), labels)
        for units in config.hidden_units:
            x = _dense_block(x, units, config.activation, config)
    else:
        if conditional and config.conditioning == "label_maps":
            planes = keras.layers.Reshape((1, 1, config.num_classes))(labels)
            planes = keras.layers.UpSampling2D(config.image_shape[:2])(planes)
            x = keras.layers.Concatenate()([x, planes])
        for filters, stride in zip(config.encoder_filters, config.encoder_strides):
            x = keras.layers.Conv2D(
                filters,
                config.encoder_kernel_size,
                stride,
                config.encoder_padding.lower(),
            )(x)
            x = _activation(config.activation)(x)
        x = keras.layers.Flatten()(x)
        if conditional and config.conditioning != "label_maps":
            x = _with_label(x, labels)
        for units in config.encoder_dense_units:
            x = _dense_block(x, units, config.activation, config)
    encoder_outputs = keras.layers.Dense(2 * config.latent_dim)(x)
    encoder = keras.Model([images, labels] if conditional else images, encoder_outputs)

    latent = keras.Input((config.latent_dim,))
    decoder_labels = keras.Input((config.num_classes,)) if conditional else None
    x = _with_label(latent, decoder_labels)
    activation = config.decoder_activation or config.activation
    if config.architecture == "mlp":
        for units in reversed(config.hidden_units):
            x = _dense_block(x, units, activation, config)
        x = keras.layers.Dense(math.prod(config.image_shape))(x)
        logits = keras.layers.Reshape(config.image_shape)(x)
    else:
        for units in config.decoder_dense_units:
            x = _dense_block(x, units, activation, config)
        upsampling = math.prod(config.decoder_strides)
        base = (
            config.image_shape[0] // upsampling,
            config.image_shape[1] // upsampling,
            config.decoder_base_channels,
        )
        x = _activation(activation)(keras.layers.Dense(math.prod(base))(x))
        x = keras.layers.Reshape(base)(x)
        for filters, stride in zip(config.decoder_filters, config.decoder_strides):
            x = keras.layers.Conv2DTranspose(
                filters, config.decoder_kernel_size, stride, "same"
            )(x)
            x = _activation(activation)(x)
        output_layer = (
            keras.layers.Conv2DTranspose
            if config.decoder_output == "conv_transpose"
            else keras.layers.Conv2D
        )
        logits = output_layer(
            config.image_shape[-1], config.decoder_kernel_size, 1, "same"
        )(x)
    decoder = keras.Model([latent, decoder_labels] if conditional else latent, logits)
    return encoder, decoder


class KerasVae(keras.Model):
    """A (conditional) VAE trained on the negative ELBO by `fit`.

    `fit` takes images, or `(images, one_hot_labels)` for a conditional
    model, in [0, 1]; the loss is the Bernoulli reconstruction term plus
    `beta` times the KL, analytic or a one-sample Monte Carlo estimate, both
    summed over dimensions and averaged over the batch.
    """

    def __init__(
        self, config: models.ModelConfig, *, beta: float, kl_estimator: str, **kwargs
    ):
        super().__init__(**kwargs)
        if config.likelihood != "bernoulli":
            raise ValueError("The Keras reference VAE is Bernoulli only.")
        self.encoder, self.decoder = _vae_networks(config)
        self.conditional = config.num_classes > 0
        self.beta = beta
        self.kl_estimator = kl_estimator
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.seed_generator = keras.random.SeedGenerator(0)

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def networks(self):
        return (self.encoder, self.decoder)

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.conditional:
            images, labels = data
            encoder_inputs, extra = [images, labels], [labels]
        else:
            images, encoder_inputs, extra = data, data, []
        with tf.GradientTape() as tape:
            loc, log_variance = tf.split(
                self.encoder(encoder_inputs, training=True), 2, axis=-1
            )
            noise = keras.random.normal(tf.shape(loc), seed=self.seed_generator)
            z = loc + tf.exp(0.5 * log_variance) * noise
            decoder_inputs = [z, *extra] if extra else z
            logits = self.decoder(decoder_inputs, training=True)
            reconstruction = tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits),
                axis=[1, 2, 3],
            )
            if self.kl_estimator == "analytic":
                kl = -0.5 * tf.reduce_sum(
                    1 + log_variance - tf.square(loc) - tf.exp(log_variance), axis=-1
                )
            else:  # log q(z|x) - log p(z) at the sample.
                kl = 0.5 * tf.reduce_sum(
                    tf.square(z) - tf.square(noise) - log_variance, axis=-1
                )
            loss = tf.reduce_mean(reconstruction + self.beta * kl)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


# -------------------------------------------------------------- VAE-GAN
def _vaegan_block(x, config: vaegan.VaeGanConfig, dropout: bool = True):
    if config.batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = _activation(config.activation)(x)
    if dropout and config.dropout_rate:
        x = keras.layers.Dropout(config.dropout_rate)(x)
    return x


def _vaegan_networks(config: vaegan.VaeGanConfig):
    """Encoder, decoder and discriminator of `vae.vaegan`, in Keras."""
    height, width, channels = config.image_shape
    images = keras.Input(config.image_shape)
    labels = keras.Input((config.num_classes,))

    # Dropout in the encoder and decoder as the config says.
    dropout = config.dropout_in_encoder_decoder

    def block(x):
        return _vaegan_block(x, config, dropout)

    x = keras.layers.Conv2D(config.encoder_filters[0], 3, 2, "same")(images)
    x = keras.layers.MaxPooling2D(2, padding="same")(block(x))
    x = keras.layers.Conv2D(config.encoder_filters[1], 3, 1, "same")(x)
    x = keras.layers.Flatten()(block(x))
    x = keras.layers.Concatenate()([x, labels])
    for units in config.encoder_dense_units:
        x = block(keras.layers.Dense(units)(x))
    encoder = keras.Model([images, labels], keras.layers.Dense(2 * config.latent_dim)(x))

    latent = keras.Input((config.latent_dim,))
    decoder_labels = keras.Input((config.num_classes,))
    base = (height // 4, width // 4, config.decoder_base_channels)
    first_kernel, second_kernel, output_kernel = config.decoder_kernel_sizes
    x = keras.layers.Concatenate()([latent, decoder_labels])
    for units in config.decoder_dense_units:
        x = block(keras.layers.Dense(units)(x))
    x = block(keras.layers.Dense(math.prod(base))(x))
    x = keras.layers.UpSampling2D(2)(keras.layers.Reshape(base)(x))
    x = keras.layers.Conv2D(config.decoder_filters[0], first_kernel, 1, "same")(x)
    x = block(x)
    x = keras.layers.Conv2D(config.decoder_filters[1], second_kernel, 1, "same")(x)
    x = block(keras.layers.UpSampling2D(2)(x))
    decoder = keras.Model(
        [latent, decoder_labels],
        keras.layers.Conv2D(channels, output_kernel, 1, "same")(x),
    )

    critic_images = keras.Input(config.image_shape)
    critic_labels = keras.Input((config.num_classes,))
    first_kernel, second_kernel, similarity_kernel = config.discriminator_kernel_sizes
    x = keras.layers.Conv2D(config.discriminator_filters[0], first_kernel, 2, "same")(
        critic_images
    )
    x = _vaegan_block(keras.layers.MaxPooling2D(2, padding="same")(x), config)
    planes = keras.layers.Reshape((1, 1, config.num_classes))(critic_labels)
    planes = keras.layers.UpSampling2D(tuple(x.shape[1:3]))(planes)
    x = keras.layers.Concatenate()([x, planes])
    x = keras.layers.Conv2D(config.discriminator_filters[1], second_kernel, 1, "same")(x)
    x = _vaegan_block(keras.layers.MaxPooling2D(2, padding="same")(x), config)
    features = keras.layers.Conv2D(
        config.similarity_channels, similarity_kernel, 1, "same"
    )(x)
    x = keras.layers.Flatten()(_vaegan_block(features, config))
    logits = keras.layers.Dense(1)(x)
    discriminator = keras.Model([critic_images, critic_labels], [logits, features])
    return encoder, decoder, discriminator


def _cross_entropy(logits, target: float):
    return tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), target), logits=logits
    )


class KerasVaeGan(keras.Model):
    """The conditional VAE-GAN with the reference's step balancing, by `fit`.

    `fit` takes `(images, one_hot_labels)`. Each batch runs up to `d_steps`
    discriminator updates while L_GAN >= `d_threshold`, then up to
    `g_steps` encoder and decoder updates while L_GAN <= `g_threshold`,
    each with its own tape and optimiser, the losses of
    `trainers/vaegan.py` (Gaussian or sigmoid cross-entropy feature loss,
    L_GAN weighted 1, 1, 2, the optional pixel term, the minimax or
    non-saturating adversarial term of the decoder).
    """

    def __init__(
        self,
        config: vaegan.VaeGanConfig,
        objective: Any,
        optimizer: str,
        learning_rates: dict,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if config.num_classes == 0:
            raise ValueError("The Keras reference VAE-GAN is conditional.")
        (self.encoder, self.decoder, self.discriminator) = _vaegan_networks(config)
        self.objective = objective
        self.clip = config.log_variance_clip
        self.player_optimizers = {
            player: make_optimizer(optimizer, rate)
            for player, rate in learning_rates.items()
        }
        for player, optimizer_object in self.player_optimizers.items():
            optimizer_object.build(getattr(self, player).trainable_weights)
        self.gan_tracker = keras.metrics.Mean(name="gan")
        self.seed_generator = keras.random.SeedGenerator(0)

    @property
    def metrics(self):
        return [self.gan_tracker]

    @property
    def networks(self):
        return (self.encoder, self.decoder, self.discriminator)

    def _loss_terms(self, images, labels):
        loc, log_variance = tf.split(
            self.encoder([images, labels], training=True), 2, axis=-1
        )
        if self.clip:
            log_variance = tf.clip_by_value(log_variance, -self.clip, self.clip)
        noise = keras.random.normal(tf.shape(loc), seed=self.seed_generator)
        z = loc + tf.exp(0.5 * log_variance) * noise
        z_prior = keras.random.normal(tf.shape(loc), seed=self.seed_generator)
        reconstruction_logits = self.decoder([z, labels], training=True)
        reconstructions = tf.sigmoid(reconstruction_logits)
        real_weight, reconstruction_weight, prior_weight = self.objective.gan_weights
        real_logits, real_features = self.discriminator([images, labels], training=True)
        fake_logits, fake_features = self.discriminator(
            [reconstructions, labels], training=True
        )
        if prior_weight > 0:
            prior_images = tf.sigmoid(self.decoder([z_prior, labels], training=True))
            prior_logits, prior_features = self.discriminator(
                [prior_images, labels], training=True
            )
        else:  # Weighted by 0: not made, as in the framework.
            prior_logits = tf.zeros_like(real_logits)
        target = tf.stop_gradient(real_features)
        if self.objective.feature_loss == "gaussian":
            dis_llike = 0.5 * tf.reduce_sum(
                tf.square(fake_features - target), axis=[1, 2, 3]
            )
        else:
            dis_llike = tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=tf.sigmoid(target), logits=fake_features
                ),
                axis=[1, 2, 3],
            )
        total_weight = real_weight + reconstruction_weight + prior_weight
        gan = (
            real_weight * _cross_entropy(real_logits, 1.0)
            + reconstruction_weight * _cross_entropy(fake_logits, 0.0)
            + prior_weight * _cross_entropy(prior_logits, 0.0)
        ) / total_weight
        if self.objective.generator_loss == "minimax":
            adversarial = -gan
        elif self.objective.generator_loss == "non_saturating":
            adversarial = (
                reconstruction_weight * _cross_entropy(fake_logits, 1.0)
                + prior_weight * _cross_entropy(prior_logits, 1.0)
            ) / total_weight
        else:  # Mean feature matching on the prior-decoded images.
            adversarial = 0.5 * tf.reduce_sum(
                tf.square(
                    tf.reduce_mean(prior_features, axis=0)
                    - tf.reduce_mean(target, axis=0)
                )
            )
        pixel = tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(
                labels=images, logits=reconstruction_logits
            ),
            axis=[1, 2, 3],
        )
        prior = -0.5 * tf.reduce_sum(
            1 + log_variance - tf.square(loc) - tf.exp(log_variance), axis=-1
        )
        return {
            "prior": tf.reduce_mean(prior),
            "dis_llike": tf.reduce_mean(dis_llike),
            "pixel": tf.reduce_mean(pixel),
            "adversarial": tf.reduce_mean(adversarial),
            "gan": tf.reduce_mean(gan),
        }

    def _discriminator_update(self, images, labels):
        variables = self.discriminator.trainable_weights
        with tf.GradientTape() as tape:
            gan = self._loss_terms(images, labels)["gan"]
        self.player_optimizers["discriminator"].apply_gradients(
            zip(tape.gradient(gan, variables), variables)
        )
        return gan

    def _generator_update(self, images, labels, with_discriminator=False):
        """The encoder and decoder steps, and with `with_discriminator` (the
        simultaneous schedule) the discriminator's, from one forward pass."""
        players = {
            "encoder": self.encoder.trainable_weights,
            "decoder": self.decoder.trainable_weights,
        }
        if with_discriminator:
            players["discriminator"] = self.discriminator.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            terms = self._loss_terms(images, labels)
            pixel = self.objective.pixel_weight * terms["pixel"]
            losses = {
                "encoder": terms["prior"] + terms["dis_llike"] + pixel,
                "decoder": (
                    self.objective.gamma * terms["dis_llike"]
                    + pixel
                    + terms["adversarial"]
                ),
                "discriminator": terms["gan"],
            }
        gradients = {
            player: tape.gradient(losses[player], variables)
            for player, variables in players.items()
        }
        for player, variables in players.items():
            self.player_optimizers[player].apply_gradients(
                zip(gradients[player], variables)
            )
        return terms["gan"]

    def train_step(self, data):
        (images, labels), _, _ = keras.utils.unpack_x_y_sample_weight(data)
        objective = self.objective
        if objective.schedule == "simultaneous":
            gan = self._generator_update(images, labels, with_discriminator=True)
            self.gan_tracker.update_state(gan)
            return {"gan": self.gan_tracker.result()}
        # Keras does not run AutoGraph on train_step, so the balancing
        # loops are written as tf.while_loop.
        _, gan = tf.while_loop(
            lambda count, gan: tf.logical_and(
                count < objective.d_steps, gan >= objective.d_threshold
            ),
            lambda count, gan: (count + 1, self._discriminator_update(images, labels)),
            (tf.constant(0), tf.constant(float("inf"))),
        )
        _, gan = tf.while_loop(
            lambda count, gan: tf.logical_and(
                count < objective.g_steps, gan <= objective.g_threshold
            ),
            lambda count, gan: (count + 1, self._generator_update(images, labels)),
            (tf.constant(0), tf.constant(-1.0)),
        )
        self.gan_tracker.update_state(gan)
        return {"gan": self.gan_tracker.result()}
