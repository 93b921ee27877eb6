"""RAdam and Lookahead for `kit train` (train.optimizer=radam, train.lookahead_sync > 0), as Keras 3 optimizers in
keras.ops, so one definition trains under the TensorFlow and the JAX backends, on one device or many.

The 1st place (notebook ISLR_1st_place_Hoyeol_Sohn.ipynb, cells 18-19) trained with TensorFlow Addons'
`RectifiedAdam(learning_rate=schedule, weight_decay=decay_schedule, sma_threshold=4)` inside
`Lookahead(opt, sync_period=5)`, the decay schedule being the learning-rate schedule times weight_decay 0.1. TF
Addons is retired and Keras 3 has neither optimizer, so these reproduce TF Addons' update rules
(tensorflow_addons/optimizers/rectified_adam.py and lookahead.py), step for step:

RAdam, at step t = iterations + 1 (lr_t, wd_t: the schedules at `iterations`, before it counts this step):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  m_hat = m / (1 - b1^t);  v_hat = sqrt(v / (1 - b2^t))
    sma_inf = 2 / (1 - b2) - 1;  sma_t = sma_inf - 2 t b2^t / (1 - b2^t)
    r_t = sqrt((sma_t - 4) / (sma_inf - 4) (sma_t - 2) / (sma_inf - 2) sma_inf / sma_t)
    u = r_t m_hat / (v_hat + eps) if sma_t >= sma_threshold else m_hat        (eps outside the root, as TFA)
    u = u + wd_t w                                                            (only when a decay is given)
    w = w - lr_t u
with TF Addons' defaults beta_1 0.9, beta_2 0.999, epsilon 1e-7, amsgrad off and total_steps 0 (no internal
warm-up: the kit's schedule warms up). `weight_decay` is a float or a schedule, as TF Addons took it; the kit passes
its learning-rate schedule scaled by train.weight_decay, as the 1st place did.

Lookahead, around any optimizer here (`lookahead(cls)`): a slow copy of every weight, taken at the first step; after
the inner update of every `sync_period`-th step, slow = slow + slow_step_size (w - slow), and w = slow.

Where the kit departs, and why:
- Lookahead is a subclass of the inner optimizer (its `update_step` wraps the inner one), not TF Addons' wrapper
  object: each backend's own machinery (tf.distribute's per-variable updates, JAX's stateless_apply) then runs it
  unchanged, and the kit's EMA (`use_ema`, read by kit.training.train) averages the weights after the sync.
- For AdamW and Lion, Keras applies the decoupled decay before `update_step`, so the slow copy of step 0 is taken
  after that step's decay (TF Addons' AdamW decayed inside its update): a relative difference of lr x weight_decay
  in the first copy. RAdam decays inside its update step, as TF Addons did, so radam + lookahead is exact.
"""

from __future__ import annotations

import keras
from keras import ops

