"""Adversarial weight perturbation (train.awp_lambda > 0): the 1st place's AWP, for `kit train` under both Keras
backends, on one device or many, in any precision.

Source: `tf_utils.learners.AWP` (github.com/hoyso48/tf-utils), which the 1st place's notebook
(ISLR_1st_place_Hoyeol_Sohn.ipynb, cells 18-19) built as `AWP(model.input, model.output, delta=0.2, eps=0.,
start_step=15 x steps_per_epoch)`. From the start step on, each training step:
    g = the loss gradient at the weights w
    delta_i = lambda g_i / (||g_i|| + eps) per weight tensor (eps 0; 0 where g_i is 0: divide-no-nan)
    g' = the loss gradient at w + delta; the weights go back to w, and the optimizer applies g' to them
and the step's loss and metrics are those of the moved forward pass. Before the start step, Keras' plain step.
Both forward passes are training passes: each advances the dropout seeds and every layer's own step counter (the
conv_transformer's late dropout counts them, as the 1st place's did).

`with_awp(model, ...)` wraps a built functional model into `AWPModel`, which shares its layers and weights and
adds none: the weights file it saves is the plain model's, so export rebuilds the plain model from config.json
and loads them as before.

Where the kit departs, and why:
- The moved weights are never written into the variables: the second pass reads w + delta in their place
  (Keras' stateless call), so w comes back exactly rather than as w + delta - delta in float arithmetic, and no
  trainable variable is written outside the optimizer (which tf.distribute forbids in a replica's context).
- g is the gradient of the whole global batch on every replica count (summed over tf.distribute replicas; JAX's
  data parallelism computes it whole), so 1, 2 or 8 devices take the same step, as the kit's global batch promises.
- Under mixed_float16, g comes from the loss-scaled loss, like g': only its direction counts, and the scaled loss
  keeps small gradients from flushing to zero in float16. The start step counts the optimizer's steps (a
  LossScaleOptimizer does not count the steps it skips for an overflow; tf_utils counted every step).
"""

from __future__ import annotations

import keras
from keras import ops

from kit.errors import KitError


def perturbation(grads: list, awp_lambda: float, eps: float = 0.0) -> list:
    """delta_i = awp_lambda g_i / (||g_i|| + eps), 0 where that divides by 0 (tf_utils' divide_no_nan)."""
    return [ops.divide_no_nan(awp_lambda * g, ops.sqrt(ops.sum(ops.square(g))) + eps) for g in grads]


class AWPModel(keras.Model):
    """A functional model whose training step is AWP's from `awp_start_step` on (see the module docstring)."""

    def __init__(self, *args, awp_lambda: float = 0.2, awp_start_step: int = 0, awp_eps: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.awp_lambda, self.awp_start_step, self.awp_eps = float(awp_lambda), int(awp_start_step), float(awp_eps)

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        if keras.backend.backend() == "tensorflow":
            return self._tf_train_step(*args)
        raise KitError(f"train.awp_lambda: AWP has a training step for Keras' tensorflow and jax backends, not "
                       f"{keras.backend.backend()}: set KERAS_BACKEND=tensorflow or jax")

    # TensorFlow: Keras' TensorFlowTrainer.train_step, with the gradient taken at the moved weights.
    def _tf_train_step(self, data):
        import tensorflow as tf
        from keras.src.losses import loss as loss_module
        from keras.src.trainers.data_adapters import data_adapter_utils

        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        weights = self.trainable_weights
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = self.optimizer.scale_loss(loss)
        grads = _dense(tape.gradient(scaled, weights), weights)
        context = tf.distribute.get_replica_context()
        # Each replica holds its share of the gradient (the loss is divided by the replica count): the sum is the
        # whole batch's. Summed here, outside the cond, as collectives inside a branch would be.
        whole = context.all_reduce(tf.distribute.ReduceOp.SUM, grads) \
            if context is not None and context.num_replicas_in_sync > 1 else grads

        def moved():
            shifted = [ops.convert_to_tensor(w) + d
                       for w, d in zip(weights, perturbation(whole, self.awp_lambda, self.awp_eps))]
            with tf.GradientTape() as tape2:
                tape2.watch(shifted)
                with keras.StatelessScope(state_mapping=list(zip(weights, shifted))) as scope:
                    y_moved = self(x, training=True)
                loss_moved = self._compute_loss(x=x, y=y, y_pred=y_moved, sample_weight=sample_weight,
                                                training=True)
                scaled_moved = self.optimizer.scale_loss(loss_moved)
            for variable in self.non_trainable_variables:  # seeds, step counters, norm statistics
                value = scope.get_current_value(variable)
                if value is not None:
                    variable.assign(value)
            return _dense(tape2.gradient(scaled_moved, shifted), weights), loss_moved, y_moved

        if self.awp_start_step > 0:
            grads, loss, y_pred = tf.cond(self.optimizer.iterations >= self.awp_start_step, moved,
                                          lambda: (grads, loss, y_pred))
        else:
            grads, loss, y_pred = moved()
        self._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss),
                                        sample_weight=tf.shape(next(i for i in keras.tree.flatten(x)
                                                                    if i is not None))[0])
        self.optimizer.apply_gradients(zip(grads, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # JAX: Keras' JAXTrainer.train_step, stateless; the moved pass takes the state the first pass left.
    def _jax_train_step(self, state, data):
        import jax
        from keras.src.trainers.data_adapters import data_adapter_utils

        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)

        def loss_and_grads(weights, non_trainable):
            (_, (unscaled, y_pred, non_trainable, metrics)), grads = grad_fn(
                weights, non_trainable, metrics_variables, x, y, sample_weight, training=True,
                optimizer_variables=optimizer_variables)
            return grads, unscaled, y_pred, non_trainable, metrics

        first = loss_and_grads(trainable, non_trainable)

        def moved():
            delta = perturbation(first[0], self.awp_lambda, self.awp_eps)
            return loss_and_grads([w + d for w, d in zip(trainable, delta)], first[3])

        if self.awp_start_step > 0:
            with keras.StatelessScope(state_mapping=list(zip(self.optimizer.variables, optimizer_variables))):
                step = ops.convert_to_tensor(self.optimizer.iterations)
            grads, unscaled, y_pred, non_trainable, metrics_variables = jax.lax.cond(
                step >= self.awp_start_step, moved, lambda: first)
        else:
            grads, unscaled, y_pred, non_trainable, metrics_variables = moved()
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        logs, metrics_variables = self._update_metrics_variables(metrics_variables, unscaled, x, y, y_pred,
                                                                 sample_weight)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _dense(grads: list, weights: list) -> list:
    """Gradients as dense tensors, zeros for a weight the loss does not reach (tf_utils' zeros_like + g)."""
    return [ops.zeros_like(w) if g is None else ops.convert_to_tensor(g) for g, w in zip(grads, weights)]


def with_awp(model: keras.Model, awp_lambda: float, start_step: int = 0, eps: float = 0.0) -> AWPModel:
    """`model` (functional, built) trained with AWP from step `start_step` on; same layers, same weights."""
    return AWPModel(model.input, model.output, name=model.name, awp_lambda=awp_lambda, awp_start_step=start_step,
                    awp_eps=eps)
