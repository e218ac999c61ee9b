"""Small layer modules that the encoders, decoders and discriminators are built from.

Every layer is a `tf.Module` in the Sonnet 2 style: the constructor is told its input
size explicitly, so all variables exist as soon as the module is built (never lazily on
the first call), and every public method runs inside the module's name scope. Layers
whose behaviour differs between training and evaluation (`BatchNorm`, `Dropout`) take an
explicit keyword `is_training`; the others accept it and ignore it.

Images are NHWC: `[batch, height, width, channels]`.

Weights use Glorot-uniform initialisation and biases start at zero, as in Keras, so a
network built here has the same parameter count and the same starting distribution as
its Keras reference model. Initial values come from `tf.random`, so
`tf.random.set_seed` makes construction reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import inspect
import math
from typing import Any

import tensorflow as tf

ActivationFn = Callable[[tf.Tensor], tf.Tensor]

_ACTIVATIONS: dict[str, ActivationFn] = {
    "relu": tf.nn.relu,
    "elu": tf.nn.elu,
    # Slope 0.2 is tf.nn.leaky_relu's default and the usual choice in GAN discriminators.
    "leaky_relu": tf.nn.leaky_relu,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "linear": tf.identity,
}

ACTIVATION_NAMES = tuple(_ACTIVATIONS)
PADDINGS = ("SAME", "VALID")


def get_activation(name: str | ActivationFn | None) -> ActivationFn:
    """Returns the activation function called `name`.

    Args:
        name: one of `ACTIVATION_NAMES` ("relu", "elu", "leaky_relu", "tanh", "sigmoid",
            "linear"), None (same as "linear"), or a callable, which is returned as is.

    Returns:
        A function mapping a tensor to a tensor of the same shape.

    Raises:
        ValueError: if `name` is not a known activation name, None or a callable.
    """
    if name is None:
        return tf.identity
    if callable(name):
        return name
    if isinstance(name, str) and name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    raise ValueError(
        f"Unknown activation {name!r}: expected one of {', '.join(ACTIVATION_NAMES)}, "
        "or None for no activation."
    )


def _is_int(value: Any) -> bool:
    # bool is a subclass of int, but True is never a sensible layer size.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive(value: Any, what: str) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}.")
    return value


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    """Turns an int or a pair of ints into a pair of positive ints."""
    pair = (value, value) if _is_int(value) else tuple(value)
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"{what} must be a positive integer or a pair of positive integers, "
            f"got {value!r}."
        )
    return pair


def _check_padding(padding: str) -> str:
    normalized = padding.upper() if isinstance(padding, str) else padding
    if normalized not in PADDINGS:
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
    return normalized


# Dtypes a layer computes in: float32, or bfloat16 under mixed precision
# (variables stay float32 and are cast to the input's dtype where used).
COMPUTE_DTYPES = ("float32", "bfloat16")


def as_floating(x) -> tf.Tensor:
    """`x` as a tensor in the dtype it will be computed in: unchanged when it
    is already float32 or bfloat16, float32 otherwise (integers, numpy
    arrays, Python numbers)."""
    x = tf.convert_to_tensor(x)
    if x.dtype.name in COMPUTE_DTYPES:
        return x
    return tf.cast(x, tf.float32)


def _check_last_dimension(
    x: tf.Tensor, expected: int, module: tf.Module, what: str
) -> None:
    """Fails with a readable message instead of a deep TensorFlow shape error."""
    actual = x.shape[-1] if x.shape.rank else None
    if actual is not None and actual != expected:
        raise ValueError(
            f"{module.name} was built for inputs with {expected} {what} in the last "
            f"dimension, but got a tensor of shape {x.shape.as_list()}."
        )


def _glorot_uniform(shape: Sequence[int], fan_in: int, fan_out: int) -> tf.Tensor:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tf.random.uniform(shape, -limit, limit, dtype=tf.float32)


def conv_output_size(input_size: int, kernel_size: int, stride: int, padding: str) -> int:
    """Output length of a convolution along one spatial axis (TF and Keras convention).

    Args:
        input_size: input length along the axis.
        kernel_size: kernel length along the axis.
        stride: stride along the axis.
        padding: "SAME" (output `ceil(input / stride)`) or "VALID"
            (output `floor((input - kernel) / stride) + 1`).

    Returns:
        The output length; for VALID it is <= 0 when the kernel does not fit the input.
    """
    if _check_padding(padding) == "SAME":
        return -(-input_size // stride)
    return (input_size - kernel_size) // stride + 1


def conv_transpose_output_size(
    input_size: int, kernel_size: int, stride: int, padding: str
) -> int:
    """Output length of a transposed convolution along one axis, as Keras chooses it.

    Several output sizes convolve back down to the same input size, so a transposed
    convolution has to pick one; Keras picks `input * stride` for SAME and
    `input * stride + max(kernel - stride, 0)` for VALID, and so do we.

    Args:
        input_size: input length along the axis.
        kernel_size: kernel length along the axis.
        stride: stride along the axis.
        padding: "SAME" or "VALID".

    Returns:
        The output length.
    """
    if _check_padding(padding) == "SAME":
        return input_size * stride
    return input_size * stride + max(kernel_size - stride, 0)


class Dense(tf.Module):
    """Fully connected layer, `activation(x @ w + b)`."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        activation: str | ActivationFn | None = None,
        use_bias: bool = True,
        name: str | None = None,
    ):
        """Creates the weights `w` `[input_size, output_size]` and bias `b` `[output_size]`.

        Args:
            input_size: size of the last input dimension.
            output_size: number of output units.
            activation: activation name (see `get_activation`), callable, or None.
            use_bias: whether to add a bias (initialised to zero).
            name: module name.
        """
        super().__init__(name=name)
        self.input_size = _check_positive(input_size, "Dense input_size")
        self.output_size = _check_positive(output_size, "Dense output_size")
        self.activation = get_activation(activation)
        with self.name_scope:
            self.w = tf.Variable(
                _glorot_uniform([input_size, output_size], input_size, output_size),
                name="w",
            )
            self.b = tf.Variable(tf.zeros([output_size]), name="b") if use_bias else None

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Applies the layer.

        Args:
            x: float32 `[batch, input_size]`.
            is_training: unused; accepted so that every layer has the same signature.

        Returns:
            float32 `[batch, output_size]`.
        """
        del is_training  # Same output in training and evaluation.
        x = as_floating(x)
        _check_last_dimension(x, self.input_size, self, "features")
        outputs = tf.matmul(x, tf.cast(self.w, x.dtype))
        if self.b is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.b, x.dtype))
        return self.activation(outputs)


class _Convolution(tf.Module):
    """What a convolution and a transposed convolution share: checks, kernel, bias.

    Subclasses say how the kernel is laid out, how the spatial size changes and
    which op convolves; the rest, `activation(convolve(x, w) + b)`, is here.
    """

    _output_size = staticmethod(conv_output_size)

    def __init__(
        self,
        input_channels: int,
        filters: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "SAME",
        activation: str | ActivationFn | None = None,
        use_bias: bool = True,
        name: str | None = None,
    ):
        """Creates the kernel `w` and the bias `b`.

        Args:
            input_channels: number of input channels.
            filters: number of output channels.
            kernel_size: int or (height, width).
            stride: int or (height, width).
            padding: "SAME" or "VALID" (either case).
            activation: activation name (see `get_activation`), callable, or None.
            use_bias: whether to add a per-channel bias `b` `[filters]` (starts at zero).
            name: module name.
        """
        super().__init__(name=name)
        kind = type(self).__name__
        self.input_channels = _check_positive(input_channels, f"{kind} input_channels")
        self.filters = _check_positive(filters, f"{kind} filters")
        self.kernel_size = _pair(kernel_size, f"{kind} kernel_size")
        self.stride = _pair(stride, f"{kind} stride")
        self.padding = _check_padding(padding)
        self.activation = get_activation(activation)
        receptive_field = self.kernel_size[0] * self.kernel_size[1]
        kernel_in, kernel_out = self._kernel_channels(input_channels, filters)
        with self.name_scope:
            self.w = tf.Variable(
                _glorot_uniform(
                    [*self.kernel_size, kernel_in, kernel_out],
                    fan_in=receptive_field * kernel_in,
                    fan_out=receptive_field * kernel_out,
                ),
                name="w",
            )
            self.b = tf.Variable(tf.zeros([filters]), name="b") if use_bias else None

    @staticmethod
    def _kernel_channels(input_channels: int, filters: int) -> tuple[int, int]:
        """The kernel's last two axes."""
        return input_channels, filters

    def output_shape_for(self, input_hw: Sequence[int]) -> tuple[int, int]:
        """Returns the output `(height, width)` for inputs of spatial size `input_hw`."""
        return tuple(
            self._output_size(size, kernel, stride, self.padding)
            for size, kernel, stride in zip(input_hw, self.kernel_size, self.stride)
        )

    def _convolve(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Applies the layer.

        Args:
            x: float32 `[batch, height, width, input_channels]`.
            is_training: unused; accepted so that every layer has the same signature.

        Returns:
            float32 `[batch, out_height, out_width, filters]`, spatial size as given by
            `output_shape_for`.
        """
        del is_training  # Same output in training and evaluation.
        x = as_floating(x)
        _check_last_dimension(x, self.input_channels, self, "channels")
        outputs = self._convolve(x, tf.cast(self.w, x.dtype))
        if self.b is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.b, x.dtype))
        return self.activation(outputs)


class Conv2D(_Convolution):
    """2-D convolution over NHWC images, `activation(conv2d(x, w) + b)`.

    The kernel `w` is `[kernel_h, kernel_w, input_channels, filters]`.
    """

    def _convolve(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d(x, kernel, strides=[1, *self.stride, 1], padding=self.padding)


class Conv2DTranspose(_Convolution):
    """Transposed 2-D convolution ("deconvolution") over NHWC images.

    The output spatial size follows Keras' `Conv2DTranspose` (see
    `conv_transpose_output_size`): with SAME padding and stride 2, 7 -> 14 -> 28.
    The kernel `w` is `[kernel_h, kernel_w, filters, input_channels]` (output channels
    before input channels), the layout `tf.nn.conv2d_transpose` expects and Keras
    stores. Keras takes the Glorot fans from that stored shape, whose "input" axis is
    the filters axis; the limit only depends on their sum, so it agrees. Inputs need
    a height and width known statically.
    """

    _output_size = staticmethod(conv_transpose_output_size)

    @staticmethod
    def _kernel_channels(input_channels: int, filters: int) -> tuple[int, int]:
        return filters, input_channels

    def _convolve(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        if x.shape.rank != 4 or x.shape[1] is None or x.shape[2] is None:
            raise ValueError(
                f"{self.name} needs a [batch, height, width, channels] input with a known "
                f"height and width, but got a tensor of shape {x.shape}."
            )
        out_height, out_width = self.output_shape_for((x.shape[1], x.shape[2]))
        # The batch size may be unknown while tracing, so it comes from the runtime shape.
        output_shape = tf.stack([tf.shape(x)[0], out_height, out_width, self.filters])
        outputs = tf.nn.conv2d_transpose(
            x, kernel, output_shape, strides=[1, *self.stride, 1], padding=self.padding
        )
        outputs.set_shape([x.shape[0], out_height, out_width, self.filters])
        return outputs


class MaxPool2D(tf.Module):
    """Max pooling over NHWC images with stride equal to the pool size; no variables.

    Windows do not overlap (as in Keras' `MaxPool2D` with its default strides). With
    SAME padding an odd size is rounded up, `ceil(size / pool)`, so the last window
    covers whatever pixels remain: 7 -> 4 -> 2 -> 1 for a pool of 2.
    """

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        padding: str = "SAME",
        name: str | None = None,
    ):
        """Stores the pool size and padding.

        Args:
            pool_size: int or (height, width); also the stride.
            padding: "SAME" or "VALID" (either case).
            name: module name.
        """
        super().__init__(name=name)
        self.pool_size = _pair(pool_size, "MaxPool2D pool_size")
        self.padding = _check_padding(padding)

    def output_shape_for(self, input_hw: Sequence[int]) -> tuple[int, int]:
        """Returns the output `(height, width)` for inputs of spatial size `input_hw`."""
        return tuple(
            conv_output_size(size, pool, pool, self.padding)
            for size, pool in zip(input_hw, self.pool_size)
        )

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Takes the maximum over each window, per channel.

        Args:
            x: float32 `[batch, height, width, channels]`.
            is_training: unused; accepted so that every layer has the same signature.

        Returns:
            float32 `[batch, out_height, out_width, channels]`, spatial size as given by
            `output_shape_for`.
        """
        del is_training  # Same output in training and evaluation.
        x = as_floating(x)
        return tf.nn.max_pool2d(
            x,
            ksize=[1, *self.pool_size, 1],
            strides=[1, *self.pool_size, 1],
            padding=self.padding,
        )


class UpSampling2D(tf.Module):
    """Nearest-neighbour upsampling of NHWC images; no variables.

    Every pixel becomes a `factor_h x factor_w` block of copies of itself, as in Keras'
    `UpSampling2D` with its default nearest interpolation.
    """

    def __init__(self, factor: int | Sequence[int] = 2, name: str | None = None):
        """Stores the factor.

        Args:
            factor: int or (height, width): how many times each pixel is repeated along
                each spatial axis.
            name: module name.
        """
        super().__init__(name=name)
        self.factor = _pair(factor, "UpSampling2D factor")

    def output_shape_for(self, input_hw: Sequence[int]) -> tuple[int, int]:
        """Returns the output `(height, width)` for inputs of spatial size `input_hw`."""
        return tuple(size * factor for size, factor in zip(input_hw, self.factor))

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Repeats each pixel.

        Args:
            x: float32 `[batch, height, width, channels]`.
            is_training: unused; accepted so that every layer has the same signature.

        Returns:
            float32 `[batch, height * factor_h, width * factor_w, channels]`.
        """
        del is_training  # Same output in training and evaluation.
        x = as_floating(x)
        # tf.repeat copies values exactly, whereas tf.image.resize would go through
        # its own coordinate rounding; repeating each axis is nearest neighbour at an
        # integer factor.
        x = tf.repeat(x, self.factor[0], axis=1)
        return tf.repeat(x, self.factor[1], axis=2)


class BatchNorm(tf.Module):
    """Batch normalisation over every axis but the last (the feature or channel axis).

    In training, inputs are normalised with the statistics of the current batch, and the
    moving statistics are updated as `moving = momentum * moving + (1 - momentum) * batch`
    (the Keras convention: `momentum=0.99` means slow updates). Outside training the
    moving statistics are used and nothing changes. The batch variance is the biased
    (divide by N) estimate, both for normalising and for the moving average, as in Sonnet
    and Keras 3.

    Variables, each `[num_features]`: `scale` (gamma, starts at 1) and `offset` (beta,
    starts at 0) are trainable; `moving_mean` (starts at 0) and `moving_variance` (starts
    at 1) are not, so optimisers never touch them while checkpoints still save them.
    """

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        name: str | None = None,
    ):
        """Creates the variables.

        Args:
            num_features: size of the last input dimension.
            momentum: decay of the moving averages, in [0, 1).
            epsilon: added to the variance before the square root; positive.
            name: module name.
        """
        super().__init__(name=name)
        self.num_features = _check_positive(num_features, "BatchNorm num_features")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"BatchNorm momentum must be in [0, 1), got {momentum!r}.")
        if not epsilon > 0.0:
            raise ValueError(f"BatchNorm epsilon must be positive, got {epsilon!r}.")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        with self.name_scope:
            self.scale = tf.Variable(tf.ones([num_features]), name="scale")
            self.offset = tf.Variable(tf.zeros([num_features]), name="offset")
            # Under a tf.distribute strategy each replica updates the moving
            # statistics from its own share of the batch; MEAN makes the
            # update the replicas' average (without an aggregation a
            # replica may not assign a mirrored variable at all). Alone on
            # one device it changes nothing.
            self.moving_mean = tf.Variable(
                tf.zeros([num_features]),
                trainable=False,
                name="moving_mean",
                aggregation=tf.VariableAggregation.MEAN,
            )
            self.moving_variance = tf.Variable(
                tf.ones([num_features]),
                trainable=False,
                name="moving_variance",
                aggregation=tf.VariableAggregation.MEAN,
            )

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool) -> tf.Tensor:
        """Normalises `x`.

        Args:
            x: float32 `[batch, ..., num_features]`, for example `[batch, features]` or
                `[batch, height, width, channels]`.
            is_training: if True, use the batch statistics and update the moving
                averages; if False, use the moving averages.

        Returns:
            float32 tensor with the shape of `x`.
        """
        x = as_floating(x)
        _check_last_dimension(x, self.num_features, self, "features")
        compute_dtype = x.dtype
        # Statistics and normalisation in float32 whatever the compute dtype:
        # bfloat16's 8-bit mantissa is too coarse for a variance.
        x = tf.cast(x, tf.float32)
        if is_training:
            mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank - 1)))
            decay = 1.0 - self.momentum
            self.moving_mean.assign_sub(decay * (self.moving_mean - mean))
            self.moving_variance.assign_sub(decay * (self.moving_variance - variance))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return tf.cast(
            tf.nn.batch_normalization(
                x,
                mean,
                variance,
                offset=self.offset,
                scale=self.scale,
                variance_epsilon=self.epsilon,
            ),
            compute_dtype,
        )


class Dropout(tf.Module):
    """Inverted dropout, with no variables.

    In training each unit is zeroed with probability `rate` and the survivors are scaled
    by `1 / (1 - rate)`, so the expected value is unchanged; otherwise the input passes
    through untouched.
    """

    def __init__(self, rate: float, name: str | None = None):
        """Stores the rate.

        Args:
            rate: probability of dropping a unit, in [0, 1).
            name: module name.
        """
        super().__init__(name=name)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not 0 <= rate < 1
        ):
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}.")
        self.rate = float(rate)

    @tf.Module.with_name_scope
    def __call__(
        self,
        x: tf.Tensor,
        *,
        is_training: bool,
        seed: tf.Tensor | Sequence[int] | None = None,
    ) -> tf.Tensor:
        """Applies dropout.

        Args:
            x: float32 tensor of any shape.
            is_training: drop units only when True.
            seed: optional stateless seed, an integer `[2]` tensor or pair; the same seed
                gives the same mask. None draws from TensorFlow's stateful generator.

        Returns:
            float32 tensor with the shape of `x`.
        """
        x = as_floating(x)
        if not is_training or self.rate == 0.0:
            return x
        if seed is None:
            return tf.nn.dropout(x, rate=self.rate)
        return tf.nn.experimental.stateless_dropout(x, rate=self.rate, seed=seed)


class Flatten(tf.Module):
    """Reshapes `[batch, d1, d2, ...]` to `[batch, d1 * d2 * ...]`; no variables."""

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Flattens all but the batch axis.

        Args:
            x: tensor `[batch, ...]` whose non-batch dimensions are known statically.
            is_training: unused.

        Returns:
            Tensor `[batch, prod(x.shape[1:])]`.
        """
        del is_training
        x = tf.convert_to_tensor(x)
        # A static size keeps the following layers' shapes fully known while tracing.
        return tf.reshape(x, [-1, math.prod(x.shape[1:])])


class Reshape(tf.Module):
    """Reshapes `[batch, prod(output_shape)]` to `[batch, *output_shape]`; no variables."""

    def __init__(self, output_shape: Sequence[int], name: str | None = None):
        """Stores the target shape.

        Args:
            output_shape: shape of one example after reshaping (no batch axis).
            name: module name.
        """
        super().__init__(name=name)
        self.output_shape = tuple(int(size) for size in output_shape)

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Reshapes each example.

        Args:
            x: tensor `[batch, ...]` with `prod(output_shape)` elements per example.
            is_training: unused.

        Returns:
            Tensor `[batch, *output_shape]`.
        """
        del is_training
        return tf.reshape(x, [-1, *self.output_shape])


def _takes_is_training(layer: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(layer).parameters
    except (TypeError, ValueError):  # Some built-in callables have no signature.
        return False
    return "is_training" in parameters


def _takes_seed(layer: Callable[..., Any]) -> bool:
    try:
        return "seed" in inspect.signature(layer).parameters
    except (TypeError, ValueError):
        return False


class Sequential(tf.Module):
    """Applies layers one after the other.

    Layers may be any callables mapping a tensor to a tensor (modules from this file,
    `tf.nn.relu`, a lambda); `is_training` is passed on to those whose call signature has
    an `is_training` parameter.
    """

    def __init__(
        self, layers: Sequence[Callable[..., tf.Tensor]], name: str | None = None
    ):
        """Stores the layers.

        Args:
            layers: the layers, applied first to last. Modules among them are tracked, so
                their variables appear in this module's `variables`.
            name: module name.
        """
        super().__init__(name=name)
        self.layers = list(layers)
        # Decided once here rather than on every call: signatures do not change.
        self._passes_is_training = [_takes_is_training(layer) for layer in self.layers]
        self._passes_seed = [_takes_seed(layer) for layer in self.layers]

    @tf.Module.with_name_scope
    def __call__(
        self,
        x: tf.Tensor,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> tf.Tensor:
        """Applies the layers `start` to `stop` (default: all of them) in order.

        Args:
            x: input of layer `start`.
            is_training: passed to the layers that take it.
            seed: optional stateless seed `[2]` for the random layers (dropout); layer
                `i` gets `stateless_fold_in(seed, i)`, so two dropout layers never share
                a mask. None: they draw from TensorFlow's stateful generator.
            start, stop: a slice of the layers, so a caller can insert something (a
                label) between two of them; seeds still follow the layers' indices.

        Returns:
            Output of the last layer applied (`x` itself when there is none).
        """
        stop = len(self.layers) if stop is None else stop
        for index in range(start, stop):
            layer = self.layers[index]
            kwargs = {}
            if self._passes_is_training[index]:
                kwargs["is_training"] = is_training
            if self._passes_seed[index] and seed is not None:
                kwargs["seed"] = tf.random.experimental.stateless_fold_in(seed, index)
            x = layer(x, **kwargs)
        return x