SERIALIZATION_PACKAGE = "kit"


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam as TensorFlow Addons' RectifiedAdam computes it (the rule is in the module's docstring).

    `weight_decay` is TF Addons' coupled-to-the-step decay wd_t (u += wd_t w before lr_t multiplies u): a float,
    or a LearningRateSchedule read at the step. Keras' own decoupled `weight_decay` is not used.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                 sma_threshold=5.0, name="radam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.sma_threshold = beta_1, beta_2, epsilon, sma_threshold
        if isinstance(weight_decay, dict):
            weight_decay = keras.optimizers.schedules.deserialize(weight_decay)
        self.radam_weight_decay = weight_decay

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])

    def _decay_at_step(self, dtype):
        decay = self.radam_weight_decay
        if isinstance(decay, keras.optimizers.schedules.LearningRateSchedule):
            return ops.cast(decay(self.iterations), dtype)
        return ops.convert_to_tensor(decay, dtype)

    def _has_decay(self) -> bool:
        decay = self.radam_weight_decay
        return isinstance(decay, keras.optimizers.schedules.LearningRateSchedule) or decay > 0

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        const = lambda value: ops.convert_to_tensor(value, dtype)  # noqa: E731 (a float via float32 would round)
        beta_1, beta_2 = const(self.beta_1), const(self.beta_2)
        beta_1_power, beta_2_power = ops.power(beta_1, step), ops.power(beta_2, step)
        sma_inf = 2.0 / (1.0 - beta_2) - 1.0
        sma_t = sma_inf - 2.0 * step * beta_2_power / (1.0 - beta_2_power)

        index = self._get_variable_index(variable)
        m, v = self._m[index], self._v[index]
        self.assign(m, beta_1 * m + (1.0 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1.0 - beta_2) * ops.square(gradient))
        m_hat = m / (1.0 - beta_1_power)
        v_hat = ops.sqrt(v / (1.0 - beta_2_power))
        # Below the threshold r_t is the root of a negative number; the where drops it (SGD with momentum).
        r_t = ops.sqrt((sma_t - 4.0) / (sma_inf - 4.0) * (sma_t - 2.0) / (sma_inf - 2.0) * sma_inf / sma_t)
        rectified = sma_t >= const(self.sma_threshold)
        update = ops.where(rectified, r_t * m_hat / (v_hat + const(self.epsilon)), m_hat)
        if self._has_decay():
            update = update + self._decay_at_step(dtype) * variable
        self.assign_sub(variable, lr * update)

    def get_config(self):
        decay = self.radam_weight_decay
        if isinstance(decay, keras.optimizers.schedules.LearningRateSchedule):
            decay = keras.optimizers.schedules.serialize(decay)
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "weight_decay": decay, "sma_threshold": self.sma_threshold}


class _Lookahead:
    """Mixin that puts Lookahead around the `update_step` of the optimizer class it precedes (see `lookahead`)."""

    def __init__(self, *args, sync_period: int = 6, slow_step_size: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.sync_period, self.slow_step_size = int(sync_period), slow_step_size

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slow = self.add_optimizer_variables(var_list, "slow")

    def update_step(self, gradient, variable, learning_rate):
        slow = self._slow[self._get_variable_index(variable)]
        value = ops.convert_to_tensor  # the current value of a variable (JAX's where takes no variables)
        # TF Addons' _init_op: the slow copy is the weights as the first step finds them.
        self.assign(slow, ops.where(ops.equal(self.iterations, 0), value(variable), value(slow)))
        super().update_step(gradient, variable, learning_rate)
        sync = ops.equal((self.iterations + 1) % self.sync_period, 0)
        fast, slow_now = value(variable), value(slow)
        stepped_back = slow_now + ops.convert_to_tensor(self.slow_step_size, variable.dtype) * (fast - slow_now)
        self.assign(slow, ops.where(sync, stepped_back, slow_now))
        self.assign(variable, ops.where(sync, stepped_back, fast))

    def get_config(self):
        return {**super().get_config(), "sync_period": self.sync_period, "slow_step_size": self.slow_step_size}


def _lookahead_class(inner: type) -> type:
    cls = type(f"Lookahead{inner.__name__}", (_Lookahead, inner),
               {"__doc__": f"Lookahead (TF Addons' rule) around {inner.__name__}: see kit.training.optimizers."})
    cls.__module__ = __name__
    return keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)


LookaheadRAdam = _lookahead_class(RAdam)
LookaheadAdamW = _lookahead_class(keras.optimizers.AdamW)
LookaheadLion = _lookahead_class(keras.optimizers.Lion)
_LOOKAHEAD = {RAdam: LookaheadRAdam, keras.optimizers.AdamW: LookaheadAdamW, keras.optimizers.Lion: LookaheadLion}


def lookahead(optimizer_class: type) -> type:
    """The class of `optimizer_class` with Lookahead around it: it takes the same arguments plus sync_period and
    slow_step_size (TF Addons' defaults, 6 and 0.5; the 1st place set sync_period 5)."""
    try:
        return _LOOKAHEAD[optimizer_class]
    except KeyError:
        raise ValueError(f"no Lookahead for {optimizer_class.__name__}; it has one for "
                         f"{', '.join(c.__name__ for c in _LOOKAHEAD)}") from None
