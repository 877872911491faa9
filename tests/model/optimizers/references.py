"""Keras 3's update formulas written out by hand in float64 numpy (keras/src/optimizers/*.py update_step), and
Keras's step order (BaseOptimizer.apply): the references the optimizers are checked against without Keras."""

from __future__ import annotations

import numpy as np


def adam(w, g, s, lr, t, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    m, v = s.setdefault("m", np.zeros_like(w)), s.setdefault("v", np.zeros_like(w))
    m += (g - m) * (1 - beta_1)
    v += (g * g - v) * (1 - beta_2)
    if amsgrad:
        s["v_hat"] = np.maximum(s.get("v_hat", np.zeros_like(w)), v)
        v = s["v_hat"]
    alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return w - alpha * m / (np.sqrt(v) + epsilon)


def sgd(w, g, s, lr, t, momentum=0.0, nesterov=False):
    if momentum == 0:
        return w - lr * g
    m = s.setdefault("m", np.zeros_like(w))
    m[...] = m * momentum - lr * g
    return w + (m * momentum - lr * g if nesterov else m)


def rmsprop(w, g, s, lr, t, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    v = s.setdefault("v", np.zeros_like(w))
    v[...] = rho * v + (1 - rho) * g * g
    if centered:
        a = s.setdefault("a", np.zeros_like(w))
        a[...] = rho * a + (1 - rho) * g
        increment = lr * g / np.sqrt(v - a * a + epsilon)
    else:
        increment = lr * g / np.sqrt(v + epsilon)
    if momentum > 0:
        m = s.setdefault("m", np.zeros_like(w))
        m[...] = momentum * m + increment
        increment = m
    return w - increment


def nadam(w, g, s, lr, t, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    s["u_product"] = s.get("u_product", 1.0) * beta_1 * (1 - 0.5 * 0.96**t)
    u_t, u_next = beta_1 * (1 - 0.5 * 0.96**t), beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
    m, v = s.setdefault("m", np.zeros_like(w)), s.setdefault("v", np.zeros_like(w))
    m += (g - m) * (1 - beta_1)
    v += (g * g - v) * (1 - beta_2)
    m_hat = u_next * m / (1 - s["u_product"] * u_next) + (1 - u_t) * g / (1 - s["u_product"])
    return w - m_hat * lr / (np.sqrt(v / (1 - beta_2**t)) + epsilon)


def adamax(w, g, s, lr, t, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m, u = s.setdefault("m", np.zeros_like(w)), s.setdefault("u", np.zeros_like(w))
    m += (g - m) * (1 - beta_1)
    u[...] = np.maximum(beta_2 * u, np.abs(g))
    return w - lr * m / ((1 - beta_1**t) * (u + epsilon))


def adagrad(w, g, s, lr, t, initial_accumulator_value=0.1, epsilon=1e-7):
    acc = s.setdefault("acc", np.full_like(w, initial_accumulator_value))
    acc += g * g
    return w - lr * g / np.sqrt(acc + epsilon)


def adadelta(w, g, s, lr, t, rho=0.95, epsilon=1e-7):
    ag, ad = s.setdefault("ag", np.zeros_like(w)), s.setdefault("ad", np.zeros_like(w))
    ag[...] = rho * ag + (1 - rho) * g * g
    delta = -np.sqrt(ad + epsilon) * g / np.sqrt(ag + epsilon)
    ad[...] = rho * ad + (1 - rho) * delta * delta
    return w + lr * delta


def lion(w, g, s, lr, t, beta_1=0.9, beta_2=0.99):
    m = s.setdefault("m", np.zeros_like(w))
    w = w - lr * np.sign(m * beta_1 + g * (1 - beta_1))
    m[...] = m * beta_2 + g * (1 - beta_2)
    return w


UPDATES = {"adam": adam, "adamw": adam, "sgd": sgd, "rmsprop": rmsprop, "nadam": nadam, "adamax": adamax,
           "adagrad": adagrad, "adadelta": adadelta, "lion": lion}


def keras_steps(name: str, weights: list[np.ndarray], grads: list[list[np.ndarray]], rate=lambda t: 1e-3,
                weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, constrain=None, **own):
    """The weights after Keras's steps (BaseOptimizer.apply's order): clip, decay every variable, update at the
    step's rate, constrain; ``rate(iterations)`` the schedule (iterations 0 at the first step)."""
    weights, states = [w.copy() for w in weights], [{} for _ in weights]
    for iterations, step_grads in enumerate(grads):
        step_grads = [g.copy() for g in step_grads]
        lr = rate(iterations)
        if clipnorm:
            step_grads = [g * clipnorm / max(np.linalg.norm(g), clipnorm) for g in step_grads]
        elif global_clipnorm:
            norm = np.sqrt(sum(np.sum(g * g) for g in step_grads))
            step_grads = [g * global_clipnorm * min(1 / norm, 1 / global_clipnorm) for g in step_grads]
        elif clipvalue:
            step_grads = [np.clip(g, -clipvalue, clipvalue) for g in step_grads]
        if weight_decay:
            weights = [w - w * weight_decay * lr for w in weights]
        weights = [UPDATES[name](w, g, s, lr, iterations + 1, **own) for w, g, s in zip(weights, step_grads, states)]
        if constrain is not None:
            weights = [constrain(w) for w in weights]
    return weights
